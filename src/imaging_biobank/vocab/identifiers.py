"""BBMRI-ERIC Directory identifier rules (directory-scripts ``checks/ValidateIDs.py``).

- biobank ``bbmri-eric:ID:<CC>_<local>``, collection ``<biobank id>:collection:<local>``,
  person ``bbmri-eric:contactID:<CC>_<local>``, network ``bbmri-eric:networkID:<CC>_<local>``;
- ``<CC>`` is a national node: an ISO 3166-1 country code (the Directory writes the United
  Kingdom as ``UK``), or ``EXT``, ``EU`` or ``IARC`` for the non-country areas (networks:
  ``EU`` and ``EXT`` only);
- characters ``[A-Za-z0-9:_-]`` only, and no empty segment (``::``).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Final

from imaging_biobank.vocab import catalog

ALLOWED_CHARACTERS: Final = re.compile(r"^[A-Za-z0-9:_-]+$")
AREAS: Final = ("EXT", "EU", "IARC")
NETWORK_AREAS: Final = ("EXT", "EU")
PREFIX: Final = {
    "biobank": "bbmri-eric:ID:",
    "person": "bbmri-eric:contactID:",
    "network": "bbmri-eric:networkID:",
}


class InvalidIdentifierError(ValueError):
    """An identifier that breaks a Directory rule; the message says which and the form."""


@cache
def national_nodes() -> frozenset[str]:
    """Country codes a Directory id may start with (ISO 3166-1 alpha-2 and Directory ids)."""
    codes = set()
    for term in catalog.terms("country.iso3166"):
        codes.add(term.code)
        if term.get("directory_id"):
            codes.add(term.get("directory_id"))
    return frozenset(codes)


def _check_characters(value: str, expected: str) -> None:
    if not ALLOWED_CHARACTERS.match(value):
        bad = sorted({ch for ch in value if not re.match(r"[A-Za-z0-9:_-]", ch)})
        raise InvalidIdentifierError(
            f"{value!r} has characters {bad} outside [A-Za-z0-9:_-]; expected {expected}"
        )
    if "::" in value:
        raise InvalidIdentifierError(f"{value!r} has an empty segment ('::'); expected {expected}")


def _check_prefixed(value: str, kind: str, areas: tuple[str, ...]) -> None:
    prefix = PREFIX[kind]
    expected = f"{prefix}<CC>_<local id>, <CC> a country code or one of {', '.join(areas)}"
    _check_characters(value, expected)
    if not value.startswith(prefix):
        raise InvalidIdentifierError(
            f"{value!r} does not start with {prefix!r}; expected {expected}"
        )
    rest = value[len(prefix) :]
    node, sep, local = rest.partition("_")
    if not sep or not local:
        raise InvalidIdentifierError(f"{value!r} lacks '<CC>_<local id>'; expected {expected}")
    if node not in national_nodes() and node not in areas:
        raise InvalidIdentifierError(
            f"{value!r}: {node!r} is not a country code nor one of {', '.join(areas)};"
            f" expected {expected}"
        )


def check_biobank_id(value: str) -> str:
    """A biobank id, e.g. ``bbmri-eric:ID:ES_PRIMAGE``; returns it unchanged if valid."""
    _check_prefixed(value, "biobank", AREAS)
    return value


def check_collection_id(value: str, biobank_id: str) -> str:
    """A collection id: its biobank's id, ``:collection:``, then a local id."""
    prefix = f"{biobank_id}:collection:"
    expected = f"{prefix}<local id>"
    _check_characters(value, expected)
    if not value.startswith(prefix) or len(value) == len(prefix):
        raise InvalidIdentifierError(
            f"{value!r} does not start with its biobank id and ':collection:'; expected {expected}"
        )
    return value


def check_person_id(value: str) -> str:
    """A contact person id, e.g. ``bbmri-eric:contactID:ES_PRIMAGE_DM``."""
    _check_prefixed(value, "person", AREAS)
    return value


def check_network_id(value: str) -> str:
    """A network id, e.g. ``bbmri-eric:networkID:EU_PRIMAGE``."""
    _check_prefixed(value, "network", NETWORK_AREAS)
    return value


def check_local_id(value: str) -> str:
    """An id with Directory characters but no prefix rule (studies)."""
    _check_characters(value, "characters [A-Za-z0-9:_-] and no '::'")
    return value
