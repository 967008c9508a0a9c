"""Tag numbers by DICOM keyword: the generated table (``_tags.py``, from pydicom's data
dictionary) for the attributes we read, pydicom's dictionary for anything else."""

from __future__ import annotations

from functools import cache

from imaging_biobank.dicom._tags import TAGS


@cache
def tag(keyword: str) -> int:
    """The tag of a keyword, e.g. ``tag("SliceThickness") == 0x00180050``."""
    found = TAGS.get(keyword)
    if found is not None:
        return found
    from pydicom.datadict import tag_for_keyword

    value = tag_for_keyword(keyword)
    if value is None:
        raise KeyError(f"{keyword!r} is not a DICOM keyword")
    return int(value)


def tag_text(keyword: str) -> str:
    """The tag as written in the standard: ``(0020,000E)``."""
    value = tag(keyword)
    return f"({value >> 16:04X},{value & 0xFFFF:04X})"
