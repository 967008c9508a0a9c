"""CollectionFacts: the BBMRI-ERIC Directory's star model of a collection's counts.

A fact row counts the donors and the samples of one collection that share a sex, an age
range, a sample type and a disease; ``*`` in a dimension means "any" (MIABIS issue #18,
in the Directory since 2024). Per collection this module writes:

- exactly one all-``*`` row, the collection's totals (its ``number_of_samples`` equals the
  collection's ``size``);
- one row per value of each dimension with the other three ``*`` (the marginals the
  Directory's checks expect);
- the detail rows: one per combination of values of every dimension that applies to the
  collection (a dimension no unit has a value for, such as the sample type of an image
  collection, stays ``*``).

What is counted: "samples" are the collection's items (samples; images, i.e. DICOM
instances, of an image collection; records or results of clinical and molecular
collections), as ``size`` counts them; donors are counted once per row. A unit with
several diseases is counted in each disease's rows, as the star model intends; a unit with
no known value in a dimension (no diagnosis, say) is counted only in the rows where that
dimension is ``*``, never under a value it lacks. Ages are the donor's at the item (the
imaging study, the sample's creation), ``Unknown`` when not known.

Small cells (k-anonymity, k = 10, directory-scripts ``k_anonymity.py``): no row says that
1 to 9 donors share its values.

- A marginal or detail row with 1 to 9 donors is suppressed: left out. Its donors and
  samples are not lost: marginals and totals are computed from all units, never summed
  from the rows written, so they are merged into the coarser rows (the marginal of each
  of its values and the all-``*`` row).
- The all-``*`` row is always written; when the whole collection has 1 to 9 donors its
  ``number_of_donors`` is left empty (suppressed), its ``number_of_samples`` kept (the
  collection's ``size`` is public anyway). All its other rows then have fewer than 10
  donors too, so such a collection has its one total row only.

Limit: this is primary suppression only, as the Directory's rule asks; a reader who
subtracts the detail rows written from a marginal learns the total of the suppressed
cells of that marginal (which may be fewer than 10 donors). Complementary suppression is
not attempted.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from imaging_biobank.export.directory_rules import FACT_PREFIX, STAR, Row

DIMENSIONS: Final = ("sex", "age_range", "sample_type", "disease")
K_ANONYMITY: Final = 10


@dataclass(frozen=True)
class FactUnit:
    """What one donor contributes to a collection's facts through one item (or, with
    ``weight`` 0, as a member with no item): the values of each dimension it has."""

    donor: int
    weight: int  # items it stands for: images of a series, 1 sample/record/result
    sex: str | None
    age_range: str
    sample_type: str | None
    diseases: frozenset[str] = field(default_factory=frozenset)

    def values(self, dimension: str) -> tuple[str, ...]:
        """The values the unit has in one dimension (none: it is counted under ``*`` only)."""
        if dimension == "disease":
            return tuple(sorted(self.diseases))
        value = getattr(self, dimension)
        return (value,) if value else ()


@dataclass
class _Cell:
    donors: set[int] = field(default_factory=set)
    samples: int = 0


def _patterns(units: Sequence[FactUnit]) -> list[tuple[str, ...]]:
    """The dimension sets rows are written for: none (totals), each applicable dimension
    alone, and all applicable dimensions together."""
    applicable = tuple(d for d in DIMENSIONS if any(u.values(d) for u in units))
    patterns: list[tuple[str, ...]] = [()]
    patterns += [(d,) for d in applicable]
    if len(applicable) > 1:
        patterns.append(applicable)
    return patterns


def star_facts(
    collection_id: str,
    units: Sequence[FactUnit],
    *,
    last_update: str,
    k: int = K_ANONYMITY,
) -> list[Row]:
    """The CollectionFacts rows of one collection (see the module docstring), ids
    ``bbmri-eric:factID:<collection id without bbmri-eric:ID:>:<n>`` in a stable order."""
    rows: list[Row] = []
    stub = FACT_PREFIX + collection_id.removeprefix("bbmri-eric:ID:")
    for pattern in _patterns(units):
        cells: dict[tuple[str, ...], _Cell] = {}
        for unit in units:
            for combination in itertools.product(*(unit.values(d) for d in pattern)):
                cell = cells.setdefault(combination, _Cell())
                cell.donors.add(unit.donor)
                cell.samples += unit.weight
        if not pattern:
            cells.setdefault((), _Cell())
        for combination in sorted(cells):
            cell = cells[combination]
            donors: int | None = len(cell.donors)
            if pattern and donors is not None and 0 < donors < k:
                continue  # suppressed: counted in the coarser rows
            if not pattern and donors is not None and 0 < donors < k:
                donors = None
            values = dict(zip(pattern, combination, strict=True))
            rows.append(
                {
                    "id": f"{stub}:{len(rows) + 1}",
                    "collection": collection_id,
                    **{d: values.get(d, STAR) for d in DIMENSIONS},
                    "number_of_samples": cell.samples,
                    "number_of_donors": donors,
                    "last_update": last_update,
                }
            )
    return rows
