"""Read one DICOM header (never pixel data) into an ``InstanceRecord``.

``parser="auto"`` uses dicomsdl (C++, several times faster) and falls back to pydicom,
the reference, for anything dicomsdl cannot read; both go through the same ``HeaderView``
and ``build_record``, and the test corpus proves they give identical records.
Problems a user can cause raise ``HeaderError`` with a reason fit for a report.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from imaging_biobank.dicom.record import (
    TOP_LEVEL_KEYWORDS,
    HeaderError,
    InstanceRecord,
    build_record,
)
from imaging_biobank.dicom.tags import tag
from imaging_biobank.dicom.view import DicomsdlView, HeaderView, PydicomView, _vr_names

Parser = Literal["auto", "dicomsdl", "pydicom"]
PARSERS: tuple[Parser, ...] = ("auto", "dicomsdl", "pydicom")
PIXEL_DATA = 0x7FE00010
UNDEFINED_LENGTH = 0xFFFFFFFF
# groups a dataset without the Part 10 preamble may start with (file meta, identification),
# read little endian (0x0800 is group 0008 written big endian)
RAW_START_GROUPS = (0x0002, 0x0008, 0x0800)
SEQUENCE_DELIMITER = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)  # ends encapsulated pixel data
DEFLATED = "1.2.840.10008.1.2.1.99"  # positions in a deflated file refer to the inflated stream

_dicomsdl: Any = None


def dicomsdl_module() -> Any:
    """dicomsdl, imported once, with its messages to stderr silenced (we report errors)."""
    global _dicomsdl
    if _dicomsdl is None:
        try:
            import dicomsdl
        except ImportError:  # pragma: no cover - a platform without the wheel
            _dicomsdl = False
            return None
        dicomsdl.set_loglevel(
            dicomsdl.LogLevel.DISABLE
        )  # (a Python logger callback deadlocks at exit)
        _dicomsdl = dicomsdl
    return _dicomsdl or None


def sniff(head: bytes) -> str | None:
    """Why ``head`` (the first 132+ bytes) is not DICOM, or None if it may be."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return None
    if len(head) >= 8:
        group = struct.unpack("<H", head[:2])[0]
        if group in RAW_START_GROUPS:
            return None  # a data set without preamble (old or raw files)
    return "not a DICOM file (no DICM prefix, no DICOM data set at the start)"


ITEM = 0xFFFEE000
SEQUENCE_END = 0xFFFEE0DD


def check_pixel_data(
    source: _Bytes, size: int, offset: int, length: int, encapsulated: bool
) -> None:
    """Raise if the file ends before its pixel data does (a truncated copy)."""
    if length != UNDEFINED_LENGTH and offset + length > size:
        raise HeaderError(
            f"truncated: pixel data ends {offset + length - size} bytes after the end of file"
        )
    if not encapsulated:
        return
    # encapsulated: walk the fragment items to the sequence delimiter (or the declared end)
    end = size if length == UNDEFINED_LENGTH else offset + length
    position = offset
    while position < end:
        head = source.read(position, min(8, end - position))
        if len(head) < 8:
            if SEQUENCE_DELIMITER.startswith(head):
                return  # every fragment is whole; only (part of) the delimiter is missing
            raise HeaderError("truncated: encapsulated pixel data is cut off")
        group, element, item_length = struct.unpack("<HHI", head)
        tag = (group << 16) | element
        if tag == SEQUENCE_END:
            return
        if tag != ITEM or item_length == UNDEFINED_LENGTH:
            return  # not the layout we check; pixel decoding will judge
        position += 8 + item_length
        if position > end:
            raise HeaderError("truncated: an encapsulated pixel data fragment is cut off")


# --- dicomsdl ---------------------------------------------------------------------------

# dicomsdl parses up to here, never the pixel data element: it crashes (SIGSEGV) on files
# whose pixel data is cut short, so the header of that element is read below instead.
HEADER_END = 0x7FDFFFFF
LONG_VRS = {
    b"OB",
    b"OW",
    b"OF",
    b"OD",
    b"OL",
    b"OV",
    b"SQ",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"SV",
    b"UV",
}
PIXEL_TAG = struct.pack("<HH", 0x7FE0, 0x0010)
IMPLICIT_LE = "1.2.840.10008.1.2"
BIG_ENDIAN = "1.2.840.10008.1.2.2"


class _Bytes:
    """Random access to the file (or the bytes) a header was read from."""

    def __init__(self, data: bytes | None, path: str | None, file: Any = None):
        self.data = data
        self.path = path
        self._file: Any = file

    def read(self, offset: int, size: int) -> bytes:
        if self.data is not None:
            return self.data[max(0, offset) : max(0, offset + size)]
        if offset < 0:
            return b""
        self._file.seek(offset)
        return bytes(self._file.read(size))

    def find(self, pattern: bytes, start: int, limit: int) -> int:
        """The position of ``pattern`` at or after ``start``, reading at most ``limit``."""
        window = 1 << 20
        position = start
        while position < start + limit:
            chunk = self.read(position, window + len(pattern))
            found = chunk.find(pattern)
            if found >= 0:
                return position + found
            if len(chunk) < window:
                return -1
            position += window
        return -1


