"""Independent check that a de-identified DICOM output holds no identifying value of its input.

``imaging-biobank deid verify OUT --against IN`` reads every DICOM file of the input (a file
or a folder, recursively) with pydicom, collects the values that identify someone, then
searches every DICOM file of the output for them. It shares no code with the de-identifier:
its only knowledge of DICOM de-identification is the standard's own table, PS3.15 Annex E
Table E.1-1 (``data/ps3.15-e1-1.json``), read as data, and the option codes of CID 7050
(from pydicom). A leak is reported with the output file, the tag path where the value was
found, what kind of value it is, the input file and tag path it came from, and a masked hint
of the value (first two characters and the length: ``DO…(8)``; only the length for values
of up to four characters: ``…(1)``; never the value itself).

What counts as an identifying value of the input (every file, every nesting level of every
sequence, private elements included):

1. person names: every PN value, whole, and its family, given and middle name components
   (split on ``^`` and ``=``) of 3+ characters (prefix and suffix are titles: Dr., Jr.);
2. table attributes: every value (3+ characters) of every attribute of Table E.1-1; binary
   values give their runs of 4+ printable ASCII characters;
3. UIDs: values of table attributes whose basic action includes U (Study/Series/SOP Instance
   UID, Frame of Reference UID, Referenced SOP Instance UID...); UIDs registered in
   pydicom's UID dictionary (transfer syntaxes, SOP classes...) are not identifying;
4. dates: every DA value and the date part of every DT value (8 digits), table or not;
5. private values: every run of 4+ printable ASCII characters in private elements (odd
   groups, private creators excepted; elements nested in private sequences included);
6. short table values: an output attribute of the table holding a value (any length: "M",
   "70") that the same attribute held somewhere in the input;
7. free text: every LT, ST and UT value of 4+ characters.

Options recorded in an output file (De-identification Method Code Sequence (0012,0064), CID
7050) allow what the standard allows, per file: an attribute whose table row has K (keep) or
C (keep, cleaned) under a recorded option is not checked by rules 2, 6 and 7; Retain UIDs
lifts rule 3, Retain Longitudinal Temporal Information Full Dates lifts rule 4 (Modified
Dates does not: modified dates must differ, but times (TM) may stay, as a shift by whole
days leaves them as they were; a date kept by another option's K, such as Date of Last
Calibration under Retain Device Identity, is allowed); Clean Descriptors lifts rule 7 for
descriptors and Clean Structured Content / Clean Graphics for TextValue and
UnformattedTextValue. With Retain Safe Private, binary private values are not checked, and a
private text value may stay in the element it came from, but nowhere else.

Not identifying, never searched: values shorter than the rule's minimum; values with fewer
than two distinct letters or digits; values of only digits, spaces and punctuation shorter
than 6 characters (rule 6 still compares them); the placeholders in ``STOP_VALUES``.
Values are compared case-insensitively after stripping spaces and NULs.

Where the output is searched: every element at every nesting level (file meta, sequences,
private elements, elements after the pixel data; not the pixel data) as text; binary values
as latin-1 text; numbers in binary VRs (US, FL...) only by rule 6. Values of 6+ characters,
UIDs, dates and IDs (PatientID, keywords ending in ID or Number) are found as substrings,
UIDs and digit-only values not inside a longer number, shorter values (name components of
3-5 characters...) only as a whole word. The raw bytes of each output file before its pixel
data (the preamble, element headers, anything pydicom did not parse) are searched for every
value of 6+ characters, latin-1 or UTF-8 encoded.

With Modified Dates recorded, a date counts in an output only if the input it was made from
held it, when that input is known: the input with the same pixel data (de-identification
copies pixel data as they are). A date shifted by one donor's offset may otherwise meet
another file's date. Outputs without pixel data are checked against every input's dates.

A name component in a public text attribute is not a leak when, in some input file, the same
attribute uses that word while the file's own person names do not hold it ("new" in "Seizure,
new, acute" of one patient, when another patient's given name is New).

Two places do not count for the weaker kinds (table attribute, free text, private value, and
person names in public text attributes the table does not list: "PATIENT" is a name
component and a Plan Geometry, "Philips" a content creator and a Manufacturer): an
output attribute that may stay (not in the table, or kept by a recorded option, or a private
element under Retain Safe Private) and holds a value the input held in that attribute,
exactly or with words taken out (cleaned text), so "ORIGINAL" in a private header does not
make ImageType a leak; and the
de-identification record the de-identifier writes ((0012,0062), (0012,0063), (0028,0303)).
The items of (0012,0064) are coded option names and are not searched. Names, patient IDs,
UIDs and dates count everywhere.

A file is DICOM if pydicom reads it (``force=True``) and it has a SOPInstanceUID; other files
are skipped, except that a file with the DICM prefix or a ``.dcm`` name that cannot be read
or lacks SOPInstanceUID is reported as unreadable. ``DICOMDIR`` files are skipped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import re
import warnings
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple, TypeAlias

import pydicom
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import UID_dictionary  # type: ignore[attr-defined]  # (not in __all__)
from pydicom.valuerep import PersonName

__all__ = ["STOP_VALUES", "Leak", "VerifyReport", "verify"]

# Placeholders de-identifiers and scanners write; not identifying even in a table attribute.
STOP_VALUES = frozenset(
    {
        "anonymous",
        "anonymized",
        "anonymised",
        "anon",
        "deidentified",
        "de-identified",
        "removed",
        "unknown",
        "none",
        "null",
        "n/a",
        "yes",
        "no",
        "19000101",  # the conventional dummy date (also an input placeholder birth date)
    }
)

# CID 7050 option code value -> the column of Table E.1-1 that says what the option keeps
_CID7050 = codes.cid7050
OPTION_COLUMNS: dict[str, str] = {
    _CID7050.RetainSafePrivateOption.value: "rtnSafePrivOpt",
    _CID7050.RetainUidsOption.value: "rtnUIDsOpt",
    _CID7050.RetainDeviceIdentityOption.value: "rtnDevIdOpt",
    _CID7050.RetainInstitutionIdentityOption.value: "rtnInstIdOpt",
    _CID7050.RetainPatientCharacteristicsOption.value: "rtnPatCharsOpt",
    _CID7050.RetainLongitudinalTemporalInformationFullDatesOption.value: "rtnLongFullDatesOpt",
    _CID7050.RetainLongitudinalTemporalInformationModifiedDatesOption.value: (
        "rtnLongModifDatesOpt"
    ),
    _CID7050.CleanDescriptorsOption.value: "cleanDescOpt",
    _CID7050.CleanStructuredContentOption.value: "cleanStructContOpt",
    _CID7050.CleanGraphicsOption.value: "cleanGraphOpt",
}
# columns whose K or C does not let the original value stay: modified dates must differ,
# and the private row's C is handled by rule 5
_NOT_KEEPING = frozenset({"rtnLongModifDatesOpt", "rtnSafePrivOpt"})
_SAFE_PRIVATE = "rtnSafePrivOpt"
_UIDS = "rtnUIDsOpt"
_FULL_DATES = "rtnLongFullDatesOpt"
_MODIFIED_DATES = "rtnLongModifDatesOpt"
_CLEAN_TEXT_VALUE = frozenset({"cleanStructContOpt", "cleanGraphOpt"})
_TEXT_VALUE_TAGS = frozenset({0x0040A160, 0x00700006})  # TextValue, UnformattedTextValue

_DEID_CODES = 0x00120064  # De-identification Method Code Sequence: coded, not searched
_DEID_RECORD = frozenset({0x00120062, 0x00120063, _DEID_CODES, 0x00280303})
_PATIENT_ID_KEYWORDS = frozenset({"PatientID", "OtherPatientIDs"})
_ID_SUFFIXES = ("ID", "IDs", "Number", "Numbers")
_NUMBER_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "AT", "UV", "SV"})
_PRIVATE_TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC"}
    | {"UI", "UR", "UT"}
)
_UNDEFINED = 0xFFFFFFFF
_PIXEL_DATA = 0x7FE00010
_PIXEL_TAGS = frozenset({_PIXEL_DATA, 0x7FE00008, 0x7FE00009})  # (Float, Double Float)
_DEFER = 65536
_DEFLATED = "1.2.840.10008.1.2.1.99"

# kinds of value, strongest first; the first four count everywhere (no guard)
PERSON_NAME, PATIENT_ID, UID, DATE, TABLE, FREE_TEXT, PRIVATE = range(7)
_STRONG = DATE
_KIND_NAMES = {
    PERSON_NAME: "person name",
    PATIENT_ID: "PatientID",
    UID: "UID",
    DATE: "date",
    FREE_TEXT: "free text",
    PRIVATE: "private value",
}

_WORDY_VRS = frozenset({"LO", "LT", "SH", "ST", "UC", "UT"})
_WORD = re.compile(r"[^\W_]+")
_TEXT_RUN = re.compile(r"[^\x00-\x1f\x7f]{4,}")
_BYTES_RUN = re.compile(rb"[\x20-\x7e]{4,}")
_STRIP = " \x00\t\r\n"

# how a value is searched for, by mode: {0} is the alternation of the values
_TEXT_BOUNDS = {
    "uid": r"(?<![0-9])(?:{0})(?![0-9])",
    "date": r"(?<![0-9])(?:{0})",
    "num": r"(?<![0-9.])(?:{0})(?![0-9])",
    "sub": r"(?:{0})",
    "word": r"(?<![^\W_])(?:{0})(?![^\W_])",
}
_BYTES_BOUNDS = {**_TEXT_BOUNDS, "word": r"(?<![A-Za-z0-9])(?:{0})(?![A-Za-z0-9])"}


@dataclass(frozen=True)
class Leak:
    """One identifying input value found in one output file."""

    output: str  # output file path
    where: str  # tag path, "(0009,1001) private" or "header bytes @1234"
    kind: str  # person name, PatientID, UID, date, table attribute <Keyword>, ...
    source: str  # input file path and tag path the value came from
    value_hint: str  # first two characters + "…" + length, never the whole value

    def __str__(self) -> str:
        return f"{self.output}: {self.where}: {self.kind} {self.value_hint} (from {self.source})"


@dataclass
class VerifyReport:
    """What ``verify`` read and found."""

    inputs: int
    outputs: int
    values_checked: int
    leaks: list[Leak]
    unreadable: list[tuple[str, str]]  # (path, reason)
    skipped: list[str] = field(default_factory=list)  # files that are not DICOM, not checked

    @property
    def ok(self) -> bool:
        """No leak, every file read, and something was compared (no input or no output
        DICOM file is a failure: a wrong path must not pass)."""
        return not self.leaks and not self.unreadable and self.inputs > 0 and self.outputs > 0


# --- the standard's table ---------------------------------------------------------------


class _Row(NamedTuple):
    """One row of Table E.1-1, as far as verification needs it."""

    name: str
    uid: bool  # the basic action includes U
    kept_by: frozenset[str]  # option columns under which the original value may stay


class _Table:
    """Table E.1-1 rows by tag, with the repeating-group rows (50xx,xxxx), (60xx,3000)."""

    def __init__(self, rows: list[dict[str, str]]) -> None:
        self.exact: dict[int, _Row] = {}
        self.masked: list[tuple[int, int, _Row]] = []
        for item in rows:
            ident = item["id"].lower()
            if len(ident) != 8:  # "ggggeeee-where-gggg-is-odd": private, rule 5
                continue
            kept_by = frozenset(
                column
                for column, action in item.items()
                if column.endswith("Opt") and action in ("K", "C") and column not in _NOT_KEEPING
            )
            row = _Row(item["name"], "U" in item["basicProfile"], kept_by)
            if "x" in ident:
                mask = int("".join("0" if c == "x" else "f" for c in ident), 16)
                self.masked.append((mask, int(ident.replace("x", "0"), 16), row))
            else:
                self.exact[int(ident, 16)] = row

    def row(self, tag: int) -> _Row | None:
        """The row of a public tag, or None."""
        found = self.exact.get(tag)
        if found is not None:
            return found
        for mask, value, row in self.masked:
            if tag & mask == value:
                return row
        return None


@cache
def _table() -> _Table:
    """The shipped Table E.1-1."""
    source = resources.files("imaging_biobank.deid") / "data" / "ps3.15-e1-1.json"
    return _Table(json.loads(source.read_text(encoding="utf-8")))


def _keyword(tag: int, row: _Row) -> str:
    """The attribute's DICOM keyword (the row's name without spaces if pydicom has none)."""
    return keyword_for_tag(tag) or re.sub(r"[^A-Za-z0-9]", "", row.name)


# --- reading ---------------------------------------------------------------------------

AttrKey: TypeAlias = int | tuple[int, str, int]  # public tag, or (group, creator, element)


class _Leaf(NamedTuple):
    """One non-sequence element at some nesting level."""

    path: str  # "(0040,0275)[0].(0032,1060)", "(0009,1001) private"
    tag: int
    vr: str
    value: Any
    private: bool  # private element, or nested in a private sequence
    creator: bool  # a private creator element (gggg,0010-00FF)
    attr: AttrKey
    top: int  # the top-level tag it is under


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _value_range(raw: RawDataElement | DataElement, base: int) -> tuple[int, int] | None:
    """Where a parsed element's value lies in the file, if pydicom says (``base``: where
    the stream it was read from starts in the file)."""
    if not isinstance(raw, RawDataElement) or raw.value_tell is None:
        return None
    start = base + raw.value_tell
    if raw.length != _UNDEFINED:
        return start, start + raw.length
    if isinstance(raw.value, bytes):
        return start, start + len(raw.value)
    return None


def _element(ds: Dataset, tag: int, raw: RawDataElement | DataElement) -> DataElement:
    """The converted element; a value pydicom cannot convert stays bytes (VR UN)."""
    try:
        return ds[tag]
    except Exception:  # a malformed value must not stop the check
        value = raw.value if isinstance(raw.value, bytes) else b""
        return DataElement(tag, "UN", value)


def _creator_key(ds: Dataset, tag: int) -> AttrKey:
    """(group, private creator, element offset) for a private element."""
    group, elem = tag >> 16, tag & 0xFFFF
    creator = ds.get((group << 16) | (elem >> 8))
    name = str(creator.value).strip() if creator is not None and creator.value else ""
    return group, name, elem & 0xFF


def _leaves(
    ds: Dataset,
    ranges: list[tuple[int, int]] | None,
    prefix: str = "",
    in_private: bool = False,
    top: int | None = None,
    base: int = 0,
) -> Iterator[_Leaf]:
    """Every non-sequence element of ``ds``, depth first; value ranges go to ``ranges``.

    pydicom reads a sequence of defined length from its value bytes: the positions of the
    elements in its items count from the start of that value (``base``).
    """
    for tag in list(ds.keys()):
        if top is None and tag in _PIXEL_TAGS:
            continue  # pixels, not text: never loaded (read deferred)
        raw = ds.get_item(tag, keep_deferred=True)
        elem = _element(ds, tag, raw)
        odd = bool((tag >> 16) & 1)
        private = in_private or odd
        path = prefix + _tag_text(tag)
        here = tag if top is None else top
        if elem.VR == "SQ":
            inner = base + raw.value_tell if isinstance(raw, RawDataElement) else base
            for index, item in enumerate(elem.value or []):
                yield from _leaves(item, ranges, f"{path}[{index}].", private, here, inner)
            continue
        if ranges is not None and (found := _value_range(raw, base)) is not None:
            ranges.append(found)
        creator = odd and 0x10 <= (tag & 0xFFFF) <= 0xFF
        attr = _creator_key(ds, tag) if odd and not creator else tag
        shown = f"{path} private" if private else path
        yield _Leaf(shown, tag, str(elem.VR), elem.value, private, creator, attr, here)


def _all_leaves(
    ds: Dataset,
    meta_ranges: list[tuple[int, int]] | None = None,
    ranges: list[tuple[int, int]] | None = None,
) -> Iterator[_Leaf]:
    """File meta then dataset; their values' positions go to ``meta_ranges``, ``ranges``."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        yield from _leaves(meta, meta_ranges)
    yield from _leaves(ds, ranges)


