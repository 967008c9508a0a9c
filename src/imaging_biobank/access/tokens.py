"""API tokens: made once and shown once, stored as their SHA-256, each with a role.

Roles (the issue's, after the Directory's and the Locator's):

- ``researcher``: the catalogue and cohort counts, small counts obfuscated;
- ``data_manager``: also exact counts, manifests, releases, ingest, import, e-form entry;
- ``admin``: everything, tokens included.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select, update

from imaging_biobank.db._schema import metadata

ROLES = ("researcher", "data_manager", "admin")
PREFIX = "ibk_"  # recognisable in logs and by secret scanners
TOKENS = metadata.tables["api_token"]


class TokenError(ValueError):
    """A token cannot be made or changed as asked."""


@dataclass(frozen=True)
class Principal:
    """Who a request comes from."""

    token_id: int | None
    name: str
    role: str

    def may(self, *roles: str) -> bool:
        """Whether this principal has one of ``roles`` (admin may do everything)."""
        return self.role == "admin" or self.role in roles


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    conn: Connection,
    name: str,
    role: str,
    *,
    expires: dt.datetime | None = None,
    replace: bool = False,
) -> str:
    """A new token for ``name`` with ``role``; returns the token (it is not stored). With
    ``replace``, a token of that name is revoked and renamed ``name#id`` first (the audit
    log keeps pointing at it)."""
    if role not in ROLES:
        raise TokenError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if not name.strip() or "#" in name:
        raise TokenError("a token needs the name of who holds it (without '#')")
    old = conn.execute(select(TOKENS.c.id).where(TOKENS.c.name == name)).scalar()
    if old is not None and not replace:
        raise TokenError(f"a token named {name!r} exists: revoke it or choose another name")
    if old is not None:
        conn.execute(
            update(TOKENS)
            .where(TOKENS.c.id == old)
            .values(
                name=f"{name}#{old}",
                revoked_at=func.coalesce(TOKENS.c.revoked_at, dt.datetime.now(dt.UTC)),
            )
        )
    token = PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        insert(TOKENS).values(
            name=name,
            role=role,
            token_sha256=digest(token),
            created_at=dt.datetime.now(dt.UTC),
            expires_at=expires,
        )
    )
    return token


def revoke_token(conn: Connection, name: str) -> None:
    """Revoke the token named ``name`` (kept, for the audit log's references)."""
    done = conn.execute(
        update(TOKENS)
        .where(TOKENS.c.name == name, TOKENS.c.revoked_at.is_(None))
        .values(revoked_at=dt.datetime.now(dt.UTC))
    )
    if done.rowcount == 0:
        raise TokenError(f"no active token named {name!r}")


def principal(conn: Connection, token: str) -> Principal | None:
    """The holder of ``token``, or None if it is unknown, revoked or expired."""
    row = conn.execute(
        select(TOKENS.c.id, TOKENS.c.name, TOKENS.c.role, TOKENS.c.expires_at).where(
            TOKENS.c.token_sha256 == digest(token), TOKENS.c.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    if row.expires_at is not None:
        expires = row.expires_at
        if expires.tzinfo is None:  # SQLite gives naive UTC
            expires = expires.replace(tzinfo=dt.UTC)
        if expires <= dt.datetime.now(dt.UTC):
            return None
    return Principal(row.id, row.name, row.role)


def list_tokens(conn: Connection) -> list[dict[str, object]]:
    """The tokens (never their values): name, role, made, expires, revoked."""
    rows = conn.execute(
        select(
            TOKENS.c.name,
            TOKENS.c.role,
            TOKENS.c.created_at,
            TOKENS.c.expires_at,
            TOKENS.c.revoked_at,
        ).order_by(TOKENS.c.name)
    )
    return [dict(row._mapping) for row in rows]
