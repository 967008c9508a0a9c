"""Print the folders of public DICOM test data the installed packages carry (for make demo):
pydicom's test files and the pydicom-data package."""

from pathlib import Path

import data_store
import pydicom

print(Path(pydicom.__file__).parent / "data" / "test_files")
print(Path(data_store.__file__).parent / "data")