def _strings(value: Any) -> list[str]:
    """An element's values as text: bytes as latin-1, multiple values one by one."""
    if value is None:
        return []
    if isinstance(value, bytes | bytearray):
        return [bytes(value).decode("latin-1")]
    if isinstance(value, str | PersonName):
        return [str(value)]
    if isinstance(value, Iterable):
        return [text for item in value for text in _strings(item)]
    return [str(value)]


def _norm(text: str) -> str:
    return text.strip(_STRIP).lower()


def _hint(text: str) -> str:
    """A value masked for a report: first two characters, "…", the length."""
    clean = text.strip(_STRIP)
    shown = clean[:2] if len(clean) > 4 else ""  # a short value would show whole
    return f"{shown}…({len(clean)})"


def _dicom_files(root: Path) -> Iterator[Path]:
    """Every regular file under ``root`` (or ``root`` itself), DICOMDIR excluded."""
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in paths:
        if path.name.upper() != "DICOMDIR":
            yield path


class _Read(NamedTuple):
    """One file read: its dataset (None if not DICOM), why not, and where pixel data starts."""

    ds: Dataset | None
    problem: str | None  # set if the file looks like DICOM but cannot be checked
    pixel_start: int


def _read(path: Path) -> _Read:
    """Read a file with pydicom (values over 64 KiB only when used); never raises for bad
    files."""
    try:
        with path.open("rb") as fp:
            head = fp.read(132)
            fp.seek(0)
            looks = head[128:132] == b"DICM" or path.suffix.lower() == ".dcm"
            try:  # the whole file (elements after the pixel data too), big values deferred
                ds = pydicom.dcmread(fp, force=True, defer_size=_DEFER)
            except Exception as error:
                return _Read(None, f"pydicom cannot read it: {error}" if looks else None, 0)
            pixel_start = fp.tell()
            pixels = ds.get_item(_PIXEL_DATA, keep_deferred=True) if _PIXEL_DATA in ds else None
            if isinstance(pixels, RawDataElement) and pixels.value_tell is not None:
                pixel_start = pixels.value_tell - 12  # its header, as long as it can be
    except OSError as error:
        return _Read(None, f"cannot open: {error.strerror or error}", 0)
    if "SOPInstanceUID" not in ds:
        return _Read(None, "no SOPInstanceUID" if looks else None, 0)
    return _Read(ds, None, pixel_start)