def _pixel_element(source: _Bytes, ds: Any, syntax: str | None) -> tuple[int, int] | None:
    """(value offset, declared length) of the pixel data element, read after the last element
    dicomsdl parsed; None when there is none (or a byte order we do not check)."""
    if syntax in (DEFLATED, BIG_ENDIAN):
        return None
    last = None
    for element in ds:
        last = element
    if last is None:
        return None
    explicit = syntax != IMPLICIT_LE
    if last.length() == UNDEFINED_LENGTH:  # a sequence: find the pixel data tag after it
        position = source.find(PIXEL_TAG, last.offset(), limit=1 << 28)
        if position < 0:
            return None
    else:
        position = last.offset() + last.length()
    for _ in range(8):  # (7FE0,0001/0002/0008/0009) may come before (7FE0,0010)
        head = source.read(position, 12)
        if len(head) < 8:
            return None
        group, element_number = struct.unpack("<HH", head[:4])
        tag = (group << 16) | element_number
        # an element may be written implicitly in an explicit file (pydicom accepts it)
        has_vr = explicit and head[4:6].isalpha() and head[4:6].isupper()
        if has_vr and head[4:6] in LONG_VRS:
            length, value = struct.unpack("<I", head[8:12])[0], position + 12
        elif has_vr:
            length, value = struct.unpack("<H", head[6:8])[0], position + 8
        else:
            length, value = struct.unpack("<I", head[4:8])[0], position + 8
        if tag == PIXEL_DATA:
            return value, length
        if tag > PIXEL_DATA or length == UNDEFINED_LENGTH or group != 0x7FE0:
            return None
        position = value + length
    return None


NATIVE_SYNTAXES = (IMPLICIT_LE, "1.2.840.10008.1.2.1")
_top_level_tags: list[int] = []
_top_level_set: list[frozenset[int]] = []


def _native_pixel_bytes(view: HeaderView) -> int | None:
    """Bytes uncompressed pixel data has, from the Image Pixel attributes (even-padded)."""
    rows, columns = view.number(tag("Rows")), view.number(tag("Columns"))
    bits = view.number(tag("BitsAllocated"))
    if not rows or not columns or not bits:
        return None
    samples = view.number(tag("SamplesPerPixel")) or 1
    frames = view.number(tag("NumberOfFrames")) or 1
    photometric = view.text(tag("PhotometricInterpretation")) or ""
    if photometric.endswith("_422") and samples == 3:
        samples = 2  # YBR 4:2:2 stores two values per pixel (PS3.3 C.7.6.3.1.2)
    size = int(rows * columns * samples * frames * bits + 7) // 8
    return size + (size & 1)


def _ends_at_end_of_file(view: HeaderView, source: _Bytes, size: int, syntax: str | None) -> bool:
    """The common case, proven with two small reads: native pixel data whose element ends
    exactly at the end of the file, or encapsulated pixel data ending with its delimiter."""
    if syntax not in NATIVE_SYNTAXES:
        return source.read(max(0, size - 8), 8) == SEQUENCE_DELIMITER
    expected = _native_pixel_bytes(view)
    if expected is None:
        return False
    for header in (12, 8):
        head = source.read(size - expected - header, header)
        if head[:4] == PIXEL_TAG and struct.unpack("<I", head[-4:])[0] == expected:
            return True
    return False


def _with_dicomsdl(source: _Bytes, location: str, size: int) -> InstanceRecord:
    dl = dicomsdl_module()
    if source.data is not None:
        ds = dl.open_memory(source.data, copy_data=False, load_until=HEADER_END)
    else:
        ds = dl.open_file(source.path, load_until=HEADER_END)
    view = DicomsdlView(ds, _vr_names(dl))
    if not _top_level_tags:
        _top_level_tags.extend(tag(keyword) for keyword in dict.fromkeys(TOP_LEVEL_KEYWORDS))
        _top_level_set.append(frozenset(_top_level_tags))
    view.prefetch(_top_level_tags, _top_level_set[0])
    syntax = view.text(0x00020010)
    if syntax not in (DEFLATED, BIG_ENDIAN) and not _ends_at_end_of_file(
        view, source, size, syntax
    ):
        pixels = _pixel_element(source, ds, syntax)
        if pixels is not None:
            check_pixel_data(source, size, *pixels, encapsulated=syntax not in NATIVE_SYNTAXES)
    return build_record(view, location=location, file_size=size, transfer_syntax_uid=syntax)


