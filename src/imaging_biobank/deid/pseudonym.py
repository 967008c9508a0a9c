"""Keyed donor pseudonyms: one function from a source identifier to a donor key.

HMAC-SHA256 under a secret key that lives in a file outside the database. The same source
identifier (a DICOM PatientID, a sample's donor id, an e-form's patient id) gives the same
pseudonym everywhere, so a donor's images, samples and records meet without anyone storing
who the donor is; without the key, a pseudonym cannot be recomputed from an identifier.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path

KEY_ENV = "IMAGING_BIOBANK_KEY_FILE"
KEY_BYTES = 32
HOW_TO_MAKE = (
    f"make one with `imaging-biobank keygen PATH`, then pass --key-file PATH or set {KEY_ENV}=PATH"
)


class KeyFileError(ValueError):
    """No usable key: the message says what is wrong and how to make one."""


def write_new_key(path: Path, key: bytes) -> Path:
    """Write ``key`` and a newline to a new file ``path``, readable by its owner only; a key
    is never overwritten (``KeyFileError``)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} exists already; a key is never overwritten") from None
    except OSError as error:
        raise KeyFileError(f"cannot create {path}: {error.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return path


def generate_key_file(path: Path) -> Path:
    """Write a new random key (hex) to ``path``, readable by its owner only; never overwrites."""
    return write_new_key(path, secrets.token_hex(KEY_BYTES).encode("ascii"))


def load_key(path: Path | str | None) -> bytes:
    """The key in ``path``; a ``KeyFileError`` saying how to make one when there is none."""
    if path is None or str(path) == "":
        raise KeyFileError(f"no pseudonymisation key given: {HOW_TO_MAKE}")
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist: {HOW_TO_MAKE}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise KeyFileError(f"cannot read key file {path}: {error}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise KeyFileError(f"{path} is not a key made by `imaging-biobank keygen`") from None
    if len(key) < 16:
        raise KeyFileError(f"{path} holds a key of {len(key)} bytes; at least 16 are needed")
    return key


def normalise_identifier(value: str) -> str:
    """The identifier as compared: Unicode NFC, surrounding spaces and NULs removed."""
    return unicodedata.normalize("NFC", value).strip(" \x00\t\r\n")


@dataclass(frozen=True)
class Pseudonymiser:
    """Turns source identifiers into donor pseudonyms under one key."""

    key: bytes

    @classmethod
    def from_file(cls, path: Path | str | None) -> Pseudonymiser:
        return cls(load_key(path))

    def donor(self, source_identifier: str) -> str:
        """The donor pseudonym of a source identifier (32 hex digits)."""
        message = b"donor\x00" + normalise_identifier(source_identifier).encode("utf-8")
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()[:32]

    def _digest(self, purpose: bytes, value: str) -> bytes:
        return hmac.new(
            self.key, purpose + b"\x00" + value.encode("utf-8"), hashlib.sha256
        ).digest()

    def uid(self, original: str, root: str = "2.25") -> str:
        """The replacement of a UID: valid (PS3.5 9.1), at most 64 characters, the same for
        the same UID and key wherever it occurs, so references stay consistent. Under
        2.25 the 128-bit keyed hash is the UUID-derived number; under another root as many
        of its digits as fit."""
        number = int.from_bytes(self._digest(b"uid", original.strip(" \x00")), "big")
        if root == "2.25":
            return f"2.25.{number >> 128}"
        room = 64 - len(root) - 1
        return f"{root}.{str(number)[:room]}"  # str(int): no leading zero

    def date_shift_days(self, source_identifier: str) -> int:
        """How many days a donor's dates move back (1 to 3,650), the same in every file of
        the donor (Retain Longitudinal Temporal Information with Modified Dates)."""
        digest = self._digest(b"date-shift", normalise_identifier(source_identifier))
        return 1 + int.from_bytes(digest[:8], "big") % 3650

    def token(self, purpose: str, value: str, length: int = 16) -> str:
        """A keyed stand-in for a short identifier (an AE title, an ID), upper-case hex."""
        digest = self._digest(purpose.encode("utf-8"), normalise_identifier(value))
        return digest.hex().upper()[:length]

    @property
    def fingerprint(self) -> str:
        """Identifies the key in audit records without revealing it."""
        return hashlib.sha256(b"fingerprint\x00" + self.key).hexdigest()[:16]