# --- the input's identifying values ----------------------------------------------------


class _Record(NamedTuple):
    """Where one identifying value came from, and which recorded options let it through."""

    rank: int  # PERSON_NAME ... PRIVATE, strongest first
    kind: str
    source: str
    voided_by: frozenset[str]  # option columns that allow the value in an output
    style: str  # "uid", "date", "id" (searched as a substring) or "text"


def _worth_searching(key: str) -> bool:
    """False for placeholders and values too generic to identify anyone."""
    if key in STOP_VALUES or len({c for c in key if c.isalnum()}) < 2:
        return False
    return len(key) >= 6 or any(c.isalpha() for c in key)


def _dates(texts: Iterable[str]) -> Iterator[str]:
    """The 8-digit dates of DA/DT values (ranges give both ends)."""
    for text in texts:
        for part in text.split("-"):
            part = part.strip(_STRIP)
            if len(part) >= 8 and part[:8].isdigit():
                yield part[:8]


def _name_parts(text: str) -> Iterator[str]:
    """The family, given and middle name components of a PN value."""
    for group in text.split("="):
        for part in group.split("^")[:3]:
            yield part.strip(_STRIP)


def _runs(value: Any) -> Iterator[str]:
    """Runs of 4+ printable characters (bytes: printable ASCII) in a value."""
    if isinstance(value, bytes | bytearray):
        for match in _BYTES_RUN.finditer(value):
            yield match.group().decode("ascii")
        return
    for text in _strings(value):
        yield from _TEXT_RUN.findall(text)


