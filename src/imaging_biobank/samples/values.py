"""Cell values of registry files, checked and normalised (pure): partial ISO dates, ages,
codes of the MIABIS lists, ICD-10 and ORPHA diagnoses, consent conditions, LOINC codes.

Each parser returns the stored form or raises ``ValueError`` whose message is the reason a
report shows next to the row.
"""

from __future__ import annotations

import datetime as dt
import re

from imaging_biobank.vocab import catalog, codes

LIST_SPLIT = re.compile(r"\s*[|;]\s*")
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?)?)?")
_ORPHA = re.compile(r"(?i)(?:orpha(?:net)?)\s*[:_ ]?\s*(\d{1,7})")


def split_list(value: str) -> list[str]:
    """A multi-valued cell: values separated by | or ;."""
    return [v for v in LIST_SPLIT.split(value.strip()) if v]


def partial_date(value: str) -> str:
    """ISO 8601 with partial values allowed (MIABIS): YYYY, YYYY-MM, YYYY-MM-DD, a date and
    time; also the compact YYYYMMDD of DICOM. Returned in ISO form."""
    text = value.strip()
    if re.fullmatch(r"\d{8}", text):
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError(f"{value!r} is not an ISO 8601 date (YYYY, YYYY-MM or YYYY-MM-DD)")
    year, month, day, hour, minute, second = match.groups()
    try:
        if day is not None:
            dt.date(int(year), int(month), int(day))
            if hour is not None:
                dt.time(int(hour), int(minute), int(second or 0))
        elif month is not None and not 1 <= int(month) <= 12:
            raise ValueError
    except ValueError:
        raise ValueError(f"{value!r} is not a valid date") from None
    if dt.date(int(year), int(month or 1), int(day or 1)) > dt.date.today():
        raise ValueError(f"{value!r} is in the future")
    return text


def date_bounds(value: str) -> tuple[dt.date, dt.date]:
    """The first and last day a partial date can mean."""
    parts = [int(p) for p in value[:10].split("-")]
    year = parts[0]
    month_low, month_high = (parts[1], parts[1]) if len(parts) > 1 else (1, 12)
    if len(parts) > 2:
        return dt.date(year, month_low, parts[2]), dt.date(year, month_low, parts[2])
    last = dt.date(year + (month_high == 12), month_high % 12 + 1, 1) - dt.timedelta(days=1)
    return dt.date(year, month_low, 1), last


def surely_before(earlier: str, later: str) -> bool:
    """Whether partial date ``later`` is certainly before ``earlier`` (an impossible order)."""
    return date_bounds(later)[1] < date_bounds(earlier)[0]


def age(value: str) -> float:
    try:
        number = float(value.replace(",", "."))
    except ValueError:
        raise ValueError(f"age {value!r} is not a number") from None
    if not 0 <= number < 200 * 366:
        raise ValueError(f"age {value!r} is out of range")
    return number


def term(table: str, value: str) -> catalog.Term:
    """A term of one of the MIABIS lists; the error lists what is allowed."""
    try:
        return catalog.resolve(table, value)
    except catalog.UnknownTermError as error:
        raise ValueError(str(error)) from None


def diagnosis(value: str) -> tuple[str, catalog.Term | None]:
    """A diagnosis code: ("icd-10", term) checked against the ICD-10 vocabulary, or
    ("orpha", None) with the code normalised to ``ORPHA:<n>`` (not checked: no nomenclature
    is shipped)."""
    text = value.strip()
    orpha = _ORPHA.fullmatch(text)
    if orpha:
        return f"ORPHA:{int(orpha.group(1))}", None
    index = catalog.index("disease")
    found = index.find(text.removeprefix("urn:miriam:icd:"))
    if found is None or found.vocabulary != "disease.icd-10":
        close = index.suggest(text)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"{value!r} is not an ICD-10 code of the shipped edition nor an ORPHA code"
            f" (ORPHA:<number>){hint}"
        )
    return found.code, found


def loinc(value: str) -> str:
    """A LOINC code, its mod-10 check digit verified (``vocab.codes``)."""
    try:
        return codes.check_loinc(value)
    except codes.CodeError as error:
        raise ValueError(str(error)) from None


def number(value: str) -> float | None:
    """A numeric cell (decimal comma accepted), or None when the cell is not a number."""
    try:
        return float(value.strip().replace(",", "."))
    except ValueError:
        return None
