"""Analysis runs and their software: the provenance every segmentation, feature and
harmonised value points back to.

A run is an ``image_analysis`` row: what was done (its type), with which software entry
(a collection of kind Software/Source Code: name, version, repository, licence), with
which configuration, on which series. A software entry is found by name and version, and
made (under the image collection's biobank) the first time a run uses it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from imaging_biobank.model import (
    ImageAnalysis,
    ImageCollection,
    ImagingSeries,
    SoftwareSourceCode,
)
from imaging_biobank.vocab.identifiers import check_collection_id


def software_entry(
    session: Session,
    collection: ImageCollection,
    name: str,
    version: str,
    *,
    repository_url: str | None = None,
    licence: str | None = None,
    persistent_identifier: str | None = None,
    description: str | None = None,
) -> SoftwareSourceCode:
    """The software entry of ``name`` ``version`` in the collection's biobank (made once)."""
    biobank = collection.biobank
    found = session.scalars(
        select(SoftwareSourceCode).where(
            SoftwareSourceCode.biobank_id == biobank.id,
            SoftwareSourceCode.name == name,
            SoftwareSourceCode.version == version,
        )
    ).first()
    if found is not None:
        return found
    slug = re.sub(r"[^A-Za-z0-9]+", "_", f"{name}_{version}").strip("_").upper()
    identifier = check_collection_id(
        f"{biobank.identifier}:collection:SOFTWARE_{slug}", biobank.identifier
    )
    entry = SoftwareSourceCode(
        identifier=identifier,
        biobank=biobank,
        name=name,
        version=version,
        description=description or f"{name} {version}, recorded by the analyses that used it",
        repository_url=repository_url,
        licence=licence,
        persistent_identifier=persistent_identifier,
        programming_language="Python",
    )
    session.add(entry)
    session.flush()
    return entry


def new_run(
    session: Session,
    collection: ImageCollection,
    analysis_type: str,
    name: str,
    software: SoftwareSourceCode,
    configuration: dict[str, Any] | None = None,
    inputs: Iterable[ImagingSeries] = (),
    description: str | None = None,
) -> ImageAnalysis:
    """Record one run (its outputs are linked by the caller)."""
    run = ImageAnalysis(
        image_collection=collection,
        analysis_type=analysis_type,
        name=name,
        description=description,
        software=software,
        performed_at=dt.datetime.now(dt.UTC),
        configuration=configuration,
    )
    run.input_series = list(dict.fromkeys(inputs))
    session.add(run)
    session.flush()
    return run


def tool_version() -> str:
    from imaging_biobank import __version__

    return __version__


def own_software(session: Session, collection: ImageCollection) -> SoftwareSourceCode:
    """The entry of imaging-biobank itself (the importers are its code)."""
    return software_entry(
        session,
        collection,
        "imaging-biobank",
        tool_version(),
        licence="Apache-2.0",
        description="imaging-biobank's importers (segmentations, reports, registrations)",
    )
