"""REDCap's text validation types as data: what each means and how a value of it is read.

Pure. Each type turns a cell into a typed value (a number, an ISO 8601 date, date-time or
time) or says why it cannot. Dates are read as REDCap exports them (``YYYY-MM-DD``, whatever
the type's display order) and in the type's own order (``31-12-2020`` for ``date_dmy``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Final, Literal

Kind = Literal["text", "integer", "number", "date", "datetime", "time", "duration"]


class InvalidValue(ValueError):
    """A cell that is not a value of its field; the message is the reason shown to users."""


@dataclass(frozen=True)
class ValidationType:
    """One REDCap text validation type."""

    name: str
    meaning: str
    kind: Kind
    pattern: str | None = None  # the whole value must match (text kinds)
    decimals: int | None = None  # number_Ndp: exactly this many decimals
    comma: bool = False  # a comma is the decimal separator
    order: str = "ymd"  # dates: the display order REDCap also accepts
    seconds: bool = False  # date-times and times with seconds


@dataclass(frozen=True)
class Typed:
    """A cell read by its validation type: the number or ISO text it stands for."""

    number: float | None = None
    iso: str | None = None

    @property
    def key(self) -> float | str | None:
        """What min/max compare against."""
        return self.number if self.number is not None else self.iso


def _numbers() -> list[ValidationType]:
    found = [
        ValidationType("number", "a number (decimal point)", "number"),
        ValidationType(
            "number_comma_decimal", "a number with a decimal comma", "number", comma=True
        ),
    ]
    for n in range(1, 5):
        found.append(
            ValidationType(
                f"number_{n}dp", f"a number with {n} decimal(s), point", "number", decimals=n
            )
        )
        found.append(
            ValidationType(
                f"number_{n}dp_comma_decimal",
                f"a number with {n} decimal(s), comma",
                "number",
                decimals=n,
                comma=True,
            )
        )
    return found


def _dates() -> list[ValidationType]:
    names = {"ymd": "Y-M-D", "mdy": "M-D-Y", "dmy": "D-M-Y"}
    found = []
    for order, shown in names.items():
        found.append(ValidationType(f"date_{order}", f"a date ({shown})", "date", order=order))
        found.append(
            ValidationType(
                f"datetime_{order}", f"a date and time ({shown} H:M)", "datetime", order=order
            )
        )
        found.append(
            ValidationType(
                f"datetime_seconds_{order}",
                f"a date and time ({shown} H:M:S)",
                "datetime",
                order=order,
                seconds=True,
            )
        )
    return found


VALIDATION_TYPES: Final[dict[str, ValidationType]] = {
    v.name: v
    for v in (
        ValidationType("integer", "a whole number", "integer"),
        *_numbers(),
        *_dates(),
        ValidationType("time", "a time of day (H:M, 24-hour)", "time"),
        ValidationType("time_hh_mm_ss", "a time of day (H:M:S, 24-hour)", "time", seconds=True),
        ValidationType("time_mm_ss", "a duration in minutes and seconds (M:S)", "duration"),
        ValidationType("email", "an e-mail address", "text", r"[^@\s]+@[^@\s]+\.[^@\s]+"),
        ValidationType("alpha_only", "letters only", "text", r"[A-Za-z]+"),
        ValidationType(
            "phone",
            "a North American phone number (10 digits)",
            "text",
            r"(?:\+?1[-. ]?)?\(?[2-9][0-9]{2}\)?[-. ]?[2-9][0-9]{2}[-. ]?[0-9]{4}",
        ),
        ValidationType(
            "phone_australia",
            "an Australian phone number",
            "text",
            r"(?:\(0[2-9]\)|0[2-9])?[ -]?[0-9]{4}[ -]?[0-9]{4}",
        ),
        ValidationType(
            "zipcode", "a US ZIP code (5 or 5+4 digits)", "text", r"[0-9]{5}(?:-[0-9]{4})?"
        ),
        ValidationType("postalcode_australia", "an Australian postcode", "text", r"[0-9]{4}"),
        ValidationType(
            "postalcode_canada",
            "a Canadian postal code",
            "text",
            r"[A-Za-z][0-9][A-Za-z] ?[0-9][A-Za-z][0-9]",
        ),
        ValidationType("postalcode_french", "a French postcode", "text", r"[0-9]{5}"),
        ValidationType("postalcode_germany", "a German postcode", "text", r"[0-9]{5}"),
        ValidationType("ssn", "a US social security number", "text", r"[0-9]{3}-[0-9]{2}-[0-9]{4}"),
        ValidationType("mrn_10d", "a 10-digit medical record number", "text", r"[0-9]{10}"),
        ValidationType(
            "mrn_generic", "a medical record number (letters, digits, -)", "text", r"[A-Za-z0-9-]+"
        ),
        ValidationType("vmrn", "a Vanderbilt medical record number", "text", r"[0-9]{4,9}"),
    )
}
SLIDER_VALIDATION: Final = "number"  # on a slider the column means "show the number"


_INTEGER: Final = re.compile(r"[-+]?[0-9]+")
_NUMBER: Final = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_TIME: Final = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?")


def _number(kind: ValidationType, text: str) -> float:
    value = text.replace(",", ".") if kind.comma else text
    if kind.comma and "." in text:
        raise InvalidValue(f"{text!r} is not {kind.meaning}")
    if kind.kind == "integer":
        if not _INTEGER.fullmatch(value):
            raise InvalidValue(f"{text!r} is not a whole number")
        return float(int(value))
    if not _NUMBER.fullmatch(value):
        raise InvalidValue(f"{text!r} is not a number")
    if kind.decimals is not None:
        _, _, fraction = value.partition(".")
        if len(fraction) != kind.decimals or "e" in value.lower():
            raise InvalidValue(f"{text!r} is not {kind.meaning}")
    return float(value)


def _date(text: str, order: str) -> str:
    parts = re.fullmatch(r"([0-9]{1,4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,4})", text)
    if parts is None:
        raise InvalidValue(f"{text!r} is not a date")
    a, b, c = parts.groups()
    if len(a) == 4:  # Y-M-D, as REDCap exports every date
        year, month, day = a, b, c
    elif len(c) == 4 and order == "dmy":
        day, month, year = a, b, c
    elif len(c) == 4 and order == "mdy":
        month, day, year = a, b, c
    else:
        raise InvalidValue(f"{text!r} is not a date in Y-M-D or the field's order ({order})")
    try:
        return dt.date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        raise InvalidValue(f"{text!r} is not a date of the calendar") from None


def _time(text: str, seconds: bool, what: str = "time") -> tuple[int, int, int]:
    match = _TIME.fullmatch(text)
    if match is None or (match.group(3) is None) == seconds:
        shape = "H:M:S" if seconds else "H:M"
        raise InvalidValue(f"{text!r} is not a {what} ({shape})")
    hours, minutes, secs = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    if hours > 23 or minutes > 59 or secs > 59:
        raise InvalidValue(f"{text!r} is not a {what} of the day")
    return hours, minutes, secs


def read(kind: ValidationType, text: str) -> Typed:
    """The typed value of a non-empty cell, or ``InvalidValue`` saying why it is not one."""
    value = text.strip()
    if kind.kind in ("integer", "number"):
        return Typed(number=_number(kind, value))
    if kind.kind == "date":
        return Typed(iso=_date(value, kind.order))
    if kind.kind == "datetime":
        day, _, clock = value.replace("T", " ").partition(" ")
        if not clock:
            raise InvalidValue(f"{text!r} is not a date and time")
        h, m, s = _time(clock.strip(), kind.seconds)
        iso = f"{_date(day, kind.order)}T{h:02d}:{m:02d}"
        return Typed(iso=iso + (f":{s:02d}" if kind.seconds else ""))
    if kind.kind == "time":
        h, m, s = _time(value, kind.seconds)
        return Typed(iso=f"{h:02d}:{m:02d}" + (f":{s:02d}" if kind.seconds else ""))
    if kind.kind == "duration":
        match = re.fullmatch(r"([0-9]{1,2}):([0-5][0-9])", value)
        if match is None:
            raise InvalidValue(f"{text!r} is not minutes and seconds (M:S)")
        return Typed(number=float(int(match.group(1)) * 60 + int(match.group(2))))
    assert kind.pattern is not None
    if not re.fullmatch(kind.pattern, value):
        raise InvalidValue(f"{text!r} is not {kind.meaning}")
    return Typed()


def read_limit(kind: ValidationType, text: str, today: dt.date | None = None) -> Typed:
    """A min or max of a field: a value of its type, or REDCap's ``today`` / ``now``
    (evaluated when a record is checked, on ``today``)."""
    value = text.strip()
    if value.lower() in ("today", "now") and kind.kind in ("date", "datetime"):
        day = (today or dt.date.today()).isoformat()
        if kind.kind == "date":
            return Typed(iso=day)
        if value.lower() == "today":
            return Typed(iso=f"{day}T00:00" + (":00" if kind.seconds else ""))
        now = dt.datetime.now()
        return Typed(iso=f"{day}T{now:%H:%M}" + (f":{now:%S}" if kind.seconds else ""))
    return read(kind, value)


def has_limits(kind: ValidationType) -> bool:
    """Whether min/max mean anything for the type (numbers, dates, times)."""
    return kind.kind != "text"