class _Inputs:
    """Identifying values of the input, with what allows each in an output."""

    def __init__(self) -> None:
        self.table = _table()
        self.needles: dict[str, list[_Record]] = {}
        self.same_attr: dict[str, dict[str, _Record]] = {}  # rule 6, by keyword
        self.kept: dict[AttrKey, set[str]] = {}  # values attributes may keep
        self.common: dict[int, set[str]] = {}  # words used in an attribute, not as names
        # inputs with pixel data and their dates; by pixel digest once an output asks
        self.pixel_files: list[tuple[Path, set[str]]] = []
        self._dates_by_pixels: dict[bytes, set[str]] | None = None
        self.all_dates: set[str] = set()  # every 8-digit date of every input
        self.files = 0

    def add(self, text: str, record: _Record, minimum: int) -> None:
        """Collect one value (if it is worth searching for), once per kind and options."""
        key = _norm(text)
        if len(key) < minimum or not _worth_searching(key):
            return
        records = self.needles.setdefault(key, [])
        if not any(r.kind == record.kind and r.voided_by == record.voided_by for r in records):
            records.append(record)

    def read(self, path: Path, ds: Dataset) -> None:
        """Collect every identifying value of one input file."""
        self.files += 1
        leaves = [leaf for leaf in _all_leaves(ds) if not leaf.creator]
        for leaf in leaves:
            self._leaf(f"{path} {leaf.path}", leaf)
        self._common_words(leaves)
        if _PIXEL_DATA in ds:
            texts = (t for leaf in leaves if leaf.vr in ("DA", "DT") for t in _strings(leaf.value))
            self.pixel_files.append((path, set(_dates(texts))))

    def dates_of_pixels(self, digest: bytes) -> set[str] | None:
        """The dates of the inputs with these pixel data (``None``: no such input). Pixel
        data are read only here, when an output with Modified Dates first asks."""
        if self._dates_by_pixels is None:
            self._dates_by_pixels = {}
            for path, dates in self.pixel_files:
                read = _read(path)
                found = _pixel_digest(read.ds) if read.ds is not None else None
                if found is not None:
                    self._dates_by_pixels.setdefault(found, set()).update(dates)
        return self._dates_by_pixels.get(digest)

    def _common_words(self, leaves: list[_Leaf]) -> None:
        """Words of public text attributes that are not a name of this file's own people:
        a name component elsewhere ("New", "Patient") is then an ordinary word there."""
        own = {
            _norm(part)
            for leaf in leaves
            if leaf.vr == "PN"
            for text in _strings(leaf.value)
            for part in _name_parts(text)
        }
        for leaf in leaves:
            if leaf.private or leaf.vr not in _WORDY_VRS:
                continue
            words = self.common.setdefault(leaf.tag, set())
            for text in _strings(leaf.value):
                words.update(w for w in _WORD.findall(_norm(text)) if w not in own)

    def _leaf(self, source: str, leaf: _Leaf) -> None:
        row = None if leaf.private else self.table.row(leaf.tag)
        numbers = leaf.vr in _NUMBER_VRS
        texts = [] if numbers else _strings(leaf.value)
        if leaf.private or row is None or row.kept_by:
            joined = "\\".join(_strings(leaf.value))
            self.kept.setdefault(leaf.attr, set()).add(_norm(joined))
        none: frozenset[str] = frozenset()
        if leaf.vr == "PN":
            name = _Record(PERSON_NAME, _KIND_NAMES[PERSON_NAME], source, none, "text")
            for text in texts:
                self.add(text, name, 3)
                for part in _name_parts(text):
                    self.add(part, name, 3)
        if leaf.vr in ("DA", "DT"):
            voided = frozenset({_FULL_DATES}) | (row.kept_by if row is not None else none)
            date = _Record(DATE, _KIND_NAMES[DATE], source, voided, "date")
            for text in _dates(texts):
                self.add(text, date, 8)
                self.all_dates.add(text)
        if leaf.vr in ("LT", "ST", "UT"):
            voided = row.kept_by if row is not None else none
            if leaf.tag in _TEXT_VALUE_TAGS:
                voided |= _CLEAN_TEXT_VALUE
            free = _Record(FREE_TEXT, _KIND_NAMES[FREE_TEXT], source, voided, "text")
            for text in texts:
                self.add(text, free, 4)
        if leaf.private and not numbers:
            voided = none if leaf.vr in _PRIVATE_TEXT_VRS else frozenset({_SAFE_PRIVATE})
            private = _Record(PRIVATE, _KIND_NAMES[PRIVATE], source, voided, "text")
            for run in _runs(leaf.value):
                self.add(run, private, 4)
        if row is not None:
            self._table_values(source, leaf, row)

    def _table_values(self, source: str, leaf: _Leaf, row: _Row) -> None:
        """Rules 2, 3 and 6 for one element of a table attribute."""
        keyword = _keyword(leaf.tag, row)
        everything = _strings(leaf.value)
        if leaf.vr == "UI":
            everything = [t for t in everything if t.strip(_STRIP) not in UID_dictionary]
        kept_by = row.kept_by
        if leaf.vr == "TM":  # a shift by whole days leaves the time of day as it was
            kept_by |= {_MODIFIED_DATES}
        same = _Record(TABLE, f"table attribute {keyword}", source, kept_by, "text")
        by_value = self.same_attr.setdefault(keyword, {})
        for text in everything:
            key = _norm(text)
            if key and key not in STOP_VALUES:
                by_value.setdefault(key, same)
        if leaf.vr in _NUMBER_VRS:
            return
        if row.uid and leaf.vr == "UI":
            record = _Record(UID, _KIND_NAMES[UID], source, row.kept_by | {_UIDS}, "uid")
        elif keyword in _PATIENT_ID_KEYWORDS:
            record = _Record(PATIENT_ID, _KIND_NAMES[PATIENT_ID], source, row.kept_by, "id")
        else:
            style = "id" if keyword.endswith(_ID_SUFFIXES) else "text"
            record = same._replace(style=style)
        if isinstance(leaf.value, bytes | bytearray):
            for run in _runs(leaf.value):
                self.add(run, record, 4)
            return
        for text in everything:
            self.add(text, record, 3)

    def values_checked(self) -> int:
        """Distinct identifying values collected (searched for, or compared by rule 6)."""
        compared = {value for values in self.same_attr.values() for value in values}
        return len(compared | self.needles.keys())


