"""A parser-neutral view of a DICOM header: the values of one data set, by tag.

Both parsers are wrapped so the record builder sees exactly the same values, in one
canonical shape per element: ``("text", [str, ...])`` (split on backslash except for the
unsplit VRs, padding stripped), ``("number", [float, ...])`` (DS, IS and binary numbers),
or ``("items", [view, ...])`` for a sequence; ``None`` when absent or empty.
"""

from __future__ import annotations

import abc
import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
# text VRs that hold one value and may contain backslashes
UNSPLIT_VRS = frozenset({"LT", "ST", "UT", "UR"})
NUMBER_TEXT_VRS = frozenset({"DS", "IS"})
NUMBER_VRS = frozenset({"FD", "FL", "SL", "SS", "UL", "US", "SV", "UV"})
PADDING = " \x00"

Values = tuple[str, list[Any]]


LEADING_NUMBER = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")


def parse_number(text: str) -> float | None:
    """A DS or IS string as a finite float: its leading number, as C's strtod reads it
    (so ``1A`` is 1, as the fast parser says too); None when there is no number."""
    match = LEADING_NUMBER.match(text)
    if match is None:
        return None
    value = float(match.group(1))
    return value if math.isfinite(value) else None


def text_values(vr: str, raw: str) -> Values | None:
    """Canonical values of a text element from its raw string."""
    parts = [raw] if vr in UNSPLIT_VRS else raw.split("\\")
    values = [part.strip(PADDING) for part in parts]
    return ("text", values) if any(values) else None


def number_values(numbers: Sequence[float]) -> Values | None:
    values = [float(n) for n in numbers if math.isfinite(float(n))]
    return ("number", values) if values else None


def number_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


class HeaderView(abc.ABC):
    """The values of one data set. Subclasses provide ``_values`` for their parser."""

    @abc.abstractmethod
    def _values(self, tag: int) -> Values | None:
        """The canonical values of one element, or None when absent or empty."""

    def texts(self, tag: int) -> list[str] | None:
        """The values as text (numbers written back as text), None when absent."""
        found = self._values(tag)
        if found is None or found[0] == "items":
            return None
        kind, values = found
        return values if kind == "text" else [number_text(v) for v in values]

    def text(self, tag: int) -> str | None:
        """A text element as written (multiple values joined by backslash)."""
        found = self._values(tag)
        if found is None:
            return None
        kind, values = found
        if kind == "text":
            return values[0] if len(values) == 1 else "\\".join(values)
        if kind == "number":
            return "\\".join(number_text(v) for v in values)
        return None

    def numbers(self, tag: int) -> list[float] | None:
        """The values of a number element (DS, IS or binary); None for text and absent."""
        found = self._values(tag)
        return found[1] if found is not None and found[0] == "number" else None

    def number(self, tag: int) -> float | None:
        found = self._values(tag)
        return found[1][0] if found is not None and found[0] == "number" else None

    def values(self, tag: int) -> list[Any] | None:
        """The values as their VR says: numbers for DS, IS and binary VRs, else text."""
        found = self._values(tag)
        return found[1] if found is not None and found[0] != "items" else None

    def nul_values(self, tags: Sequence[int]) -> int:
        """How many of the text elements ``tags`` hold NUL bytes inside their value (not
        as padding): dirt that real archives carry and that is dropped on reading."""
        count = 0
        for t in tags:
            found = self._values(t)
            if found is not None and found[0] == "text":
                count += any("\x00" in value for value in found[1])
        return count

    def present(self, tags: Sequence[int]) -> list[int]:
        """The tags among ``tags`` that have a value (cheap when values are prefetched)."""
        return [t for t in tags if self._values(t) is not None]

    def items(self, tag: int) -> Sequence[HeaderView]:
        """The items of a sequence element (empty when absent)."""
        found = self._values(tag)
        return found[1] if found is not None and found[0] == "items" else ()

    def item(self, tag: int) -> HeaderView | None:
        items = self.items(tag)
        return items[0] if items else None

    def walk(self, *path: int) -> Iterator[HeaderView]:
        """Every item reached by following the sequence tags of ``path``."""
        if not path:
            yield self
            return
        for item in self.items(path[0]):
            yield from item.walk(*path[1:])


class PydicomView(HeaderView):
    """A pydicom ``Dataset``: the reference reader."""

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def _values(self, tag: int) -> Values | None:
        source = self.dataset
        if tag >> 16 == 0x0002:  # pydicom keeps the file meta group apart
            source = getattr(self.dataset, "file_meta", None)
            if source is None:
                return None
        try:
            element = source.get(tag)
        except Exception:  # a value pydicom cannot convert: treat as absent
            return None
        if element is None:
            return None
        vr, value = element.VR, element.value
        if value is None or (isinstance(value, str | bytes | list) and len(value) == 0):
            return None
        if vr == "SQ":
            return "items", [PydicomView(item) for item in value]
        multi = _is_multi(value)
        if vr in NUMBER_TEXT_VRS:
            parts = [_original(v) for v in value] if multi else str(_original(value)).split("\\")
            return number_values([n for p in parts if (n := parse_number(p)) is not None])
        if vr in NUMBER_VRS:
            return number_values(list(value) if multi else [value])
        if vr in TEXT_VRS:
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            raw = "\\".join(_original(v) for v in value) if multi else _original(value)
            return text_values(vr, raw)
        return None


