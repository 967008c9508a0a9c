"""Declarative base, naming conventions and column types shared by every table."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, MetaData, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from imaging_biobank.db.types import JSONType

MAX_NAME = 63  # PostgreSQL's identifier limit


def fit_name(name: str) -> str:
    """A name of at most 63 characters, the same on every backend (hash-suffixed if long)."""
    if len(name) <= MAX_NAME:
        return name
    return f"{name[: MAX_NAME - 9]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def _columns(constraint: Any) -> str:
    return "_".join(c.name for c in constraint.columns)


# Deterministic constraint names, so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION: dict[str, Any] = {
    "ix_name": lambda c, t: fit_name(f"ix_{t.name}_{_columns(c)}"),
    "uq_name": lambda c, t: fit_name(f"uq_{t.name}_{_columns(c)}"),
    "fk_name": lambda c, t: fit_name(f"fk_{t.name}_{_columns(c)}"),
    "ck_name": lambda c, t: fit_name(f"ck_{t.name}_{c.name}"),
    "ix": "%(ix_name)s",
    "uq": "%(uq_name)s",
    "ck": "%(ck_name)s",
    "fk": "%(fk_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every ORM class: the tables users write SQL against."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSONType, list[Any]: JSONType}


class Timestamps:
    """When a row was created and last changed (UTC, set by the database)."""

    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


def age_range_checks() -> tuple[CheckConstraint, CheckConstraint]:
    """MIABIS 2.0-10/11/12 on a table with age_low, age_high, age_unit_id: low <= high,
    and a unit whenever an age is given."""
    return (
        CheckConstraint(
            "age_low IS NULL OR age_high IS NULL OR age_low <= age_high", name="age_range"
        ),
        CheckConstraint(
            "(age_low IS NULL AND age_high IS NULL) OR age_unit_id IS NOT NULL", name="age_unit"
        ),
    )
