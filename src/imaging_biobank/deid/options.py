"""The options of the Basic Application Level Confidentiality Profile (PS3.15 Annex E).

Each option has a command-line name, the Table E.1-1 column that says what it changes, and
its code in CID 7050 (recorded in De-identification Method Code Sequence), named through
pydicom's code dictionary rather than retyped here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# The default root of replacement UIDs: 2.25 (PS3.5 B.2, UUID-derived, no registration)
DEFAULT_UID_ROOT = "2.25"


@dataclass(frozen=True)
class Option:
    name: str  # as typed on the command line
    column: str  # the Table E.1-1 column (innolitics key)
    code: str  # the CID 7050 keyword in pydicom's code dictionary
    help: str


OPTIONS: tuple[Option, ...] = (
    Option(
        "modified-dates",
        "rtnLongModifDatesOpt",
        "RetainLongitudinalTemporalInformationModifiedDatesOption",
        "shift every date by one offset per donor (intervals kept)",
    ),
    Option(
        "full-dates",
        "rtnLongFullDatesOpt",
        "RetainLongitudinalTemporalInformationFullDatesOption",
        "keep dates and times as they are",
    ),
    Option(
        "patient-characteristics",
        "rtnPatCharsOpt",
        "RetainPatientCharacteristicsOption",
        "keep sex, age, weight, size, smoking and pregnancy status",
    ),
    Option(
        "device-identity",
        "rtnDevIdOpt",
        "RetainDeviceIdentityOption",
        "keep device serial numbers and station names",
    ),
    Option(
        "institution-identity",
        "rtnInstIdOpt",
        "RetainInstitutionIdentityOption",
        "keep institution names and departments",
    ),
    Option("uids", "rtnUIDsOpt", "RetainUidsOption", "keep the original UIDs"),
    Option(
        "safe-private",
        "rtnSafePrivOpt",
        "RetainSafePrivateOption",
        "keep the allow-listed private attributes (deid/data/safe_private.csv)",
    ),
    Option(
        "clean-descriptors",
        "cleanDescOpt",
        "CleanDescriptorsOption",
        "keep descriptions with identifying words removed, instead of removing them",
    ),
    Option(
        "clean-structured-content",
        "cleanStructContOpt",
        "CleanStructuredContentOption",
        "keep structured report content, cleaned",
    ),
    Option(
        "clean-graphics",
        "cleanGraphOpt",
        "CleanGraphicsOption",
        "keep overlays, curves and graphic annotations, their text cleaned",
    ),
)
BY_NAME = {option.name: option for option in OPTIONS}


class OptionError(ValueError):
    """An unknown option, or two that exclude each other."""


def parse_options(names: list[str]) -> frozenset[str]:
    """Option names as typed (repeatable, comma-separated allowed)."""
    chosen = set()
    for value in names:
        for name in (n.strip() for n in value.split(",")):
            if not name:
                continue
            if name not in BY_NAME:
                known = ", ".join(BY_NAME)
                raise OptionError(f"unknown de-identification option {name!r}; options: {known}")
            chosen.add(name)
    if {"modified-dates", "full-dates"} <= chosen:
        raise OptionError("modified-dates and full-dates exclude each other")
    return frozenset(chosen)


# a root leaves at least 31 digits (~100 bits) of keyed hash in a 64-character UID
MAX_UID_ROOT = 32
_UID_ROOT = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


def check_uid_root(root: str) -> str:
    """``root`` if it can prefix replacement UIDs (PS3.5 9.1: digits and dots, no leading
    zero in a component, at most ``MAX_UID_ROOT`` characters)."""
    if not _UID_ROOT.fullmatch(root):
        raise OptionError(
            f"UID root {root!r} is not a UID prefix (digits separated by dots, no leading"
            " zeros; e.g. 2.25 or your organisation's registered root)"
        )
    if len(root) > MAX_UID_ROOT:
        raise OptionError(
            f"UID root {root!r} is {len(root)} characters; at most {MAX_UID_ROOT} leave room"
            " for the keyed part of 64-character UIDs"
        )
    return root


@dataclass(frozen=True)
class DeidOptions:
    """What a de-identification run keeps, and where its UIDs live."""

    options: frozenset[str] = field(default_factory=frozenset)
    uid_root: str = DEFAULT_UID_ROOT
    accept_burned_in: bool = False  # a data manager's explicit decision

    def __contains__(self, name: str) -> bool:
        return name in self.options

    @property
    def columns(self) -> frozenset[str]:
        return frozenset(BY_NAME[name].column for name in self.options)

    @property
    def dates_kept(self) -> bool:
        return "modified-dates" in self.options or "full-dates" in self.options

    def method_codes(self) -> list[tuple[str, str, str]]:
        """(code value, scheme, meaning) for De-identification Method Code Sequence: the
        profile, then each option applied, in the order of ``OPTIONS``."""
        from pydicom.sr.codedict import codes

        cid = codes.cid7050
        chosen = [cid.BasicApplicationConfidentialityProfile]
        chosen += [getattr(cid, o.code) for o in OPTIONS if o.name in self.options]
        return [(c.value, c.scheme_designator, c.meaning) for c in chosen]

    def describe(self) -> str:
        """For De-identification Method (0012,0063), at most 64 characters."""
        names = ",".join(o.name for o in OPTIONS if o.name in self.options) or "basic"
        text = f"PS3.15 E.1-1 {names}"
        return text if len(text) <= 64 else text[:61] + "..."
