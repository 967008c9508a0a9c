"""Header values matched to the controlled vocabularies (pure, cached per distinct value).

Body Part Examined: the Anatomic Region Sequence (0008,2218) takes precedence over
(0018,0015); a value is matched in both editions (current Annex L first, then the PRIMAGE
list, older SNOMED codes, known spellings) and resolved to the current edition. The flag
says how far the header was from the standard:

- None: a defined term or current code, as written;
- ``normalised``: matched unambiguously after folding case and spacing, a known spelling
  (``Abd``, ``WHOLE BODY``), an older edition's term or code;
- ``nonstandard``: nothing matches; the value is kept verbatim and no term is set;
- ``conflict``: the sequence and (0018,0015) name different terms (the sequence wins).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from imaging_biobank.dicom.record import Coded
from imaging_biobank.vocab import catalog

CURRENT_BODY_PARTS = "body-part-examined.annex-l"
SNOMED_SCHEMES = frozenset({"SCT", "SRT", "SNM3", "SNOMED", "99SDM"})
NORMALISED = "normalised"
NONSTANDARD = "nonstandard"
CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class Match:
    """A term (None when nothing matched) and how the header value got there."""

    term: catalog.Term | None
    flag: str | None


def current(term: catalog.Term) -> catalog.Term:
    """The current-edition counterpart of a body part term (itself if current)."""
    if term.vocabulary == CURRENT_BODY_PARTS:
        return term
    target = term.maps_to
    if target is not None and target[0] == CURRENT_BODY_PARTS:
        return catalog.term(*target)
    return term


@lru_cache(maxsize=4096)
def _body_part_text(value: str) -> Match:
    index = catalog.index("body_part_examined")
    term = index.find(value)
    if term is None:
        return Match(None, NONSTANDARD)
    resolved = current(term)
    exact = resolved.vocabulary == CURRENT_BODY_PARTS and resolved.code == value
    return Match(resolved, None if exact else NORMALISED)


@lru_cache(maxsize=4096)
def _body_part_code(scheme: str | None, code: str | None, meaning: str | None) -> Match:
    index = catalog.index("body_part_examined")
    if code and (scheme is None or scheme.upper() in SNOMED_SCHEMES):
        term = index.find(code)
        if term is not None:
            resolved = current(term)
            exact = resolved.get("snomed_code") == code
            return Match(resolved, None if exact else NORMALISED)
    if meaning:
        match = _body_part_text(meaning)
        if match.term is not None:
            return Match(match.term, NORMALISED)
    return Match(None, NONSTANDARD)


def body_part(value: str | None, region: Coded | None) -> Match:
    """The Body Part Examined term of a series from (0008,2218) and (0018,0015)."""
    from_text = _body_part_text(value) if value else None
    if region is not None:
        from_code = _body_part_code(region.scheme, region.code, region.meaning)
        if from_code.term is not None:
            if from_text is not None and from_text.term not in (None, from_code.term):
                return Match(from_code.term, CONFLICT)
            return from_code
    if from_text is not None:
        return from_text
    return Match(None, NONSTANDARD if region is not None else None)


@lru_cache(maxsize=1024)
def modality(value: str | None) -> catalog.Term | None:
    """The Modality (0008,0060) term: CID 33 first, then PRIMAGE, then retired terms."""
    return catalog.index("modality").find(value) if value else None


@lru_cache(maxsize=4096)
def dataset_type(sop_class_uid: str) -> catalog.Term | None:
    """The Dataset Type of a SOP Class UID (current edition first)."""
    return catalog.index("dataset_type").find(sop_class_uid)


SEX = {"M": "Male", "F": "Female", "O": "Undifferentiated"}


def sex(value: str | None) -> catalog.Term:
    """The MIABIS sex of a DICOM Patient's Sex (0010,0040): M, F, O; anything else Unknown."""
    code = SEX.get((value or "").strip().upper(), "Unknown")
    return catalog.resolve("sex", code)
