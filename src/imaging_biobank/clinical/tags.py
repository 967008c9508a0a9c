"""Our action tags in a REDCap Field Annotation: what a field measures and how its values
are coded, so values are stored typed and coded.

REDCap keeps action tags (``@HIDDEN``, ``@DEFAULT='1'``) in the Field Annotation column; ours
live there too, with the ``@IB-`` prefix::

    @IB-CODE=<system>|<code>             what the field measures: @IB-CODE=loinc|2532-0
    @IB-UNIT=<UCUM unit>                 the unit of a numeric field: @IB-UNIT=U/L
    @IB-VALUESET=<system>                the value is a code of <system>, checked on
                                         import: @IB-VALUESET=icd-10
    @IB-CHOICE=<choice>=<system>|<code>  codes one choice of a dropdown, radio or checkbox
                                         field (repeat it per choice):
                                         @IB-CHOICE=1=snomed|248153007

``<system>`` is ``icd-10``, ``snomed``, ``loinc`` or ``atc``, or its URI
(``http://loinc.org``). Codes are checked: ICD-10 against the shipped ICD-10 list, LOINC by
its check digit, SNOMED CT by its Verhoeff check digit and concept partition, ATC by its
shape; units by UCUM's character set. A value has no spaces (quotes around it are allowed).
An unknown ``@IB-`` tag is an error; REDCap's own tags are kept in the annotation and
ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from imaging_biobank.vocab.codes import CodeError, check_ucum, system

TAGS: Final = {
    "CODE": "<system>|<code>: what the field measures",
    "UNIT": "<UCUM unit>: the unit of a numeric field",
    "VALUESET": "<system>: the value is a code of that system",
    "CHOICE": "<choice>=<system>|<code>: the code of one choice",
}
_TAG: Final = re.compile(r"@IB-([A-Za-z-]*)(?:=(\"[^\"]*\"|'[^']*'|\S*))?", re.IGNORECASE)


@dataclass(frozen=True)
class Coding:
    """A code of a code system (the system as its URI)."""

    system: str
    code: str


@dataclass(frozen=True)
class Bindings:
    """What a field's @IB- tags say."""

    code: Coding | None = None
    unit: str | None = None
    value_set: str | None = None  # a short system name: icd-10, snomed, loinc, atc
    choices: dict[str, Coding] = field(default_factory=dict)


def _coding(value: str) -> Coding:
    name, bar, code = value.partition("|")
    if not bar or not code:
        raise CodeError(f"{value!r} is not <system>|<code>")
    found = system(name)
    return Coding(found.uri, found.check(code))


def read_tags(annotation: str) -> tuple[Bindings, list[str]]:
    """The bindings an annotation's @IB- tags state, and the errors in them (one message
    per bad tag; the bindings then hold only the good ones)."""
    errors: list[str] = []
    code: Coding | None = None
    unit: str | None = None
    value_set: str | None = None
    choices: dict[str, Coding] = {}
    for match in _TAG.finditer(annotation or ""):
        name = match.group(1).upper()
        raw = match.group(2)
        value = raw[1:-1] if raw and raw[0] in "'\"" else (raw or "")
        written = match.group(0)
        if name not in TAGS:
            allowed = ", ".join(f"@IB-{t}" for t in TAGS)
            errors.append(f"unknown tag {written!r}; allowed: {allowed}")
            continue
        if not value:
            errors.append(f"@IB-{name} needs a value: @IB-{name}={TAGS[name].split(':')[0]}")
            continue
        try:
            if name == "CODE":
                if code is not None:
                    raise CodeError("@IB-CODE is given twice")
                code = _coding(value)
            elif name == "UNIT":
                if unit is not None:
                    raise CodeError("@IB-UNIT is given twice")
                unit = check_ucum(value)
            elif name == "VALUESET":
                if value_set is not None:
                    raise CodeError("@IB-VALUESET is given twice")
                value_set = system(value).name
            else:
                choice, equals, coding = value.partition("=")
                if not equals or not choice:
                    raise CodeError(f"{value!r} is not <choice>=<system>|<code>")
                if choice in choices:
                    raise CodeError(f"choice {choice!r} is coded twice")
                choices[choice] = _coding(coding)
        except CodeError as error:
            errors.append(f"{written}: {error}")
    return Bindings(code, unit, value_set, choices), errors