# --- searching --------------------------------------------------------------------------

_Trie: TypeAlias = "dict[str, _Trie]"


def _alternation(words: Iterable[str]) -> str:
    """A regular expression matching any of ``words`` (longest first), as a prefix tree:
    Python's ``re`` then checks thousands of values (UIDs sharing a root) at the cost of a
    few."""
    root: _Trie = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _node_pattern(root)


def _node_pattern(node: _Trie) -> str:
    branches = []
    for char in sorted(k for k in node if k):
        literal = [re.escape(char)]
        child = node[char]
        while len(child) == 1 and "" not in child:  # a chain: one literal, no group
            ((char, child),) = child.items()
            literal.append(re.escape(char))
        rest = _node_pattern(child) if set(child) != {""} else ""
        branches.append("".join(literal) + rest)
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body


def _mode(key: str, records: list[_Record]) -> str:
    """How a value is searched for (see ``_TEXT_BOUNDS``)."""
    styles = {r.style for r in records}
    if "uid" in styles:
        return "uid"
    if "date" in styles:
        return "date"
    if not any(c.isalpha() for c in key):
        return "num"
    if len(key) >= 6 or "id" in styles:
        return "sub"
    return "word"


def _encodings(key: str) -> set[bytes]:
    """The byte forms a value may take in a file: latin-1 and UTF-8, lower and upper case."""
    found = set()
    for variant in (key, key.upper()):
        for codec in ("latin-1", "utf-8"):
            with contextlib.suppress(UnicodeEncodeError):
                found.add(variant.encode(codec).lower())
    return found


