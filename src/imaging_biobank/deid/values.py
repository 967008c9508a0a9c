"""Replacement values: dummies consistent with the VR (action D), shifted dates (Retain
Longitudinal Temporal Information with Modified Dates) and cleaned text (action C).
"""

from __future__ import annotations

import datetime as dt
import re

DUMMY_TEXT = b"ANONYMIZED"
# D: "a non-zero length value that may be a dummy value and consistent with the VR"
DUMMIES: dict[str, bytes] = {
    "AE": DUMMY_TEXT,
    "AS": b"000Y",
    "CS": DUMMY_TEXT,
    "DA": b"19000101",
    "DS": b"0 ",
    "DT": b"19000101000000",
    "IS": b"0 ",
    "LO": DUMMY_TEXT,
    "LT": DUMMY_TEXT,
    "PN": DUMMY_TEXT,
    "SH": DUMMY_TEXT,
    "ST": DUMMY_TEXT,
    "TM": b"000000",
    "UC": DUMMY_TEXT,
    "UR": b"",
    "UT": DUMMY_TEXT,
    "AT": b"\0\0\0\0",
    "FD": b"\0" * 8,
    "FL": b"\0" * 4,
    "OB": b"\0\0",
    "OD": b"\0" * 8,
    "OF": b"\0" * 4,
    "OL": b"\0" * 4,
    "OV": b"\0" * 8,
    "OW": b"\0\0",
    "SL": b"\0" * 4,
    "SS": b"\0\0",
    "SV": b"\0" * 8,
    "UL": b"\0" * 4,
    "UN": b"\0\0",
    "US": b"\0\0",
    "UV": b"\0" * 8,
}
TEXT_VRS = frozenset({"AE", "AS", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
# text with room for free words (what cleaning and the safe default look at)
FREE_TEXT_VRS = frozenset({"LO", "LT", "SH", "ST", "UC", "UT"})
DATE_VRS = frozenset({"DA", "DT", "TM"})


def dummy(vr: str) -> bytes:
    return DUMMIES.get(vr, b"")


def _shift_date(value: str, days: int) -> str | None:
    """A DA value (YYYYMMDD, YYYYMM or YYYY) moved ``days`` back; ``None`` if not a date."""
    value = value.strip()
    try:
        if len(value) == 8:
            day = dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
            return (day - dt.timedelta(days=days)).strftime("%Y%m%d")
        if len(value) == 6:  # the middle of the month stands for it
            day = dt.date(int(value[:4]), int(value[4:6]), 15) - dt.timedelta(days=days)
            return day.strftime("%Y%m")
        if len(value) == 4:
            day = dt.date(int(value), 7, 1) - dt.timedelta(days=days)
            return day.strftime("%Y")
    except (ValueError, OverflowError):  # not a date, or one before year 1 once shifted
        return None
    return None


def shift(vr: str, raw: bytes, days: int) -> bytes:
    """Dates and date-times moved ``days`` back (every value of a multi-valued element);
    times unchanged (whole days keep the time of day). What is not a date is removed."""
    if vr == "TM":
        return raw
    out = []
    for part in raw.decode("ascii", "replace").strip(" \0").split("\\"):
        if not part:
            out.append("")
            continue
        if vr == "DA":
            moved = _shift_date(part, days)
        else:  # DT: YYYY[MM[DD[HH[MM[SS[.F]]]]]][&ZZXX]; the date part moves
            digits = len(part) - len(part.lstrip("0123456789"))
            date_len = 8 if digits >= 8 else 6 if digits >= 6 else 4
            moved_date = _shift_date(part[:date_len], days)
            moved = None if moved_date is None else moved_date + part[date_len:]
        if moved is None:
            return b""
        out.append(moved)
    return pad_text("\\".join(out).encode("ascii"))


def pad_text(value: bytes) -> bytes:
    return value + b" " if len(value) % 2 else value


# --- cleaning free text (C) -----------------------------------------------------------

_SPLIT = re.compile(r"(\s+|[,;:()\[\]{}<>\"'|/\\^=_.\-])")
_DIGIT = re.compile(r"\d")


def identifying_tokens(names: list[str], others: list[str]) -> tuple[set[str], list[str]]:
    """From the identifying values of an object (person names; IDs, addresses, dates,
    institutions): the words to remove from its free text wherever they occur,
    case-insensitively, as (whole words, substrings). Name components count from two
    letters, other words from three."""
    tokens: set[str] = set()
    substrings: set[str] = set()
    for values, shortest in ((names, 2), (others, 3)):
        for value in values:
            value = value.strip(" \0").upper()
            if len(value) >= 3:
                substrings.add(value)
            for token in re.split(r"[\s\^=,.;:/\\()\-_]+", value):
                if len(token) >= shortest:
                    tokens.add(token)
                # 4+ characters; or 2+ in scripts written without spaces (山田 in 山田太郎の)
                if len(token) >= 4 or (len(token) >= 2 and not token.isascii()):
                    substrings.add(token)
    return tokens, sorted(substrings, key=len, reverse=True)


def clean_text(text: str, tokens: set[str], substrings: list[str], strict: bool = True) -> str:
    """Free text with identifying words removed: words that are (or contain) an identifying
    value of the same object and, if ``strict``, words with four or more digits (IDs, dates,
    phone numbers), e-mail addresses and URLs. The rest, and the separators, stay."""
    parts = _SPLIT.split(text)
    kept = []
    for part in parts:
        word = part.strip().upper()
        if not word or _SPLIT.fullmatch(part):
            kept.append(part)
            continue
        looks_identifying = strict and (
            len(_DIGIT.findall(word)) >= 4 or "@" in word or "://" in word
        )
        if word in tokens or looks_identifying or any(s in word for s in substrings):
            continue
        kept.append(part)
    cleaned = "".join(kept)
    cleaned = re.sub(r"\s{2,}", " ", cleaned).strip()
    return cleaned
