"""Cohort releases: a query's result frozen as an immutable, citable manifest (series and
instances with their content hashes, the query, who and when, the software version)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from imaging_biobank.model.base import Base


class CohortRelease(Base):
    """One version of a named release. Rows are written once and never changed."""

    __tablename__ = "cohort_release"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    identifier: Mapped[str] = mapped_column(String(255), unique=True)  # stable, citable
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer)
    query_text: Mapped[str] = mapped_column(Text)
    query_json: Mapped[dict[str, Any]]
    purpose: Mapped[list[Any] | None]
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    software_version: Mapped[str] = mapped_column(String(32))
    manifest_sha256: Mapped[str] = mapped_column(String(64))  # of the canonical manifest
    donors: Mapped[int] = mapped_column(Integer)
    studies: Mapped[int] = mapped_column(Integer)
    series: Mapped[int] = mapped_column(Integer)
    instances: Mapped[int] = mapped_column(Integer)
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("cohort_release.id"))


class CohortReleaseSeries(Base):
    """A series of a release, as it was when frozen."""

    __tablename__ = "cohort_release_series"
    __table_args__ = (UniqueConstraint("cohort_release_id", "series_instance_uid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_release_id: Mapped[int] = mapped_column(
        ForeignKey("cohort_release.id", ondelete="CASCADE"), index=True
    )
    donor: Mapped[str] = mapped_column(String(255))  # pseudonymised
    collection: Mapped[str] = mapped_column(String(255))
    study_instance_uid: Mapped[str] = mapped_column(String(64))
    series_instance_uid: Mapped[str] = mapped_column(String(64))
    modality: Mapped[str | None] = mapped_column(String(16))
    body_part: Mapped[str | None] = mapped_column(String(64))
    instances: Mapped[int] = mapped_column(Integer)


class CohortReleaseInstance(Base):
    """An instance of a released series, with its content hash and location."""

    __tablename__ = "cohort_release_instance"
    __table_args__ = (UniqueConstraint("cohort_release_series_id", "sop_instance_uid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_release_series_id: Mapped[int] = mapped_column(
        ForeignKey("cohort_release_series.id", ondelete="CASCADE"), index=True
    )
    sop_instance_uid: Mapped[str] = mapped_column(String(64))
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    location: Mapped[str | None] = mapped_column(Text)
