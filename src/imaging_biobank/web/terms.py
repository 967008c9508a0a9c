"""Words for coded values, from the shipped vocabularies: the label shown beside a facet value
or offered in the cohort builder's menus (``CT`` -> ``Computed Tomography``)."""

from __future__ import annotations

from functools import cache

from imaging_biobank.query.keys import KEYS
from imaging_biobank.vocab import catalog

DIAGNOSIS_TABLE = "disease"  # the table diagnosis values are resolved in (query.keys)


def table_of(key: str) -> str | None:
    """The vocabulary table a query key's (or facet's) values are codes of."""
    if key == "diagnosis":
        return DIAGNOSIS_TABLE
    found = KEYS.get(key)
    return found.vocabulary if found is not None else None


@cache
def label(key: str, code: str) -> str:
    """The vocabulary's label of ``code`` (empty when it is the code itself or unknown)."""
    table = table_of(key)
    if table is None:
        return ""
    term = catalog.index(table).find(code)
    if term is None or term.label == code:
        return ""
    return term.label


@cache
def preferred_terms(key: str) -> tuple[tuple[str, str], ...]:
    """(code, label) of every term of the preferred edition of a coded key's vocabulary."""
    table = table_of(key)
    if table is None or table == DIAGNOSIS_TABLE:
        return ()  # ICD-10 has thousands of codes: the builder offers those in use
    first = catalog.vocabularies_of(table)[0]
    return tuple((t.code, t.label) for t in catalog.terms(first.name))
