"""A FHIR Bundle file read entry by entry, with the standard library only.

``json.load`` of a large Bundle holds the whole text and every resource at once; here the
file is read in chunks and each value is decoded with ``json.JSONDecoder.raw_decode`` as soon
as it is complete: the top-level members of the Bundle come back whole, the items of its
``entry`` array one at a time, so a caller can keep only the entries it needs. A file that is
not JSON raises ``StreamError`` with the line and column where it stops being JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Final

CHUNK: Final = 1 << 20  # characters read at a time
_SPACE: Final = " \t\r\n"


class StreamError(ValueError):
    """The file is not JSON (the message says where), or not a JSON object."""


class _Cursor:
    """A window on the text of a file: decodes one JSON value at a time."""

    def __init__(self, file: IO[str]):
        self.file = file
        self.buffer = ""
        self.pos = 0
        self.line = 1  # the line the buffer starts on
        self.column = 1  # the column the buffer starts at
        self.eof = False
        self.decoder = json.JSONDecoder()

    def _more(self) -> bool:
        """Read the next chunk, dropping what was decoded; False at the end of the file."""
        if self.eof:
            return False
        data = self.file.read(CHUNK)
        if not data:
            self.eof = True
            return False
        done = self.buffer[: self.pos]
        newlines = done.count("\n")
        self.line += newlines
        self.column = len(done) - done.rfind("\n") if newlines else self.column + len(done)
        self.buffer = self.buffer[self.pos :] + data
        self.pos = 0
        return True

    def where(self, pos: int) -> str:
        """``line L column C`` of a position in the buffer."""
        before = self.buffer[:pos]
        newlines = before.count("\n")
        line = self.line + newlines
        column = len(before) - before.rfind("\n") if newlines else self.column + len(before)
        return f"line {line} column {column}"

    def fail(self, what: str, pos: int | None = None) -> StreamError:
        """A StreamError saying what was expected where."""
        return StreamError(
            f"not valid JSON at {self.where(self.pos if pos is None else pos)}: {what}"
        )

    def peek(self) -> str:
        """The next character that is not white space ("" at the end of the file)."""
        while True:
            while self.pos < len(self.buffer) and self.buffer[self.pos] in _SPACE:
                self.pos += 1
            if self.pos < len(self.buffer) or not self._more():
                return self.buffer[self.pos : self.pos + 1]

    def take(self, char: str) -> None:
        """Step over ``char`` (the next non-blank character), or fail."""
        if self.peek() != char:
            found = self.peek()
            raise self.fail(
                f"expected {char!r}, found {found!r}" if found else f"expected {char!r}"
            )
        self.pos += 1

    def value(self) -> Any:
        """Decode the next JSON value, reading as many chunks as it takes."""
        self.peek()
        while True:
            try:
                found, end = self.decoder.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as error:
                if self._more():
                    continue
                raise self.fail(error.msg, error.pos) from None
            scalar = not isinstance(found, dict | list | str)
            if scalar and end == len(self.buffer) and self._more():
                continue  # a number or literal may go on in the next chunk
            self.pos = end
            return found


def read_bundle(
    path: Path, on_member: Callable[[str, Any], None], on_entry: Callable[[int, Any], None]
) -> int:
    """Read the JSON object in ``path``: ``on_member(name, value)`` for each member but
    ``entry``, ``on_entry(index, item)`` for each item of ``entry`` as it is read. Returns the
    number of entries. Raises ``StreamError`` (not JSON, or not an object), ``OSError`` and
    ``UnicodeDecodeError``, and whatever the callbacks raise."""
    with path.open(encoding="utf-8") as file:
        cursor = _Cursor(file)
        if cursor.peek() != "{":
            raise StreamError("not a JSON object")
        cursor.take("{")
        count = 0
        if cursor.peek() == "}":
            cursor.take("}")
        else:
            while True:
                name = cursor.value()
                if not isinstance(name, str):
                    raise cursor.fail("expected a member name")
                cursor.take(":")
                if name == "entry" and cursor.peek() == "[":
                    count += _entries(cursor, on_entry, count)
                else:
                    on_member(name, cursor.value())
                if cursor.peek() == ",":
                    cursor.take(",")
                    continue
                cursor.take("}")
                break
        if cursor.peek():
            raise cursor.fail("more after the end of the Bundle")
    return count


def _entries(cursor: _Cursor, on_entry: Callable[[int, Any], None], start: int) -> int:
    cursor.take("[")
    count = 0
    if cursor.peek() == "]":
        cursor.take("]")
        return 0
    while True:
        on_entry(start + count, cursor.value())
        count += 1
        if cursor.peek() == ",":
            cursor.take(",")
            continue
        cursor.take("]")
        return count
