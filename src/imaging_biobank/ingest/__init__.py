"""DICOM ingestion: sources (folders, archives, media, PACS), parallel parsing, one writer."""
