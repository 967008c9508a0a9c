"""DICOM data sets as byte streams (PS3.5 section 7): element headers read in place, values
left as slices of the input, new elements encoded in the input's own transfer syntax.

The de-identifier reads and writes at this level so that everything it keeps (pixel data
above all) is copied byte for byte, and a header costs microseconds instead of the
milliseconds of building and re-encoding a pydicom ``Dataset``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache

from imaging_biobank.dicom.record import HeaderError

ITEM = 0xFFFEE000
ITEM_END = 0xFFFEE00D
SEQUENCE_END = 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
PIXEL_DATA = 0x7FE00010
# explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 Table 7.1-1)
LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"


class TruncatedError(HeaderError):
    """A length runs past the end of the data."""


class Syntax:
    """How elements are encoded: explicit or implicit VR, little or big endian (with the
    structs to read them, made once: a file has a few hundred headers)."""

    __slots__ = ("explicit", "head", "little", "tag", "u16", "u32")

    def __init__(self, explicit: bool, little: bool):
        order = "<" if little else ">"
        self.explicit = explicit
        self.little = little
        self.tag = struct.Struct(order + "HH")
        self.head = struct.Struct(order + "HH2sH")  # tag, explicit VR, short length
        self.u16 = struct.Struct(order + "H")
        self.u32 = struct.Struct(order + "I")


IMPLICIT = Syntax(explicit=False, little=True)
EXPLICIT = Syntax(explicit=True, little=True)
BIG = Syntax(explicit=True, little=False)
_VR_NAMES = (
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN"
    " UR US UT UV"
)
_VRS = {vr.encode("ascii"): (vr, vr in LONG_VRS) for vr in _VR_NAMES.split()}


def syntax_of(transfer_syntax_uid: str) -> Syntax:
    if transfer_syntax_uid == IMPLICIT_LE:
        return IMPLICIT
    if transfer_syntax_uid == EXPLICIT_BE:
        return BIG
    return EXPLICIT


@cache
def dictionary_vrs(tag: int) -> frozenset[str]:
    """Every VR the data dictionary allows a tag ("US or SS", "OB or OW"); none if unknown."""
    from pydicom.datadict import dictionary_VR

    if tag >> 16 & 1:
        return frozenset()
    try:
        return frozenset(str(dictionary_VR(tag)).split(" or "))
    except KeyError:
        return frozenset()


@cache
def dictionary_vr(tag: int) -> str:
    """The VR the data dictionary gives a tag ("UN" if none; the first of "US or SS")."""
    from pydicom.datadict import dictionary_VR

    if tag >> 16 & 1:
        return "UN"
    try:
        return str(dictionary_VR(tag)).split(" or ")[0]
    except KeyError:
        return "UN"


@dataclass(slots=True)
class Element:
    """One element of a data set: where its header and value are in ``buf``.

    For a sequence (or encapsulated pixel data) of undefined length, ``value_end`` is where
    its sequence delimiter starts and ``end`` is after it; ``children`` keeps the items
    parsed while looking for that delimiter."""

    tag: int
    vr: str
    start: int
    value_start: int
    value_end: int
    end: int
    undefined: bool
    children: list[tuple[list[Element], Syntax]] | None = None


def read_element(buf: bytes | memoryview, pos: int, end: int, syntax: Syntax) -> Element:
    """The element whose header starts at ``pos`` (its value is not read)."""
    if pos + 8 > end:
        raise TruncatedError(f"truncated: an element header at byte {pos} runs past {end}")
    group, number, vr_bytes, short = syntax.head.unpack_from(buf, pos)
    tag = group << 16 | number
    if group == 0xFFFE:
        length = syntax.u32.unpack_from(buf, pos + 4)[0]
        return Element(tag, "", pos, pos + 8, pos + 8, pos + 8, length == UNDEFINED)
    known = _VRS.get(vr_bytes) if syntax.explicit else None
    if known is not None:
        vr, long = known
        if long:
            if pos + 12 > end:
                raise TruncatedError(f"truncated: an element header at byte {pos} runs past {end}")
            length = syntax.u32.unpack_from(buf, pos + 8)[0]
            value_start = pos + 12
        else:
            length, value_start = short, pos + 8
    else:  # implicit VR (or an implicit element inside an explicit file, which occurs)
        vr = dictionary_vr(tag)
        length = syntax.u32.unpack_from(buf, pos + 4)[0]
        value_start = pos + 8
    if length == UNDEFINED:
        return Element(tag, vr, pos, value_start, value_start, value_start, True)
    value_end = value_start + length
    if value_end > end:
        raise TruncatedError(
            f"truncated: ({tag >> 16:04X},{tag & 0xFFFF:04X}) runs past the end of the data"
        )
    return Element(tag, vr, pos, value_start, value_end, value_end, False)


def _items_to_delimiter(
    buf: bytes | memoryview, pos: int, end: int, syntax: Syntax, pixels: bool
) -> tuple[list[tuple[list[Element], Syntax]], int, int]:
    """The items of an undefined-length sequence (not parsed for pixel data fragments),
    where its delimiter starts and where it ends."""
    found: list[tuple[list[Element], Syntax]] = []
    while True:
        item = read_element(buf, pos, end, syntax)
        if item.tag == SEQUENCE_END:
            return found, pos, pos + 8
        if item.tag != ITEM:
            raise HeaderError(f"not an item inside a sequence at byte {pos}")
        if item.undefined:
            elements, pos = parse(buf, item.value_start, end, syntax, in_item=True)
        else:
            stop = item.value_start + syntax.u32.unpack_from(buf, pos + 4)[0]
            if stop > end:
                raise TruncatedError(f"truncated: an item at byte {item.start} runs past {end}")
            elements = [] if pixels else parse(buf, item.value_start, stop, syntax)[0]
            pos = stop
        found.append((elements, syntax))


def parse(
    buf: bytes | memoryview, pos: int, end: int, syntax: Syntax, in_item: bool = False
) -> tuple[list[Element], int]:
    """The elements of a data set from ``pos`` to ``end`` (or, ``in_item``, to its item
    delimiter), and the position after it. Items of defined length are parsed on demand."""
    elements: list[Element] = []
    while pos < end:
        element = read_element(buf, pos, end, syntax)
        if element.tag == ITEM_END:
            if in_item:
                return elements, element.end
            raise HeaderError(f"an item delimiter outside an item at byte {pos}")
        if element.undefined:
            inner = IMPLICIT if element.vr == "UN" else syntax  # PS3.5 6.2.2: UN as SQ
            pixels = element.tag == PIXEL_DATA
            children, element.value_end, element.end = _items_to_delimiter(
                buf, element.value_start, end, inner, pixels
            )
            element.children = None if pixels else children
        elements.append(element)
        pos = element.end
    if in_item:
        raise TruncatedError("truncated: the data ends inside a sequence item")
    return elements, pos


def items(
    buf: bytes | memoryview, element: Element, syntax: Syntax
) -> list[tuple[list[Element], Syntax]]:
    """The data sets of a sequence's items, each parsed (one level deep)."""
    if element.children is not None:
        return element.children
    inner = IMPLICIT if element.vr == "UN" else syntax
    found = []
    pos, end = element.value_start, element.value_end
    while pos < end:
        item = read_element(buf, pos, end, inner)
        if item.tag != ITEM:
            raise HeaderError(f"not an item inside a sequence at byte {pos}")
        if item.undefined:
            elements, pos = parse(buf, item.value_start, end, inner, in_item=True)
        else:
            stop = item.value_start + inner.u32.unpack_from(buf, item.start + 4)[0]
            if stop > end:
                raise TruncatedError(f"truncated: an item at byte {item.start} runs past {end}")
            elements, pos = parse(buf, item.value_start, stop, inner)
        found.append((elements, inner))
    return found