# --- pydicom ----------------------------------------------------------------------------


def _declared_end(dataset: Any) -> int:
    """Where the values of a data set say they end (beyond the file size: truncated)."""
    from pydicom.sequence import Sequence

    end = 0
    for key in list(dataset.keys()):
        if key > PIXEL_DATA:
            break  # what follows the pixel data (padding, signatures) is never read
        raw = dataset.get_item(key)
        tell, length = getattr(raw, "value_tell", None), getattr(raw, "length", None)
        if tell is not None and length is not None and length != UNDEFINED_LENGTH:
            end = max(end, tell + length)
        if key == PIXEL_DATA:
            continue
        try:
            value = dataset[key].value
        except Exception:  # a malformed value: its length was counted above
            continue
        if isinstance(value, Sequence):
            for item in value:
                end = max(end, _declared_end(item))
    return end


@contextlib.contextmanager
def lenient_pydicom() -> Iterator[None]:
    """Invalid values are the header's problem, reported through our own reasons; pydicom's
    validation warnings (raised when a value is first converted) would only reach the
    user's terminal. The previous mode comes back afterwards."""
    from pydicom import config

    previous = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.IGNORE
    try:
        yield
    finally:
        config.settings.reading_validation_mode = previous


def _with_pydicom(source_bytes: _Bytes, location: str, size: int) -> InstanceRecord:
    with lenient_pydicom():
        return _parse_with_pydicom(source_bytes, location, size)


def _parse_with_pydicom(source_bytes: _Bytes, location: str, size: int) -> InstanceRecord:
    import warnings

    import pydicom
    from pydicom.errors import InvalidDicomError

    data = source_bytes.data
    source: Any = io.BytesIO(data) if data is not None else source_bytes.path
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(source, force=True)
        except (InvalidDicomError, EOFError, struct.error, ValueError, OverflowError) as error:
            raise HeaderError(f"cannot parse: {error}") from None
    eof = any("End of file reached before delimiter" in str(w.message) for w in caught)
    pixels = ds.get_item(PIXEL_DATA) if PIXEL_DATA in ds else None
    if eof and getattr(pixels, "length", UNDEFINED_LENGTH) == UNDEFINED_LENGTH:
        raise HeaderError("truncated: the file ends before a sequence or pixel data does")
    meta = getattr(ds, "file_meta", None)
    syntax = (
        str(meta.TransferSyntaxUID) if meta is not None and "TransferSyntaxUID" in meta else None
    )
    if syntax != DEFLATED and _declared_end(ds) > size:  # (encapsulated: pydicom warned)
        raise HeaderError(f"truncated: a value runs past the end of the file ({size} bytes)")
    if PIXEL_DATA in ds:
        del ds[PIXEL_DATA:0x7FFFFFFF]  # not needed further
    return read_dataset(ds, location, size)


def read_dataset(dataset: Any, location: str, file_size: int | None = None) -> InstanceRecord:
    """A record from a pydicom ``Dataset`` already in memory (PACS sources)."""
    syntax = None
    meta = getattr(dataset, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        syntax = str(meta.TransferSyntaxUID)
    with lenient_pydicom():
        return build_record(
            PydicomView(dataset),
            location=location,
            file_size=file_size,
            transfer_syntax_uid=syntax,
        )


# --- the interface ----------------------------------------------------------------------


def _read(source: _Bytes, location: str, size: int, head: bytes, parser: Parser) -> InstanceRecord:
    reason = sniff(head)
    if reason is not None:
        raise HeaderError(reason)
    if parser != "pydicom" and dicomsdl_module() is not None:
        try:
            return _with_dicomsdl(source, location, size)
        except HeaderError:
            raise
        except Exception:  # dicomsdl's DicomException, NeedsReferenceParserError, ...
            if parser == "dicomsdl":
                raise
            # dicomsdl cannot read it: the reference parser decides
    return _with_pydicom(source, location, size)


def read_path(
    path: str | Path, parser: Parser = "auto", location: str | None = None
) -> InstanceRecord:
    """Read the header of a file. ``HeaderError`` for non-DICOM, truncated or incomplete."""
    name = os.fspath(path)
    try:
        f = open(name, "rb")  # noqa: SIM115 (closed below, after the pixel data checks)
    except OSError as error:
        raise HeaderError(f"cannot read: {error.strerror}") from None
    try:
        head = f.read(132)
        size = os.fstat(f.fileno()).st_size
        return _read(_Bytes(None, name, f), location or name, size, head, parser)
    except OSError as error:
        raise HeaderError(f"cannot read: {error.strerror}") from None
    finally:
        f.close()


def read_bytes(data: bytes, location: str, parser: Parser = "auto") -> InstanceRecord:
    """Read the header of a DICOM file held in memory (archive members, downloads)."""
    return _read(_Bytes(data, None), location, len(data), data[:132], parser)
