"""Audit records of de-identifying runs: when, who, how, with which key, what happened.

A record names the key by its fingerprint only and holds no source path or identifier:
it travels with the de-identified output (``.imaging-biobank/deid-audit.jsonl`` there: a
hidden folder, which ingesting the output passes over) or lives in the database
(``deidentification_run``, for ``ingest --deidentify``).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from imaging_biobank.deid.options import OPTIONS, DeidOptions
from imaging_biobank.deid.profile import manifest

AUDIT_FILE = Path(".imaging-biobank") / "deid-audit.jsonl"


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (containers)
        return f"uid {os.getuid()}"


@dataclass(frozen=True)
class AuditRecord:
    command: str
    started_at: str
    finished_at: str
    os_user: str
    options: list[str]
    uid_root: str
    accept_burned_in: bool
    key_fingerprint: str
    profile_edition: str
    tool_version: str
    counts: dict[str, Any]

    @classmethod
    def of(
        cls,
        command: str,
        started: dt.datetime,
        options: DeidOptions,
        fingerprint: str,
        version: str,
        counts: dict[str, Any],
    ) -> AuditRecord:
        return cls(
            command=command,
            started_at=started.isoformat(timespec="seconds"),
            finished_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            os_user=os_user(),
            options=[o.name for o in OPTIONS if o.name in options],
            uid_root=options.uid_root,
            accept_burned_in=options.accept_burned_in,
            key_fingerprint=fingerprint,
            profile_edition=manifest()["ps3.15-e1-1.json"].edition,
            tool_version=version,
            counts=counts,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def append_audit(folder: Path, record: AuditRecord) -> Path:
    """Append ``record`` to ``folder/.imaging-biobank/deid-audit.jsonl``."""
    path = folder / AUDIT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record.as_dict(), sort_keys=True) + "\n")
    return path
