"""Body parts as a hierarchy: which Body Part Examined terms show a region.

From the Annex L edition's ``within`` (the region a term lies in: PANCREAS within ABDOMEN
within TRUNK) and ``covers`` (the regions a combined term spans: CHESTABDPELVIS covers CHEST,
ABDOMEN and PELVIS) columns, curated in ``tools/sources/body_part_regions.csv``. A series of
body part P shows region R when R is P or a region P lies within, or a region one of the
parts P covers lies within: ``ABDOMEN`` is shown by ABDOMEN, PANCREAS, KIDNEY and
CHESTABDPELVIS series, not by CHEST ones; ``PANCREAS`` only by PANCREAS and PANCREATICDUCT
series (a scan of the abdomen is not taken to show a given organ).
"""

from __future__ import annotations

from functools import cache

from imaging_biobank.vocab import catalog

ANNEX_L = "body-part-examined.annex-l"


def _codes(text: str) -> list[str]:
    return [c.strip() for c in text.split("|") if c.strip()]


@cache
def _within() -> dict[str, str]:
    return {t.code: t.get("within") for t in catalog.terms(ANNEX_L) if t.get("within")}


def regions_of(code: str) -> set[str]:
    """``code`` and every region it lies within."""
    within = _within()
    found = set()
    step: str | None = code
    while step and step not in found:
        found.add(step)
        step = within.get(step)
    return found


@cache
def _shown_by() -> dict[str, frozenset[str]]:
    shows: dict[str, set[str]] = {}
    for t in catalog.terms(ANNEX_L):
        regions = regions_of(t.code)
        for part in _codes(t.get("covers")):
            regions |= regions_of(part)
        for region in regions:
            shows.setdefault(region, set()).add(t.code)
    return {region: frozenset(codes) for region, codes in shows.items()}


def annex_l_code(value: str) -> str:
    """The Annex L code of a body part as users write it (any edition or spelling);
    ``catalog.UnknownTermError`` when it names none."""
    term = catalog.resolve("body_part_examined", value)
    if term.vocabulary == ANNEX_L:
        return term.code
    for other in catalog.terms(ANNEX_L):
        if other.maps_to == (term.vocabulary, term.code):
            return other.code
    return term.code


def showing(value: str) -> frozenset[str]:
    """The Annex L codes of the body parts whose series show ``value``'s region."""
    code = annex_l_code(value)
    return _shown_by().get(code, frozenset({code}))
