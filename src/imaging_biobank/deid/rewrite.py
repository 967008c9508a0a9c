"""De-identify one DICOM object: PS3.15 Basic Profile and options, at the byte level.

Every element of every nested item is decided on (Table E.1-1, then the safe default for
what the table does not list), kept elements are copied byte for byte, and the result is a
valid Part 10 file in the input's transfer syntax:

- private elements go, except allow-listed ones under Retain Safe Private; curve (50xx) and
  overlay (60xx) groups go unless Clean Graphics keeps them;
- public attributes not in the table: sequences are kept and visited, numbers and code
  strings kept, person names removed, dates and times removed (or shifted / kept under the
  date options), other text removed unless it is a listed acquisition or coding attribute
  (``deid/data/safe_attributes.csv``), or cleaned inside content kept by a clean option;
- the patient becomes the donor pseudonym (PatientID and PatientName), UIDs are replaced
  under the key, dates move by one offset per donor under Modified Dates;
- Patient Identity Removed is YES only when the pixels are known to carry no burned-in text
  (Burned In Annotation NO, or no pixel data); De-identification Method and its Code
  Sequence record the profile, the options, the table edition and the key fingerprint.

Objects with burned-in annotation (YES, or absent in modalities that often burn text in)
are quarantined, unless a data manager accepts them.
"""

from __future__ import annotations

import re
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from imaging_biobank.deid.options import DeidOptions
from imaging_biobank.deid.profile import (
    Profile,
    iod_of,
    manifest,
    safe_attribute_tags,
    safe_private,
)
from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.deid.stream import (
    DEFLATED,
    EXPLICIT,
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT,
    IMPLICIT_LE,
    PIXEL_DATA,
    Element,
    Syntax,
    dictionary_vr,
    dictionary_vrs,
    element_bytes,
    item_end,
    item_start,
    items,
    pad,
    parse,
    read_element,
    sequence_end,
    sequence_start,
    syntax_of,
)
from imaging_biobank.deid.values import (
    DATE_VRS,
    FREE_TEXT_VRS,
    clean_text,
    dummy,
    identifying_tokens,
    pad_text,
    shift,
)
from imaging_biobank.dicom.record import HeaderError

# modalities whose images often carry burned-in text (PS3.15 E.1.1 note; the list)
BURN_PRONE = frozenset({"US", "SC", "OT", "XC", "ES"})
BURNED_IN = 0x00280301
# Pixel Data, Float Pixel Data, Double Float Pixel Data
PIXEL_TAGS = (PIXEL_DATA, 0x7FE00008, 0x7FE00009)
# SOP classes whose images often carry text, by their names in pydicom's UID dictionary
# (an SC object of modality CT, an ultrasound of modality IVUS)
_BURN_PRONE_NAMES = ("Ultrasound", "Secondary Capture", "Endoscopic", "Photographic", "Video")
PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
IDENTITY_REMOVED = 0x00120062
METHOD = 0x00120063
METHOD_CODES = 0x00120064
TEMPORAL_MODIFIED = 0x00280303
PADDING = 0xFFFCFFFC  # Data Set Trailing Padding
# an implementation class UID of our own (2.25 + a fixed UUID), and its version name
IMPLEMENTATION_UID = "2.25.216348396813489715837254916236405867329"
IMPLEMENTATION_NAME = "IMAGINGBIOBANK"
# identity values that name a person, place or record, used to clean free text
_IDENTITY_WORDS = (
    "ID",
    "Name",
    "Address",
    "Telephone",
    "Institution",
    "Number",
    "Birth",
    "Mail",
    "Physician",
    "Operator",
    "Department",
    "Country",
    "Region",
    "Issuer",
    "Date",
    "Locator",
    "Record",
)


_NUMBER_TEXT = re.compile(rb"[0-9+\-.eE \\\x00]*")
_CODE_TEXT = re.compile(rb"[A-Z0-9_ \\\x00]*")
_BINARY_SIZES = {"FL": 4, "FD": 8, "US": 2, "SS": 2, "UL": 4, "SL": 4}


