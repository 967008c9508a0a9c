"""PS3.15 Table E.1-1 as data: the action for every attribute under the chosen options.

Actions (the table's legend): X remove · Z zero length · D dummy value · K keep ·
C clean · U consistent replacement UID. Conditional actions (X/Z, X/D, Z/D, X/Z/D,
X/Z/U*) are resolved by the attribute's type in the IOD of the object's SOP class, at the
sequence path where it occurs: Type 1 needs a value (D, or U for reference sequences),
Type 2 needs the attribute (Z), otherwise it goes (X). An attribute an IOD does not define
there counts as Type 3.

When options are chosen, their column replaces the Basic Profile action; when two chosen
options disagree on an attribute, cleaning (C) wins over keeping (K).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from imaging_biobank.deid.options import DeidOptions

TABLE_FILE = "ps3.15-e1-1.json"


def _data(name: str) -> bytes:
    return (resources.files("imaging_biobank.deid") / "data" / name).read_bytes()


@dataclass(frozen=True)
class DataFile:
    name: str
    edition: str
    source: str
    licence: str
    sha256: str


@cache
def manifest() -> dict[str, DataFile]:
    """The shipped data files with their edition and source (``deid/data/deid.toml``)."""
    entries = tomllib.loads(_data("deid.toml").decode("utf-8"))["file"]
    return {e["name"]: DataFile(**e) for e in entries}


@cache
def table_rows() -> tuple[dict[str, str], ...]:
    return tuple(json.loads(_data(TABLE_FILE)))


@cache
def _iod_of_sop_class() -> dict[str, str]:
    text = _data("sop_class_iod.csv").decode("utf-8")
    return {r["sop_class_uid"]: r["iod"] for r in csv.DictReader(io.StringIO(text))}


@cache
def _attribute_types() -> dict[tuple[str, str, str], str]:
    text = gzip.decompress(_data("iod_attribute_types.csv.gz")).decode("utf-8")
    return {
        (r["iod"], r["path"], r["keyword"]): r["type"] for r in csv.DictReader(io.StringIO(text))
    }


@cache
def safe_attribute_tags() -> frozenset[int]:
    """Public text attributes outside Table E.1-1 that are kept (``safe_attributes.csv``)."""
    text = _data("safe_attributes.csv").decode("utf-8")
    return frozenset(int(r["tag"], 16) for r in csv.DictReader(io.StringIO(text)))


@cache
def safe_private() -> dict[tuple[str, int, int], str]:
    """(private creator, group, element byte) kept under Retain Safe Private -> its VR
    (a value that is not of that VR is not kept)."""
    text = _data("safe_private.csv").decode("utf-8")
    return {
        (r["creator"], int(r["group"], 16), int(r["element"], 16)): r["vr"]
        for r in csv.DictReader(io.StringIO(text))
    }


def iod_of(sop_class_uid: str | None) -> str | None:
    """The IOD of a SOP class (``None`` for private or unknown classes)."""
    return _iod_of_sop_class().get(sop_class_uid or "")


def attribute_type(iod: str | None, path: tuple[str, ...], keyword: str) -> str:
    """The attribute's type in the IOD at that sequence path; "3" where undefined."""
    if iod is None:
        return "3"
    return _attribute_types().get((iod, "/".join(path), keyword), "3")


def resolve(action: str, kind: str) -> str:
    """A conditional action resolved for an attribute of type ``kind`` (1, 1C, 2, 2C, 3)."""
    if "/" not in action:
        return action
    if action == "X/Z/U*":
        # A sequence of references: the standard lets it go when Type 3, but we keep it
        # with every UID replaced (U), whatever its type, so derived images, contours and
        # registrations still point at their sources; the items are de-identified too.
        return "U"
    choices = action.replace("*", "").split("/")
    if kind in ("1", "1C"):
        for needed in ("D", "U", "Z"):  # a value, kept references, or at least presence
            if needed in choices:
                return needed
    if kind in ("1", "1C", "2", "2C"):
        if "Z" in choices:
            return "Z"
        if "D" in choices:  # X/D of a Type 2 attribute: it must be present; a dummy is
            return "D"
    return "X" if "X" in choices else choices[0]


def _tag(text: str) -> int:
    group, element = text.strip("()").split(",")
    return int(group, 16) << 16 | int(element, 16)


@dataclass(frozen=True)
class Profile:
    """Actions under one set of options: ``actions[tag]`` is X, Z, D, K, C, U or a
    conditional action left for ``resolve`` (with ``keywords[tag]`` to find its type)."""

    options: DeidOptions
    actions: dict[int, str]
    keywords: dict[int, str]
    curves: str  # (50xx,xxxx) groups
    overlays: str  # (60xx,3000) overlay data and (60xx,4000) comments: the 60xx groups
    private: str  # odd groups: X, or C (allow-listed elements kept)

    @classmethod
    def build(cls, options: DeidOptions) -> Profile:
        from pydicom.datadict import keyword_for_tag

        columns = options.columns
        actions: dict[int, str] = {}
        keywords: dict[int, str] = {}
        masked: dict[str, str] = {}
        for row in table_rows():
            chosen = [row[c] for c in columns if c in row]
            action = "C" if "C" in chosen else "K" if "K" in chosen else row["basicProfile"]
            if any(c not in "0123456789abcdefABCDEF" for c in row["id"]):
                masked[row["id"]] = action
                continue
            tag = _tag(row["tag"])
            actions[tag] = action
            if "/" in action:
                keywords[tag] = keyword_for_tag(tag)
        return cls(
            options=options,
            actions=actions,
            keywords=keywords,
            curves=masked["50xxxxxx"],
            overlays=masked["60xx3000"],
            private=masked["ggggeeee-where-gggg-is-odd"],
        )

    def action(self, tag: int, iod: str | None, path: tuple[str, ...]) -> str | None:
        """The resolved action for a public attribute in the table; ``None`` if the table
        does not list it."""
        action = self.actions.get(tag)
        if action is None or "/" not in action:
            return action
        return resolve(action, attribute_type(iod, path, self.keywords[tag]))
