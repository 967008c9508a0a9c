"""One settings object, read from the environment (``IMAGING_BIOBANK_*``) and passed down.

This is the only module that reads ``os.environ``; command-line options override it.
A plain dataclass (not pydantic-settings) keeps the command line quick to start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_DB = "sqlite:///biobank.db"
PREFIX = "IMAGING_BIOBANK_"


@dataclass(frozen=True)
class Settings:
    """Deployment settings."""

    db: str = DEFAULT_DB  # database URL: sqlite:///path.db or postgresql://user@host/db
    key_file: str | None = None  # the pseudonymisation key (never stored in the database)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            db=env.get(f"{PREFIX}DB") or DEFAULT_DB,
            key_file=env.get(f"{PREFIX}KEY_FILE") or None,
        )