_TEXTUAL = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST"})


def _compatible(vr: str, element: Element) -> bool:
    """Can a value the file declares as ``element.vr`` be taken as ``vr`` (text as other
    text: an LO written for a CS)? A sequence or a UID written as bytes cannot."""
    if vr in ("SQ", "UI") or element.vr == "SQ":
        return False
    return vr in _TEXTUAL and element.vr in _TEXTUAL | {"UC", "UT"}


def _private_value_is(vr: str, element: Element, raw: bytes) -> bool:
    """Does an allow-listed private element hold a value of its listed VR (numbers, a code),
    whatever VR the file declares? Text, names or a sequence there are not kept."""
    if element.vr not in (vr, "UN"):
        return False
    if vr in ("IS", "DS"):
        return _NUMBER_TEXT.fullmatch(raw) is not None
    if vr == "CS":
        return len(raw) <= 64 and _CODE_TEXT.fullmatch(raw) is not None
    size = _BINARY_SIZES.get(vr)
    return size is not None and len(raw) % size == 0


# safe attributes holding phrases (not codes or short names): cleaned of identifiers
_SAFE_CLEANED_VRS = frozenset({"LO", "LT", "ST", "UT", "UC"})


@cache
def _keyword(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) or f"{tag:08X}"


@cache
def _is_identity(tag: int) -> bool:
    keyword = _keyword(tag)
    return any(word in keyword for word in _IDENTITY_WORDS) and "Description" not in keyword


@cache
def _burn_prone_class(sop_class: str) -> bool:
    from pydicom._uid_dict import UID_dictionary

    name = UID_dictionary.get(sop_class, ("",))[0]
    return any(word in name for word in _BURN_PRONE_NAMES)


@cache
def _well_known_uids() -> frozenset[str]:
    from pydicom._uid_dict import UID_dictionary

    return frozenset(UID_dictionary)


@dataclass
class Identity:
    """What the source said: for the re-identification table, never written out."""

    patient_id: str = ""
    patient_name: str = ""
    birth_date: str = ""
    study_uid: str = ""
    accession_number: str = ""


@dataclass
class Outcome:
    """A de-identified object (``data``), or why it was quarantined."""

    data: bytes | None
    quarantined: str | None
    donor: str
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    identity: Identity

    @property
    def clean_path(self) -> str:
        """``<donor>/<study>/<series>/<instance>.dcm``: a layout without source names."""
        return f"{self.donor}/{self.study_uid}/{self.series_uid}/{self.sop_instance_uid}.dcm"


@dataclass
class _File:
    """What is known of the object being rewritten."""

    buf: bytes | memoryview
    iod: str | None
    days: int
    encodings: list[str] | None
    names: list[bytes] = field(default_factory=list)  # identifying values, to clean text
    others: list[bytes] = field(default_factory=list)
    deferred: list[tuple[int, int, str, bytes, Syntax, bool]] = field(default_factory=list)


def _text(raw: bytes | memoryview) -> str:
    return bytes(raw).decode("latin-1").strip(" \0")


