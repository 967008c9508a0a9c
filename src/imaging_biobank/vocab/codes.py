"""The code systems an e-form field may bind to, and how a code of each is checked.

Pure. ICD-10 codes are looked up in the shipped vocabulary (the BBMRI-ERIC Directory's
ICD-10 list); LOINC codes carry a mod-10 check digit, SNOMED CT identifiers a Verhoeff
check digit and a partition; ATC codes have a fixed shape. A code that passes these checks
is well formed, not necessarily the right concept: the checks catch typing slips.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from imaging_biobank.vocab import catalog

UCUM_SYSTEM: Final = "http://unitsofmeasure.org"


class CodeError(ValueError):
    """A code that is not a valid code of its system; the message says why."""


@dataclass(frozen=True)
class CodeSystem:
    """A code system by its short name (used in the @IB- tags) and its FHIR URI."""

    name: str
    uri: str
    title: str
    check: Callable[[str], str]  # the normalised code, or CodeError


def check_icd10(code: str) -> str:
    """An ICD-10 category or subcategory (``C74.9``) of the shipped ICD-10 list."""
    value = code.strip().upper()
    if not re.fullmatch(r"[A-Z][0-9]{2}(\.[0-9A-Z]{1,2})?", value):
        raise CodeError(f"{code!r} is not an ICD-10 code (a letter, two digits, e.g. C74.9)")
    term = catalog.index("disease").find(value)
    if term is None or term.vocabulary != "disease.icd-10" or term.code.upper() != value:
        raise CodeError(f"{code!r} is not in the ICD-10 list (imaging-biobank vocab terms disease)")
    return term.code


def loinc_check_digit(digits: str) -> int:
    """LOINC's mod-10 check digit of the digits before the hyphen.

    LOINC doubles the number made of the digits in odd places from the right, adds the
    digits of the product and of the other digits, and takes what is missing to the next
    multiple of ten; as no doubled digit carries twice, that is the Luhn sum.
    """
    total = 0
    for place, char in enumerate(reversed(digits)):
        digit = int(char)
        if place % 2 == 0:
            digit *= 2
            digit = digit - 9 if digit > 9 else digit
        total += digit
    return (10 - total % 10) % 10


def check_loinc(code: str) -> str:
    """A LOINC code ``NNNNN-C`` whose check digit C is right."""
    value = code.strip()
    match = re.fullmatch(r"([0-9]{1,7})-([0-9])", value)
    if match is None:
        raise CodeError(f"{code!r} is not a LOINC code (digits, a hyphen, a check digit)")
    expected = loinc_check_digit(match.group(1))
    if int(match.group(2)) != expected:
        raise CodeError(f"{code!r} has a wrong LOINC check digit (expected {expected})")
    return value


def _dihedral(j: int, k: int) -> int:
    """The product j*k in the dihedral group D5 (0-4 rotations, 5-9 reflections)."""
    if j < 5:
        return (j + k) % 5 if k < 5 else 5 + (j + k) % 5
    return 5 + (j - k) % 5 if k < 5 else (j - k) % 5


_P1: Final = (1, 5, 7, 6, 2, 8, 3, 0, 9, 4)  # Verhoeff's permutation; row i applies it i times


def _permutation_table() -> tuple[tuple[int, ...], ...]:
    rows = [tuple(range(10))]
    for _ in range(7):
        rows.append(tuple(_P1[n] for n in rows[-1]))
    return tuple(rows)


_P: Final = _permutation_table()


def verhoeff_valid(digits: str) -> bool:
    """Whether a string of digits ends in its right Verhoeff check digit."""
    check = 0
    for place, char in enumerate(reversed(digits)):
        check = _dihedral(check, _P[place % 8][int(char)])
    return check == 0


SNOMED_CONCEPT_PARTITIONS: Final = ("00", "10")  # short and long (extension) concept ids


def check_snomed(code: str) -> str:
    """A SNOMED CT concept id: 6 to 18 digits, no leading zero, a concept partition
    (the two digits before the last) and a right Verhoeff check digit."""
    value = code.strip()
    if not re.fullmatch(r"[1-9][0-9]{5,17}", value):
        raise CodeError(f"{code!r} is not a SNOMED CT id (6 to 18 digits, no leading zero)")
    if value[-3:-1] not in SNOMED_CONCEPT_PARTITIONS:
        raise CodeError(f"{code!r} is not a SNOMED CT concept id (partition {value[-3:-1]})")
    if not verhoeff_valid(value):
        raise CodeError(f"{code!r} has a wrong SNOMED CT check digit (Verhoeff)")
    return value


ATC_GROUPS: Final = "ABCDGHJLMNPRSV"  # the 14 anatomical main groups
_ATC: Final = re.compile(r"[A-Z](?:[0-9]{2}(?:[A-Z](?:[A-Z](?:[0-9]{2})?)?)?)?")


def check_atc(code: str) -> str:
    """An ATC code of any level, from ``L`` to ``L01XE01``: letter, 2 digits, letter,
    letter, 2 digits, the first letter an anatomical main group."""
    value = code.strip().upper()
    if not _ATC.fullmatch(value) or value[0] not in ATC_GROUPS:
        raise CodeError(f"{code!r} is not an ATC code (e.g. L01XA01, L01X or L)")
    return value


SYSTEMS: Final = {
    s.name: s
    for s in (
        CodeSystem("icd-10", "http://hl7.org/fhir/sid/icd-10", "ICD-10", check_icd10),
        CodeSystem("snomed", "http://snomed.info/sct", "SNOMED CT", check_snomed),
        CodeSystem("loinc", "http://loinc.org", "LOINC", check_loinc),
        CodeSystem("atc", "http://www.whocc.no/atc", "ATC", check_atc),
    )
}


def system(name_or_uri: str) -> CodeSystem:
    """The code system a short name (``loinc``) or URI (``http://loinc.org``) names."""
    wanted = name_or_uri.strip().rstrip("/")
    for found in SYSTEMS.values():
        if wanted.lower() == found.name or wanted == found.uri:
            return found
    allowed = ", ".join(f"{s.name} ({s.uri})" for s in SYSTEMS.values())
    raise CodeError(f"{name_or_uri!r} is not a code system we check; allowed: {allowed}")


_UCUM_CHARACTERS: Final = re.compile(r"[!-~]+")  # printable ASCII, no space


def check_ucum(unit: str) -> str:
    """A UCUM unit as written in the case-sensitive form (``U/L``, ``ng/mL``, ``Gy``):
    checked for UCUM's characters and balanced brackets only, not against its grammar."""
    value = unit.strip()
    if not _UCUM_CHARACTERS.fullmatch(value):
        raise CodeError(f"{unit!r} is not a UCUM unit (printable ASCII without spaces)")
    depth = {"(": 0, "[": 0, "{": 0}
    closing = {")": "(", "]": "[", "}": "{"}
    for char in value:
        if char in depth:
            depth[char] += 1
        elif char in closing:
            depth[closing[char]] -= 1
            if depth[closing[char]] < 0:
                break
    if any(depth.values()):
        raise CodeError(f"{unit!r} is not a UCUM unit (unbalanced brackets)")
    return value
