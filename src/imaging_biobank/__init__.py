"""imaging-biobank: the DICOM-MIABIS integration model as working software."""

__version__ = "0.1.0"
