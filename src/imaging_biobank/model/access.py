"""Who may use the API and what they did: tokens with roles, and the audit log of every
data access (who, when, what query, how many results)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from imaging_biobank.model.base import Base

ROLES = "'researcher', 'data_manager', 'admin'"


class ApiToken(Base):
    """A bearer token for the REST API and the web catalogue. Only the SHA-256 of the token
    is stored; the token itself is shown once, when it is made."""

    __tablename__ = "api_token"
    __table_args__ = (CheckConstraint(f"role IN ({ROLES})", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)  # who holds it
    role: Mapped[str] = mapped_column(String(16))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """One data access through the API or the pages: who, when, what, how many results."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    api_token_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_token.id", ondelete="SET NULL"), index=True
    )
    actor: Mapped[str] = mapped_column(String(255))  # the token's name, kept if it goes
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))  # e.g. cohort.count, cohort.manifest
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text)
    query: Mapped[str | None] = mapped_column(Text)  # the cohort query, in its text form
    purpose: Mapped[list[Any] | None]
    status: Mapped[int] = mapped_column(Integer)  # the HTTP status answered
    result_count: Mapped[int | None] = mapped_column(Integer)  # donors, rows or records