class _Matcher:
    """The input's values active under one set of recorded options, compiled for search."""

    def __init__(self, inputs: _Inputs, options: frozenset[str]) -> None:
        self.options = options
        self.best: dict[str, _Record] = {}
        by_mode: dict[str, list[str]] = {mode: [] for mode in _TEXT_BOUNDS}
        raw: dict[str, dict[bytes, str]] = {mode: {} for mode in _TEXT_BOUNDS}
        for key, records in inputs.needles.items():
            active = [r for r in records if not r.voided_by & options]
            if not active:
                continue
            self.best[key] = min(active)
            mode = _mode(key, active)
            by_mode[mode].append(key)
            if len(key) >= 6:
                for encoded in _encodings(key):
                    raw[mode][encoded] = key
        self.text = [
            re.compile(_TEXT_BOUNDS[mode].format(_alternation(keys)), re.IGNORECASE)
            for mode, keys in by_mode.items()
            if keys
        ]
        self.raw_keys = {encoded: key for forms in raw.values() for encoded, key in forms.items()}
        self.raw = [
            re.compile(
                _BYTES_BOUNDS[mode]
                .format(_alternation(f.decode("latin-1") for f in forms))
                .encode("latin-1"),
                re.IGNORECASE,
            )
            for mode, forms in raw.items()
            if forms
        ]

    def lookup(self, found: str) -> tuple[str, _Record] | None:
        """The collected value a match stands for."""
        key = found.lower()
        record = self.best.get(key)
        if record is None:  # a case pair ``re`` folds but ``str.lower`` does not
            key = next((k for k in self.best if k.casefold() == found.casefold()), key)
            record = self.best.get(key)
        return None if record is None else (key, record)


def _recorded_options(ds: Dataset) -> frozenset[str]:
    """Table option columns of the CID 7050 codes recorded in (0012,0064)."""
    columns = set()
    for item in ds.get("DeidentificationMethodCodeSequence", None) or []:
        value = str(item.get("CodeValue", "") or "").strip()
        scheme = str(item.get("CodingSchemeDesignator", "DCM") or "DCM").strip()
        if scheme == "DCM" and value in OPTION_COLUMNS:
            columns.add(OPTION_COLUMNS[value])
    return frozenset(columns)


def _pixel_digest(ds: Dataset) -> bytes | None:
    """A digest of the pixel data (de-identification copies it as it is): how an output
    finds the input it was made from."""
    if _PIXEL_DATA not in ds:
        return None
    try:
        value = ds.PixelData
    except Exception:  # unreadable pixel data: no source found, the rules apply as they are
        return None
    return hashlib.sha256(value).digest() if value else None


