"""Reading a registry export: CSV or XLSX, one row per entity, with the row numbers a
spreadsheet shows (the header is row 1), so a report points at the cell a user can fix."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


class TableError(ValueError):
    """The file cannot be read as a table (a usage error: nothing is imported)."""


@dataclass(frozen=True)
class Row:
    """One data row: its number in the file and its cells by header (empty cells are "");
    ``error`` says why the row cannot be read (more cells than headers, say)."""

    number: int
    cells: dict[str, str]
    error: str | None = None


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[Row]


def read_table(path: Path, sheet: str | None = None) -> Table:
    """The header and rows of a CSV (UTF-8, comma or semicolon separated) or XLSX file."""
    if not path.is_file():
        raise TableError(f"{path}: no such file")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _xlsx(path, sheet)
    if sheet is not None:
        raise TableError(f"{path}: --sheet applies to XLSX workbooks only")
    return _csv(path)


def _csv(path: Path) -> Table:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise TableError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    records = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if not records or not any(cell.strip() for cell in records[0]):
        raise TableError(f"{path}: empty file, or no header in row 1")
    headers = [h.strip() for h in records[0]]
    return Table(headers, list(_rows(headers, enumerate(records[1:], start=2), path)))


def _xlsx(path: Path, sheet: str | None) -> Table:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds for a damaged workbook
        raise TableError(f"{path}: not a readable XLSX workbook ({error})") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise TableError(f"{path}: no sheet {sheet!r}; sheets: {', '.join(book.sheetnames)}")
        ws = book[sheet] if sheet is not None else book.worksheets[0]
        values = [[_cell(v) for v in row] for row in ws.iter_rows(values_only=True)]
    finally:
        book.close()
    if not values or not any(values[0]):
        raise TableError(f"{path}: empty sheet, or no header in row 1")
    headers = [h.strip() for h in values[0]]
    while headers and not headers[-1]:
        headers.pop()
    return Table(headers, list(_rows(headers, enumerate(values[1:], start=2), path)))


def _cell(value: object) -> str:
    """A spreadsheet cell as the text a CSV export would hold (dates as ISO 8601)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _rows(
    headers: list[str], numbered: Iterable[tuple[int, list[str]]], path: Path
) -> Iterator[Row]:
    width = len(headers)
    for number, values in numbered:
        cells = [(v or "").strip() for v in values]
        if not any(cells):
            continue  # blank lines between blocks are common in hand-kept sheets
        error = None
        if len(cells) > width and any(cells[width:]):
            error = f"{len(cells)} cells but the header has {width} (a stray separator?)"
        cells += [""] * (width - len(cells))
        yield Row(number, dict(zip(headers, cells[:width], strict=True)), error)
