"""The audit log of data access: who, when, what query, how many results."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, select

from imaging_biobank.access.tokens import Principal
from imaging_biobank.db._schema import metadata

LOG = metadata.tables["audit_log"]


def record(
    conn: Connection,
    who: Principal,
    *,
    action: str,
    method: str,
    path: str,
    status: int,
    query: str | None = None,
    purpose: Sequence[str] | None = None,
    result_count: int | None = None,
) -> None:
    """Write one entry (in the caller's transaction)."""
    conn.execute(
        insert(LOG).values(
            at=dt.datetime.now(dt.UTC),
            api_token_id=who.token_id,
            actor=who.name,
            role=who.role,
            action=action,
            method=method,
            path=path[:2000],
            query=query,
            purpose=list(purpose) if purpose else None,
            status=status,
            result_count=result_count,
        )
    )


def entries(
    conn: Connection, *, actor: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest entries first (optionally of one actor)."""
    statement = select(LOG).order_by(LOG.c.id.desc()).limit(limit)
    if actor is not None:
        statement = statement.where(LOG.c.actor == actor)
    return [dict(row._mapping) for row in conn.execute(statement)]