class _Output:
    """Checks one output file against the input's values."""

    def __init__(
        self,
        path: Path,
        read: _Read,
        inputs: _Inputs,
        matcher: _Matcher,
        excused: frozenset[str] = frozenset(),
    ) -> None:
        assert read.ds is not None
        self.path, self.ds, self.pixel_start = path, read.ds, read.pixel_start
        self.inputs, self.matcher = inputs, matcher
        # dates this output holds as another input date shifted by its donor's offset
        self.excused = excused
        self.leaks: list[Leak] = []
        self.seen: set[tuple[str, str]] = set()
        # with modified dates, a shifted date may be another file's date: only the dates
        # of the input this output was made from (same pixel data) count, when it is known
        self.source_dates: set[str] | None = None
        if _MODIFIED_DATES in matcher.options:
            digest = _pixel_digest(self.ds)
            if digest is not None:
                self.source_dates = inputs.dates_of_pixels(digest)

    def report(self, where: str, key: str, record: _Record, found: str) -> None:
        if (where, key) not in self.seen:
            self.seen.add((where, key))
            leak = Leak(str(self.path), where, record.kind, record.source, _hint(found))
            self.leaks.append(leak)

    def check(self) -> list[Leak]:
        meta: list[tuple[int, int]] = []
        body: list[tuple[int, int]] = []
        leaves = [leaf for leaf in _all_leaves(self.ds, meta, body) if leaf.top != _DEID_CODES]
        self.elements(leaves)
        self.same_attributes(leaves)
        self.header_bytes(meta, body)
        return self.leaks

    def allowed(self, leaf: _Leaf) -> bool:
        """May this attribute stay, holding a value the input held in it (weak kinds only)?"""
        if leaf.top in _DEID_RECORD:
            return True
        options = self.matcher.options
        if leaf.private:
            may_stay = _SAFE_PRIVATE in options
        else:
            row = self.inputs.table.row(leaf.tag)
            may_stay = row is None or bool(row.kept_by & options)
            may_stay |= leaf.vr == "TM" and _MODIFIED_DATES in options
        if not may_stay:
            return False
        joined = "\\".join(_strings(leaf.value))
        value, held = _norm(joined), self.inputs.kept.get(leaf.attr, set())
        return value in held or any(_words_within(value, before) for before in held)

    def untabled(self, leaf: _Leaf) -> bool:
        """A public text attribute Table E.1-1 does not list (Manufacturer, a code's
        designator): one that may hold a word that is also someone's name."""
        return not leaf.private and leaf.vr != "PN" and self.inputs.table.row(leaf.tag) is None

    def same_attributes(self, leaves: list[_Leaf]) -> None:
        """Rule 6: a table attribute holding a value the input held in it."""
        for leaf in leaves:
            row = None if leaf.private else self.inputs.table.row(leaf.tag)
            if row is None:
                continue
            values = self.inputs.same_attr.get(_keyword(leaf.tag, row), {})
            dated = leaf.vr in ("DA", "DT") and self.source_dates is not None
            for text in _strings(leaf.value):
                record = values.get(_norm(text))
                if record is None or record.voided_by & self.matcher.options:
                    continue
                if dated and _norm(text)[:8] not in (self.source_dates or ()):
                    continue  # another file's date (see source_dates)
                if leaf.vr in ("DA", "DT") and _norm(text)[:8] in self.excused:
                    continue  # an input date shifted by this donor's offset
                self.report(leaf.path, _norm(text), record, text)

    def elements(self, leaves: list[_Leaf]) -> None:
        """Rules 1-5 and 7 in every element, all of a file's text searched at once."""
        searched = [leaf for leaf in leaves if leaf.vr not in _NUMBER_VRS]
        texts = ["\\".join(_strings(leaf.value)) for leaf in searched]
        starts, offset = [], 0
        for text in texts:
            starts.append(offset)
            offset += len(text) + 1
        joined = "\x00".join(texts)
        guarded: dict[int, bool] = {}
        for pattern in self.matcher.text:
            position = 0
            while (match := pattern.search(joined, position)) is not None:
                position = match.start() + 1
                found = self.matcher.lookup(match.group())
                if found is None:
                    continue
                key, record = found
                index = bisect_right(starts, match.start()) - 1
                leaf = searched[index]
                if record.rank == PERSON_NAME and key in self.inputs.common.get(leaf.tag, ()):
                    continue  # an ordinary word in this attribute, someone's name elsewhere
                if record.rank == DATE and self.source_dates is not None:  # noqa: SIM102
                    if key not in self.source_dates:  # another file's date, which this
                        continue  # file's shift happened to reach
                if record.rank == DATE and key in self.excused:
                    continue  # an input date shifted by this donor's offset
                weak = record.rank > _STRONG
                if weak or (record.rank == PERSON_NAME and self.untabled(leaf)):
                    if index not in guarded:
                        guarded[index] = self.allowed(leaf)
                    if guarded[index]:
                        continue
                self.report(leaf.path, key, record, match.group())

    def header_bytes(self, meta: list[tuple[int, int]], body: list[tuple[int, int]]) -> None:
        """Values of 6+ characters in the bytes before pixel data that no element holds."""
        end, ranges = self.pixel_start, meta + body
        syntax = getattr(self.ds, "file_meta", Dataset()).get("TransferSyntaxUID", "")
        if str(syntax) == _DEFLATED:
            # positions past the file meta refer to the inflated stream: search up to there
            end, ranges = max((stop for _, stop in meta), default=132), meta
        with self.path.open("rb") as fp:
            header = bytearray(fp.read(end))
        for start, stop in ranges:
            if start < len(header):
                stop = min(stop, len(header))
                header[start:stop] = bytes(stop - start)
        for pattern in self.matcher.raw:
            for match in pattern.finditer(header):
                key = self.matcher.raw_keys.get(match.group().lower())
                record = self.matcher.best.get(key) if key is not None else None
                if key is not None and record is not None:
                    found = match.group().decode("latin-1")
                    self.report(f"header bytes @{match.start()}", key, record, found)