# --- writing ------------------------------------------------------------------------------


def header(tag: int, vr: str, length: int, syntax: Syntax) -> bytes:
    """An element header in ``syntax``."""
    head = syntax.tag.pack(tag >> 16, tag & 0xFFFF)
    if not syntax.explicit:
        return head + syntax.u32.pack(length)
    if vr in LONG_VRS:
        return head + vr.encode("ascii") + b"\0\0" + syntax.u32.pack(length)
    if length > 0xFFFF:
        raise ValueError(f"a {vr} value of {length} bytes does not fit a short header")
    return head + vr.encode("ascii") + syntax.u16.pack(length)


def element_bytes(tag: int, vr: str, value: bytes, syntax: Syntax) -> bytes:
    """A whole element (the value already encoded and padded to even length)."""
    return header(tag, vr, len(value), syntax) + value


def sequence_start(tag: int, vr: str, syntax: Syntax) -> bytes:
    """The header of a sequence of undefined length (its items follow, then ``END``)."""
    return header(tag, "SQ" if vr != "UN" else "UN", UNDEFINED, syntax)


def item_start(syntax: Syntax) -> bytes:
    return syntax.tag.pack(0xFFFE, 0xE000) + syntax.u32.pack(UNDEFINED)


def item_end(syntax: Syntax) -> bytes:
    return syntax.tag.pack(0xFFFE, 0xE00D) + b"\0\0\0\0"


def sequence_end(syntax: Syntax) -> bytes:
    return syntax.tag.pack(0xFFFE, 0xE0DD) + b"\0\0\0\0"


def pad(value: bytes, vr: str) -> bytes:
    """Pad to even length: NUL for UI and binary VRs, space for text."""
    if len(value) % 2 == 0:
        return value
    return value + (b"\0" if vr in ("UI", "OB", "UN") else b" ")