class Deidentifier:
    """Rewrites objects under one key and one set of options."""

    def __init__(self, pseudonymiser: Pseudonymiser, options: DeidOptions, version: str):
        self.pseudonymiser = pseudonymiser
        self.options = options
        self.profile = Profile.build(options)
        self.safe_private = safe_private() if self.profile.private == "C" else {}
        self.safe_text = safe_attribute_tags()
        edition = manifest()["ps3.15-e1-1.json"].edition.split(",")[0]
        names = ",".join(sorted(options.options)) or "none"
        self.method = [
            f"imaging-biobank {version}"[:64],
            f"{edition} Annex E Basic Profile"[:64],
            f"options: {names}"[:64],
            f"key {pseudonymiser.fingerprint}",
        ]
        self.retain_uids = "uids" in options

    # --- the file -------------------------------------------------------------------------

    def file(self, data: bytes, header_only: bool = False) -> Outcome:
        """De-identify one Part 10 file (or a raw data set); ``header_only`` leaves the pixel
        data out (ingest indexes headers only). ``HeaderError`` if it cannot be read."""
        meta, body_start, transfer_syntax = _meta(data)
        if transfer_syntax == DEFLATED:
            try:
                buf: bytes | memoryview = zlib.decompress(data[body_start:], -zlib.MAX_WBITS)
            except zlib.error as error:
                raise HeaderError(f"cannot inflate the deflated data set: {error}") from None
            start = 0
        else:
            buf, start = memoryview(data), body_start
        syntax = syntax_of(transfer_syntax)
        elements, _ = parse(buf, start, len(buf), syntax)
        top = {e.tag: e for e in elements}

        def value(tag: int) -> str:
            element = top.get(tag)
            return _text(buf[element.value_start : element.value_end]) if element else ""

        sop_class = value(0x00080016) or _text_of(meta.get(0x00020002))
        study = value(0x0020000D)
        series = value(0x0020000E)
        instance = value(0x00080018) or _text_of(meta.get(0x00020003))
        if not (study and series and instance):
            missing = [
                n
                for n, v in (
                    ("StudyInstanceUID", study),
                    ("SeriesInstanceUID", series),
                    ("SOPInstanceUID", instance),
                )
                if not v
            ]
            raise HeaderError(f"missing {', '.join(missing)}")
        patient_id = value(PATIENT_ID)
        source = patient_id or f"study:{study}"
        donor = self.pseudonymiser.donor(source)
        identity = Identity(
            patient_id=patient_id,
            patient_name=value(PATIENT_NAME),
            birth_date=value(0x00100030),
            study_uid=study,
            accession_number=value(0x00080050),
        )
        outcome = Outcome(
            data=None,
            quarantined=None,
            donor=donor,
            study_uid=self._uid(study),
            series_uid=self._uid(series),
            sop_instance_uid=self._uid(instance),
            identity=identity,
        )
        # every Burned In Annotation of the data set (a duplicate must not hide a YES)
        answers = {
            _text(buf[e.value_start : e.value_end]).upper() for e in elements if e.tag == BURNED_IN
        }
        burned_in = "NO" if answers == {"NO"} else "YES" if "YES" in answers else ""
        has_pixels = any(tag in top for tag in PIXEL_TAGS)
        modality = value(0x00080060).upper()
        if has_pixels and not self.options.accept_burned_in:
            if burned_in == "YES":
                outcome.quarantined = "Burned In Annotation is YES: the pixels may show text"
                return outcome
            if not burned_in and (modality in BURN_PRONE or _burn_prone_class(sop_class)):
                kind = modality or "an"
                outcome.quarantined = (
                    f"{kind} image without Burned In Annotation: the pixels may show text"
                )
                return outcome
        charset = top.get(0x00080005)
        state = _File(
            buf=buf,
            iod=iod_of(sop_class),
            days=self.pseudonymiser.date_shift_days(source),
            encodings=_encodings(buf, charset) if charset else None,
        )
        known_clean = not has_pixels or burned_in == "NO"
        added = self._added(donor, known_clean, syntax)
        out: list[bytes | memoryview] = []
        self._dataset(elements, state, syntax, (), out, added, header_only)
        self._clean_deferred(state, out)
        body = b"".join(out)
        if transfer_syntax == DEFLATED:
            packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
            body = packer.compress(body) + packer.flush()
        outcome.data = (
            b"\0" * 128
            + b"DICM"
            + self._meta(meta, sop_class, outcome.sop_instance_uid, transfer_syntax)
            + body
        )
        return outcome

    def _uid(self, uid: str) -> str:
        if self.retain_uids or uid in _well_known_uids():
            return uid
        return self.pseudonymiser.uid(uid, self.options.uid_root)

    def _added(self, donor: str, known_clean: bool, syntax: Syntax) -> dict[int, bytes]:
        """Elements the output carries whatever the input had, by tag."""
        pseudonym = donor.encode("ascii")
        temporal = (
            b"MODIFIED"
            if "modified-dates" in self.options
            else b"UNMODIFIED"
            if "full-dates" in self.options
            else b"REMOVED"
        )
        codes = b"".join(
            item_start(syntax)
            + element_bytes(0x00080100, "SH", pad_text(code.encode("ascii")), syntax)
            + element_bytes(0x00080102, "SH", pad_text(scheme.encode("ascii")), syntax)
            + element_bytes(0x00080104, "LO", pad_text(meaning.encode("ascii")), syntax)
            + item_end(syntax)
            for code, scheme, meaning in self.options.method_codes()
        )
        return {
            PATIENT_NAME: element_bytes(PATIENT_NAME, "PN", pad_text(pseudonym), syntax),
            PATIENT_ID: element_bytes(PATIENT_ID, "LO", pad_text(pseudonym), syntax),
            IDENTITY_REMOVED: element_bytes(
                IDENTITY_REMOVED, "CS", b"YES " if known_clean else b"NO", syntax
            ),
            METHOD: element_bytes(
                METHOD, "LO", pad_text("\\".join(self.method).encode("ascii")), syntax
            ),
            METHOD_CODES: sequence_start(METHOD_CODES, "SQ", syntax) + codes + sequence_end(syntax),
            TEMPORAL_MODIFIED: element_bytes(TEMPORAL_MODIFIED, "CS", pad_text(temporal), syntax),
        }

    def _meta(self, meta: dict[int, bytes], sop_class: str, instance: str, syntax: str) -> bytes:
        """The File Meta Information (always explicit VR little endian)."""

        def ui(value: str) -> bytes:
            return pad(value.encode("ascii"), "UI")

        parts = [
            element_bytes(0x00020001, "OB", b"\0\1", EXPLICIT),
            element_bytes(0x00020002, "UI", ui(sop_class), EXPLICIT),
            element_bytes(0x00020003, "UI", ui(instance), EXPLICIT),
            element_bytes(0x00020010, "UI", ui(syntax), EXPLICIT),
            element_bytes(0x00020012, "UI", ui(IMPLEMENTATION_UID), EXPLICIT),
            element_bytes(0x00020013, "SH", pad_text(IMPLEMENTATION_NAME.encode()), EXPLICIT),
        ]
        group = b"".join(parts)
        return element_bytes(0x00020000, "UL", len(group).to_bytes(4, "little"), EXPLICIT) + group

    # --- data sets ----------------------------------------------------------------------

    def _dataset(
        self,
        elements: list[Element],
        state: _File,
        syntax: Syntax,
        path: tuple[str, ...],
        out: list[bytes | memoryview],
        added: dict[int, bytes] | None = None,
        header_only: bool = False,
        cleaning: bool = False,
    ) -> None:
        """Decide on every element of one data set, appending the output to ``out``.
        ``added`` (top level only) holds elements that replace or join the input's;
        ``cleaning``: inside content a clean option keeps, free text is cleaned, not removed."""
        buf = state.buf
        pending = sorted(added.items()) if added else []
        creators: dict[int, str] = {}  # private block -> creator, in this data set
        emitted_creators: set[int] = set()
        for element in elements:
            tag = element.tag
            while pending and pending[0][0] < tag:
                out.append(pending.pop(0)[1])
            if pending and pending[0][0] == tag:
                out.append(pending.pop(0)[1])
                value = bytes(buf[element.value_start : element.value_end])
                (state.names if element.vr == "PN" else state.others).append(value)
                continue
            group = tag >> 16
            if tag == PADDING:  # may hold what an editor left behind
                continue
            if tag & 0xFFFF == 0:  # group lengths: values change, and they are retired
                continue
            if group & 1:
                self._private(element, state, syntax, out, creators, emitted_creators)
                continue
            curve, overlay = 0x5000 <= group <= 0x501E, 0x6000 <= group <= 0x601E
            if curve or overlay:  # kept with Clean Graphics, their text cleaned
                if (self.profile.curves if curve else self.profile.overlays) == "C":
                    if element.vr in FREE_TEXT_VRS or element.vr == "PN":
                        self._defer(element, state, syntax, out)
                    elif element.vr != "SQ":
                        out.append(buf[element.start : element.end])
                continue
            if tag >= PIXEL_DATA and header_only and path == ():
                break
            allowed = dictionary_vrs(tag)
            mismatch = bool(allowed) and element.vr not in allowed and element.vr != "UN"
            # the dictionary's VR where the file's is UN or not one it allows
            vr = dictionary_vr(tag) if element.vr == "UN" or mismatch else element.vr
            action = self.profile.action(tag, state.iod, path)
            if action is None:
                action = self._default(tag, vr, cleaning)
            if mismatch and action != "X" and not _compatible(vr, element):
                action = "X"  # a value not of its attribute's VR: nothing says what it holds
            if action == "X" and vr == "SQ" and element.vr in ("SQ", "UN"):
                self._collect(element, state, syntax)  # names in what goes, to clean text
            elif vr == "PN":
                state.names.append(bytes(buf[element.value_start : element.value_end]))
            elif vr in ("LO", "SH", "DA", "DT", "AE") and action in "XZDU" and _is_identity(tag):
                state.others.append(bytes(buf[element.value_start : element.value_end]))
            self._apply(action, element, vr, state, syntax, path, out, cleaning)
        for _, data in pending:
            out.append(data)

    def _default(self, tag: int, vr: str, cleaning: bool) -> str:
        """The action for a public attribute Table E.1-1 does not list."""
        options = self.options
        if vr == "UI":  # replaced under the key (registered UIDs stay as they are)
            return "U"
        if vr == "SQ" or vr == "CS":
            return "K"
        if vr == "PN":
            return "X"
        if vr in ("DA", "DT"):
            return "C" if "modified-dates" in options else "K" if "full-dates" in options else "X"
        if vr == "TM":
            return "K" if options.dates_kept else "X"
        if vr == "AS":
            return "K" if "patient-characteristics" in options else "X"
        if vr in FREE_TEXT_VRS or vr in ("AE", "UR"):
            if tag in self.safe_text:  # kept; longer text without this object's identifiers
                return "S" if vr in _SAFE_CLEANED_VRS else "K"
            return "C" if cleaning and vr in FREE_TEXT_VRS else "X"
        if vr == "UN":  # not in the data dictionary: nothing says what it holds
            return "X"
        return "K"  # numbers and binary values

    def _apply(
        self,
        action: str,
        element: Element,
        vr: str,
        state: _File,
        syntax: Syntax,
        path: tuple[str, ...],
        out: list[bytes | memoryview],
        cleaning: bool,
    ) -> None:
        buf, tag = state.buf, element.tag
        raw = buf[element.value_start : element.value_end]
        if action == "X":
            return
        if action == "S":
            self._defer(element, state, syntax, out, strict=False)
            return
        if action == "Z":
            if vr == "SQ":
                out.append(sequence_start(tag, element.vr, syntax) + sequence_end(syntax))
            else:
                out.append(element_bytes(tag, element.vr, b"", syntax))
            return
        if action == "D":
            if tag == PATIENT_ID:
                value = self.pseudonymiser.donor(_text(raw)).encode("ascii")
                out.append(element_bytes(tag, element.vr, pad_text(value), syntax))
            elif vr == "SQ":
                out.append(
                    sequence_start(tag, element.vr, syntax)
                    + item_start(syntax)
                    + item_end(syntax)
                    + sequence_end(syntax)
                )
            elif vr == "UI":
                out.append(element_bytes(tag, element.vr, self._uids(raw), syntax))
            else:
                out.append(element_bytes(tag, element.vr, dummy(vr), syntax))
            return
        if action == "U":
            if vr == "UI":
                out.append(element_bytes(tag, element.vr, self._uids(raw), syntax))
            elif vr == "SQ":  # X/Z/U* of a Type 1 reference sequence: kept, UIDs replaced
                self._sequence(element, state, syntax, path, out, cleaning)
            return  # anything else under U is not a UID: it goes
        if action == "C":
            if vr in DATE_VRS:
                if "full-dates" in self.options:
                    out.append(buf[element.start : element.end])
                else:
                    out.append(
                        element_bytes(tag, element.vr, shift(vr, bytes(raw), state.days), syntax)
                    )
            elif vr == "AE":
                value = self.pseudonymiser.token("ae", _text(raw)).encode("ascii")
                out.append(element_bytes(tag, element.vr, value, syntax))
            elif vr == "SQ":
                self._sequence(element, state, syntax, path, out, cleaning=True)
            elif vr in FREE_TEXT_VRS or vr == "PN":
                self._defer(element, state, syntax, out)
            else:
                out.append(buf[element.start : element.end])
            return
        # K
        if vr == "SQ":
            self._sequence(element, state, syntax, path, out, cleaning)
        else:
            out.append(buf[element.start : element.end])

    def _collect(self, element: Element, state: _File, syntax: Syntax) -> None:
        """The names and identity values inside a sequence that is removed (Other Patient
        IDs, Original Attributes, Request Attributes...): words to clean from kept text."""
        inner = IMPLICIT if element.vr == "UN" else syntax
        for item_elements, _item_syntax in items(state.buf, element, syntax):
            for child in item_elements:
                vr = child.vr if child.vr != "UN" else dictionary_vr(child.tag)
                raw = bytes(state.buf[child.value_start : child.value_end])
                if vr == "SQ":
                    self._collect(child, state, inner)
                elif vr == "PN":
                    state.names.append(raw)
                elif vr in ("LO", "SH") and _is_identity(child.tag):
                    state.others.append(raw)

    def _sequence(
        self,
        element: Element,
        state: _File,
        syntax: Syntax,
        path: tuple[str, ...],
        out: list[bytes | memoryview],
        cleaning: bool,
    ) -> None:
        inner_path = (*path, _keyword(element.tag))
        inner = IMPLICIT if element.vr == "UN" else syntax
        out.append(sequence_start(element.tag, element.vr, syntax))
        for item_elements, item_syntax in items(state.buf, element, syntax):
            out.append(item_start(item_syntax))
            self._dataset(item_elements, state, item_syntax, inner_path, out, cleaning=cleaning)
            out.append(item_end(item_syntax))
        out.append(sequence_end(inner))

    def _private(
        self,
        element: Element,
        state: _File,
        syntax: Syntax,
        out: list[bytes | memoryview],
        creators: dict[int, str],
        emitted: set[int],
    ) -> None:
        """Private elements go, unless allow-listed (Retain Safe Private); a kept element
        brings its private creator along."""
        tag, buf = element.tag, state.buf
        group, number = tag >> 16, tag & 0xFFFF
        raw = buf[element.value_start : element.value_end]
        if 0x0010 <= number <= 0x00FF:
            creators[group << 16 | number] = _text(raw)
            return
        if element.vr == "PN":  # a name in a private element: cleaned out of kept text too
            state.names.append(bytes(raw))
        if not self.safe_private or number < 0x1000:
            return
        block = group << 16 | number >> 8
        creator = creators.get(block)
        vr = self.safe_private.get((creator or "", group, number & 0xFF))
        if creator is None or vr is None or not _private_value_is(vr, element, bytes(raw)):
            return
        if block not in emitted:
            emitted.add(block)
            value = pad_text(creator.encode("latin-1"))
            out.append(element_bytes(block, "LO", value, syntax))
        out.append(buf[element.start : element.end])

    def _uids(self, raw: bytes | memoryview) -> bytes:
        values = bytes(raw).decode("ascii", "replace").strip(" \0").split("\\")
        return pad("\\".join(self._uid(v.strip(" \0")) for v in values).encode("ascii"), "UI")

    def _defer(
        self,
        element: Element,
        state: _File,
        syntax: Syntax,
        out: list[bytes | memoryview],
        strict: bool = True,
    ) -> None:
        """Free text cleaned once every identifying value of the object is known (``strict``:
        also words that look like IDs, dates, addresses; else only the object's own
        identifying values, for safe attributes such as Manufacturer or CodeMeaning)."""
        raw = bytes(state.buf[element.value_start : element.value_end])
        state.deferred.append((len(out), element.tag, element.vr, raw, syntax, strict))
        out.append(b"")

    def _clean_deferred(self, state: _File, out: list[bytes | memoryview]) -> None:
        if not state.deferred:
            return
        decode, encode = _codec(state.encodings)
        # decoded with the object's character sets, as the text they are looked for in
        names = [decode(raw, "PN") for raw in state.names]
        others = [decode(raw, "LO") for raw in state.others]
        tokens, substrings = identifying_tokens(names, others)
        for index, tag, vr, raw, syntax, strict in state.deferred:
            # a person name has nothing to keep once cleaned
            text = "" if vr == "PN" else clean_text(decode(raw, vr), tokens, substrings, strict)
            value = encode(text)
            out[index] = element_bytes(tag, vr, pad_text(value), syntax)