def _words_within(value: str, before: str) -> bool:
    """Is ``value`` ``before`` with some words taken out (what cleaning text does)?"""
    words = iter(before.split())
    return bool(value) and all(word in words for word in value.split())


# --- the check ---------------------------------------------------------------------------


def verify(output: Path, against: Path, progress: Callable[[], None] | None = None) -> VerifyReport:
    """Check that no DICOM file under ``output`` holds an identifying value of ``against``.

    Both are a DICOM file or a folder (searched recursively). Raises FileNotFoundError if
    either does not exist; unreadable files are reported, not raised. ``progress`` is
    called once per file read (inputs, then outputs).
    """
    output, against = Path(output), Path(against)
    unreadable: list[tuple[str, str]] = []
    skipped: list[str] = []
    inputs = _Inputs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's warnings on odd values: we read anyway
        for path, read in _readable(against, unreadable, skipped, progress):
            assert read.ds is not None
            try:
                inputs.read(path, read.ds)
            except Exception as error:
                unreadable.append((str(path), f"pydicom cannot read it: {error}"))
        leaks, outputs = _check_outputs(output, inputs, unreadable, skipped, progress)
    return VerifyReport(inputs.files, outputs, inputs.values_checked(), leaks, unreadable, skipped)


def _readable(
    root: Path,
    unreadable: list[tuple[str, str]],
    skipped: list[str],
    progress: Callable[[], None] | None,
) -> Iterator[tuple[Path, _Read]]:
    """The files under ``root`` that give a dataset; the others are filed as unreadable if
    they look like DICOM, else as skipped."""
    for path in _dicom_files(root):
        read = _read(path)
        if progress is not None:
            progress()
        if read.ds is not None:
            yield path, read
        elif read.problem is not None:
            unreadable.append((str(path), read.problem))
        else:
            skipped.append(str(path))


def _check_outputs(
    output: Path,
    inputs: _Inputs,
    unreadable: list[tuple[str, str]],
    skipped: list[str],
    progress: Callable[[], None] | None,
) -> tuple[list[Leak], int]:
    """Search every output file; matchers are compiled once per set of recorded options.

    With Modified Dates, an output without pixel data (an SR, an RTSTRUCT) cannot find the
    input it was made from, so its dates are searched among every input's dates, where a
    correctly shifted date may meet another file's date by chance. Such outputs are
    checked last, once the offsets of their donor are known from the outputs with pixel
    data (input date minus output date, the same in every file of a donor): a date that is
    an input date moved by one of them is not counted.
    """
    matchers: dict[frozenset[str], _Matcher] = {}
    leaks: list[Leak] = []
    shifts: dict[str, set[int]] = {}
    deferred: list[tuple[Path, _Read, _Matcher]] = []
    count = 0
    for path, read in _readable(output, unreadable, skipped, progress):
        assert read.ds is not None
        try:
            options = _recorded_options(read.ds)
            if options not in matchers:
                matchers[options] = _Matcher(inputs, options)
            checker = _Output(path, read, inputs, matchers[options])
            if _MODIFIED_DATES in options and checker.source_dates is None:
                deferred.append((path, read, matchers[options]))
                continue
            leaks.extend(checker.check())
            if checker.source_dates:
                _learn_shift(shifts, read.ds, checker.source_dates)
        except Exception as error:
            unreadable.append((str(path), f"pydicom cannot read it: {error}"))
            continue
        count += 1
    for path, read, matcher in deferred:
        assert read.ds is not None
        try:
            donor = _text_of(read.ds, 0x00100020)  # PatientID
            excused = _shifted(inputs.all_dates, shifts.get(donor, set()))
            leaks.extend(_Output(path, read, inputs, matcher, excused).check())
        except Exception as error:
            unreadable.append((str(path), f"pydicom cannot read it: {error}"))
            continue
        count += 1
    return leaks, count


def _text_of(ds: Dataset, tag: int) -> str:
    """An element's text without turning it from raw into a data element: the raw header
    search masks values by the positions raw elements keep."""
    item = ds.get_item(tag, keep_deferred=True)
    if item is None:
        return ""
    if isinstance(item, RawDataElement):
        return bytes(item.value or b"").decode("latin-1").strip(" \x00")
    return str(item.value or "").strip(" \x00")


def _day(date: str) -> int | None:
    try:
        return dt.date(int(date[:4]), int(date[4:6]), int(date[6:8])).toordinal()
    except ValueError:
        return None


def _learn_shift(shifts: dict[str, set[int]], ds: Dataset, source_dates: set[str]) -> None:
    """Narrow the donor's possible offsets with one output whose input is known."""
    study = _day(_text_of(ds, 0x00080020))  # StudyDate
    if study is None:
        return
    candidates = {d - study for d in map(_day, source_dates) if d is not None and d != study}
    donor = _text_of(ds, 0x00100020)
    known = shifts.get(donor)
    shifts[donor] = candidates if known is None else (known & candidates or known)


def _shifted(dates: set[str], offsets: set[int]) -> frozenset[str]:
    """The dates that are some input date moved back by one of the offsets."""
    if not offsets:
        return frozenset()
    out = set()
    for date in dates:
        day = _day(date)
        if day is None:
            continue
        for offset in offsets:
            out.add(dt.date.fromordinal(day - offset).strftime("%Y%m%d"))
    return frozenset(out)
