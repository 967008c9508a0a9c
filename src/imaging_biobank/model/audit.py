"""Operational records kept beside the model: one row per de-identifying run."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from imaging_biobank.model.base import Base


class DeidentificationRun(Base):
    """An audit record of a run that de-identified images into this database (``ingest
    --deidentify``): when, who, with which options and key (its fingerprint, never the
    key), and what it did."""

    __tablename__ = "deidentification_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    command: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    os_user: Mapped[str] = mapped_column(String(128))
    options: Mapped[list[Any]]
    uid_root: Mapped[str] = mapped_column(String(64))
    accept_burned_in: Mapped[bool] = mapped_column(Boolean)
    key_fingerprint: Mapped[str] = mapped_column(String(32))
    profile_edition: Mapped[str] = mapped_column(String(255))
    tool_version: Mapped[str] = mapped_column(String(32))
    counts: Mapped[dict[str, Any]]
    collection_id: Mapped[int | None] = mapped_column(
        ForeignKey("collection.id", ondelete="SET NULL"), index=True
    )
