"""Exports of the imaging biobank to the models its partners use: the BBMRI-ERIC Directory
(EMX1 workbook and EMX2 tables), FHIR R4 (MIABIS on FHIR, ImagingStudy), OMOP CDM 5.4 with
its Oncology and Medical Imaging extensions, ICGC-ARGO and RDF. None carries a direct
identifier: donors and images appear under their pseudonyms only."""