# --- file meta and character sets -----------------------------------------------------------


def _text_of(raw: bytes | None) -> str:
    return raw.decode("latin-1").strip(" \0") if raw else ""


def _meta(data: bytes) -> tuple[dict[int, bytes], int, str]:
    """(meta values by tag, where the data set starts, its transfer syntax)."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        start = 132
    elif data[:2] == b"\x02\x00":
        start = 0
    else:
        return {}, 0, _raw_syntax(data)
    view = memoryview(data)
    meta: dict[int, bytes] = {}
    pos = start
    # the meta group is explicit VR little endian, whatever the data set's syntax
    while pos + 8 <= len(data) and data[pos : pos + 2] == b"\x02\x00":
        element = read_element(view, pos, len(data), EXPLICIT)
        meta[element.tag] = bytes(view[element.value_start : element.value_end])
        pos = element.end
    syntax = _text_of(meta.get(0x00020010))
    if not syntax:
        raise HeaderError("the file meta information has no Transfer Syntax UID")
    return meta, pos, syntax


def _raw_syntax(data: bytes) -> str:
    """The transfer syntax of a data set written without file meta information."""
    if data[:2] == b"\x08\x00":
        vr = data[4:6]
        return EXPLICIT_LE if vr.isalpha() and vr.isupper() else IMPLICIT_LE
    if data[:2] == b"\x00\x08":
        return EXPLICIT_BE
    raise HeaderError("not a DICOM file")


def _encodings(buf: bytes | memoryview, element: Element) -> list[str]:
    from pydicom.charset import convert_encodings

    names = _text(buf[element.value_start : element.value_end]).split("\\")
    return convert_encodings([n.strip() for n in names])


def _codec(
    encodings: list[str] | None,
) -> tuple[Callable[[bytes, str], str], Callable[[str], bytes]]:
    if not encodings:
        return (lambda raw, _vr: raw.decode("ascii", "replace").strip(" \0")), (
            lambda text: text.encode("ascii", "replace")
        )
    if len(encodings) == 1:  # one character set (the usual case): Python's codec is
        codec = encodings[0]  # what pydicom would use, without its per-value overhead
        return (lambda raw, _vr: raw.decode(codec, "replace").strip(" \0")), (
            lambda text: text.encode(codec, "replace")
        )
    from pydicom.charset import decode_bytes, encode_string

    def decode(raw: bytes, vr: str) -> str:
        # backslash separates values of the multi-valued text VRs (PS3.5 6.1.3)
        delimiters = {0x5C} if vr in ("LO", "SH", "PN", "UC") else set()
        with warnings.catch_warnings():  # bytes invalid in the declared character set
            warnings.simplefilter("ignore")  # decode with replacement characters: fine here
            return decode_bytes(raw, encodings, delimiters).strip(" \0")

    return decode, lambda text: encode_string(text, encodings)