def _is_multi(value: Any) -> bool:
    return isinstance(value, list | tuple) or type(value).__name__ == "MultiValue"


def _original(value: Any) -> str:
    """The value as it was written: pydicom keeps DS and IS strings, names as text."""
    original = getattr(value, "original_string", None)
    if isinstance(original, str):
        return original
    return str(value)


class NeedsReferenceParserError(ValueError):
    """dicomsdl met something only pydicom interprets (VR UN elements): use pydicom."""


_VR_NAMES: dict[int, str] = {}


def _vr_names(dl: Any) -> dict[int, str]:
    """dicomsdl VR codes by number (``int(vr)`` is fast, ``vr.name`` costs ~7 µs)."""
    if not _VR_NAMES:
        for name in dir(dl.VR):
            if name.isupper():
                _VR_NAMES[int(getattr(dl.VR, name))] = name
    return _VR_NAMES


class DicomsdlView(HeaderView):
    """A dicomsdl ``DataSet``: the fast reader.

    ``prefetch`` converts many top-level elements with one ``getValues`` call (dicomsdl's
    bulk accessor); anything it cannot settle there is read element by element.
    Results are memoised per view.
    """

    def __init__(self, dataset: Any, names: dict[int, str]):
        self.dataset = dataset
        self._names = names
        self._memo: dict[int, Values | None] = {}
        self._settled: frozenset[int] = frozenset()  # prefetched: absent unless in memo

    def prefetch(self, tags: Sequence[int], settled: frozenset[int]) -> None:
        """Convert ``tags`` with one bulk call; ``settled`` is ``frozenset(tags)``."""
        memo = self._memo
        unsettled = []
        values = self.dataset.getValues(tags)
        for tag, value in [(t, v) for t, v in zip(tags, values, strict=True) if v is not None]:
            kind = type(value)
            if kind is str:
                if "\\" in value:
                    unsettled.append(tag)  # the VR decides whether to split
                else:
                    stripped = value.strip(PADDING)
                    if stripped:
                        memo[tag] = ("text", [stripped])
            elif kind is float or kind is int:
                if value == 0:
                    unsettled.append(tag)  # dicomsdl gives 0 for an empty element too
                elif math.isfinite(value):
                    memo[tag] = ("number", [float(value)])
            elif (
                kind is list
                and value
                and all(type(v) is float or type(v) is int for v in value)
                and any(v != 0 for v in value)
            ):
                memo[tag] = number_values(value)
            else:
                # lists of text (the VR decides how to split), sequences, VR UN
                unsettled.append(tag)
        for tag in unsettled:
            memo[tag] = self._read(tag)
        self._settled = settled

    def nul_values(self, tags: Sequence[int]) -> int:
        # dicomsdl drops NUL bytes from the text it gives: look at the raw value where it is
        # longer than the text (padding, or bytes dropped)
        count = 0
        for t in tags:
            found = self._values(t)
            if found is None or found[0] != "text":
                continue
            element = self.dataset.getDataElement(t)
            if element.length() > sum(map(len, found[1])) + len(found[1]) - 1:
                count += b"\x00" in bytes(element.toBytes()).rstrip(b" \x00")
        return count

    def present(self, tags: Sequence[int]) -> list[int]:
        memo = self._memo
        if self._settled:
            return [
                t
                for t in tags
                if memo.get(t) is not None
                or (t not in memo and t not in self._settled and self._values(t) is not None)
            ]
        return [t for t in tags if self._values(t) is not None]

    def _values(self, tag: int) -> Values | None:
        memo = self._memo
        if tag in memo:
            return memo[tag]
        if tag in self._settled:
            return None
        result = self._read(tag)
        memo[tag] = result
        return result

    def _read(self, tag: int) -> Values | None:
        element = self.dataset.getDataElement(tag)
        if element.length() == 0:
            return None
        vr = self._names.get(int(element.vr()), "NONE")
        if vr == "NONE":
            return None
        if vr == "UN":  # pydicom re-reads these with the dictionary's VR; dicomsdl does not
            raise NeedsReferenceParserError(f"element {tag:08X} has VR UN")
        if vr in TEXT_VRS:
            return text_values(vr, element.toString())
        if vr in NUMBER_TEXT_VRS:
            parts = element.toString().split("\\")
            return number_values([n for p in parts if (n := parse_number(p)) is not None])
        if vr == "SQ":
            sequence = element.toSequence()
            names = self._names
            items = [DicomsdlView(sequence.getDataSet(i), names) for i in range(len(sequence))]
            return "items", items
        if vr in NUMBER_VRS:
            if vr in ("FD", "FL"):
                return number_values(element.toDoubleVector())
            return number_values(element.toLongLongVector())
        return None
