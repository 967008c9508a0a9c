"""The re-identification table: who a donor pseudonym stands for, for data managers only.

It is kept apart from everything researchers see: a file of its own (never inside the
de-identified output, never in the database), each line one record encrypted and
authenticated with Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) under a
key of its own, made by ``imaging-biobank keygen --reid PATH``. Without that key the file
says nothing; a changed line is refused, not misread.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from imaging_biobank.deid.pseudonym import write_new_key


class ReidError(ValueError):
    """A re-identification table or key that cannot be used: the message says why."""


def generate_reid_key(path: Path) -> Path:
    """Write a new Fernet key to ``path``, readable by its owner only; never overwrites."""
    from cryptography.fernet import Fernet

    return write_new_key(path, Fernet.generate_key())


def load_reid_key(path: Path) -> bytes:
    try:
        key = path.read_bytes().strip()
    except OSError as error:
        raise ReidError(
            f"cannot read the re-identification key {path}: {error.strerror}; make one with"
            " `imaging-biobank keygen --reid PATH`"
        ) from None
    if len(key) != 44:
        raise ReidError(f"{path} is not a key made by `imaging-biobank keygen --reid`")
    return key


def _fernet(key: bytes) -> Any:
    from cryptography.fernet import Fernet

    try:
        return Fernet(key)
    except ValueError:
        raise ReidError("not a re-identification key (Fernet)") from None


class ReidTable:
    """Appends one encrypted line per donor and study met in a run."""

    def __init__(self, path: Path, key_file: Path, pseudonym_key: bytes, output: Path | None):
        key = load_reid_key(key_file)
        if key == pseudonym_key or key_file.read_bytes().strip() == pseudonym_key.hex().encode():
            raise ReidError("the re-identification key must not be the pseudonymisation key")
        if output is not None and path.resolve().is_relative_to(output.resolve()):
            raise ReidError(
                f"{path} is inside the de-identified output {output}: the table would leave"
                " with the data; keep it elsewhere"
            )
        self._fernet = _fernet(key)
        self.path = path
        self._seen: set[tuple[str, str]] = set()
        self._file: IO[bytes] | None = None
        self.written = 0

    def add(self, donor: str, record: dict[str, str]) -> None:
        """Record what ``donor`` stands for (once per donor and source study per run)."""
        marker = (donor, record.get("study_uid", ""))
        if marker in self._seen:
            return
        self._seen.add(marker)
        if self._file is None:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._file = os.fdopen(fd, "ab")
        line = {"donor": donor, **record, "recorded_at": dt.datetime.now(dt.UTC).isoformat()}
        token: bytes = self._fernet.encrypt(json.dumps(line, sort_keys=True).encode("utf-8"))
        self._file.write(token + b"\n")
        self.written += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None


def read_table(path: Path, key_file: Path) -> Iterator[dict[str, str]]:
    """The records of a table, in the order written (``ReidError`` on a wrong key or a
    damaged line, naming the line)."""
    from cryptography.fernet import InvalidToken

    fernet = _fernet(load_reid_key(key_file))
    try:
        lines = path.read_bytes().splitlines()
    except OSError as error:
        raise ReidError(f"cannot read {path}: {error.strerror}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record: dict[str, str] = json.loads(fernet.decrypt(line.strip()))
        except InvalidToken:
            raise ReidError(
                f"{path}:{number}: cannot be decrypted (another key, or a changed line)"
            ) from None
        yield record
