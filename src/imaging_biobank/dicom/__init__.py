"""Reading DICOM headers into records (pure: no database).

One interface (``read.read_path``, ``read_bytes``, ``read_dataset``) over two parsers:
pydicom, the reference and fallback, and dicomsdl, a C++ parser several times faster that
gives identical records on every test corpus (``tests/test_dicom_read.py``).
"""
