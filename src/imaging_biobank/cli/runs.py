"""What the long-running commands share: the key option, the report file, the rate."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import TextColumn

from imaging_biobank.cli.common import err_console, fail, plain

if TYPE_CHECKING:
    from imaging_biobank.deid.pseudonym import Pseudonymiser

KeyFileOption = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="The pseudonymisation key (default: $IMAGING_BIOBANK_KEY_FILE).",
        show_default=False,
    ),
]


def load_pseudonymiser(key_file: Path | None) -> Pseudonymiser:
    """The keyed pseudonymiser, or a usage error saying how to make a key."""
    from imaging_biobank.config import Settings
    from imaging_biobank.deid.pseudonym import KeyFileError, Pseudonymiser

    path = key_file if key_file is not None else Settings.from_env().key_file
    try:
        return Pseudonymiser.from_file(path)
    except KeyFileError as error:
        fail(str(error))


class Report:
    """The JSON-lines report: one line per file with something to say (``path``,
    ``status``, ``reason``, and what else the command adds)."""

    SHOWN = ("rejected", "quarantined")  # listed on screen too, the first ones
    FIRST = 10  # how many of each are kept to show (all are counted, and in the file)

    def __init__(self, path: Path | None):
        self.path = path
        self.file: IO[str] | None = path.open("w", encoding="utf-8") if path else None
        self.listed: dict[str, list[tuple[str, str]]] = {status: [] for status in self.SHOWN}
        self.counts: dict[str, int] = dict.fromkeys(self.SHOWN, 0)

    def __call__(self, status: str, location: str, reason: str, **extra: str) -> None:
        if status in self.listed:
            self.counts[status] += 1
            if len(self.listed[status]) < self.FIRST:
                self.listed[status].append((location, reason))
        if self.file is not None:
            line = {"path": location, "status": status, "reason": reason, **extra}
            self.file.write(json.dumps(line, ensure_ascii=False) + "\n")

    @property
    def rejected(self) -> list[tuple[str, str]]:
        return self.listed["rejected"]

    def close(self) -> None:
        if self.file is not None:
            self.file.close()

    def print_listed(self) -> None:
        """The first rejected and quarantined files, on the error console."""
        where = f"; all in {self.path}" if self.path else "; --report FILE lists all"
        for status, entries in self.listed.items():
            if not entries:
                continue
            count = self.counts[status]
            err_console.print(f"[bold red]{count} {status}[/] (first ones below{where}):")
            for location, reason in entries:
                err_console.print(plain(f"  {location}: {reason}"), highlight=False)


class RateColumn(TextColumn):
    def __init__(self) -> None:
        super().__init__("")
        self.start = time.perf_counter()

    def render(self, task: Any) -> Any:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        return plain(f"{task.completed / elapsed:,.0f} files/s")


def summary_table(title: str, rows: list[tuple[str, int]], always: tuple[str, ...]) -> Any:
    """A two-column table of the counts of a run: rows with nothing to count are left out,
    except ``always``."""
    from rich.table import Table

    table = Table("", "count", title=title, show_header=False)
    for name, count in rows:
        if count or name in always:
            table.add_row(name, f"{count:,}")
    return table
