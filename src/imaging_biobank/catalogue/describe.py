"""Everything known about one collection, gathered for display."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from imaging_biobank.catalogue.stats import collection_counts
from imaging_biobank.db.lookup import find_collection
from imaging_biobank.model import (
    Collection,
    ImageCollection,
    SampleTissueCollection,
    SoftwareSourceCode,
    Term,
)


def term_text(term: Term) -> str:
    text = term.code if term.label == term.code else f"{term.code} ({term.label})"
    return text


@dataclass
class CollectionDescription:
    """One collection: MIABIS attributes, descriptors (declared and derived) and counts."""

    collection: Collection
    attributes: list[tuple[str, str]]
    descriptors: list[tuple[str, str, str]] = field(default_factory=list)  # name, value, origin
    counts: dict[str, Any] = field(default_factory=dict)
    studies: list[tuple[str, str]] = field(default_factory=list)
    contacts: list[tuple[str, str, str]] = field(default_factory=list)


def _descriptor(
    rows: list[tuple[str, str, str]], name: str, declared: list[Any], derived: list[Any]
) -> None:
    if derived:
        rows.append((name, "\n".join(term_text(t) for t in derived), "derived"))
    elif declared:
        rows.append((name, "\n".join(term_text(t) for t in declared), "declared"))


def describe_collection(session: Session, identifier: str) -> CollectionDescription:
    """``identifier``: the full id or the unique short name (``CollectionLookupError``)."""
    found = find_collection(session.connection(), identifier)
    collection = session.scalar(
        select(Collection)
        .where(Collection.id == found.id)
        .options(selectinload(Collection.studies), selectinload(Collection.contacts))
    )
    assert collection is not None  # found in this transaction
    c = collection
    age = ""
    if c.age_low is not None or c.age_high is not None:
        unit = c.age_unit.code if c.age_unit else ""
        low = "?" if c.age_low is None else f"{c.age_low:g}"
        high = "?" if c.age_high is None else f"{c.age_high:g}"
        age = f"{low}-{high} {unit}"
    attributes = [
        ("ID (MIABIS-2.0-01)", c.identifier),
        ("Kind", c.kind.replace("_", " ")),
        ("Acronym (2.0-02)", c.acronym or ""),
        ("Name (2.0-03)", c.name),
        ("Description (2.0-08)", c.description or ""),
        ("Biobank", f"{c.biobank.identifier} ({c.biobank.name})"),
        ("Country", c.biobank.country.code),
        ("Juristic person", c.biobank.juristic_person.name),
        ("Collection type (2.0-16)", ", ".join(term_text(t) for t in c.types)),
        ("Data categories (2.0-13)", ", ".join(term_text(t) for t in c.data_categories)),
        ("Age range (2.0-10/11/12)", age),
        ("URL", c.url or ""),
        ("Parent collection", c.parent_collection.identifier if c.parent_collection else ""),
        ("Access", c.access_description or ""),
    ]
    if isinstance(c, SoftwareSourceCode):
        attributes += [
            ("Repository", c.repository_url or ""),
            ("Version", c.version or ""),
            ("Licence", c.licence or ""),
            ("Language", c.programming_language or ""),
            ("Persistent id", c.persistent_identifier or ""),
        ]
    if isinstance(c, ImageCollection) and c.dicomweb_url:
        attributes.append(("DICOMweb", c.dicomweb_url))
    description = CollectionDescription(c, [(k, v) for k, v in attributes if v])
    rows = description.descriptors
    _descriptor(rows, "Sex (2.0-09)", c.declared_sexes, c.derived_sexes)
    _descriptor(rows, "Diseases (2.0-17)", c.declared_diseases, c.derived_diseases)
    if isinstance(c, SampleTissueCollection):
        _descriptor(
            rows, "Material types (2.0-14)", c.declared_material_types, c.derived_material_types
        )
        _descriptor(
            rows,
            "Storage temperatures (2.0-15)",
            c.declared_storage_temperatures,
            c.derived_storage_temperatures,
        )
    if isinstance(c, ImageCollection):
        _descriptor(rows, "Body parts examined", [], c.body_parts_examined)
        _descriptor(rows, "Dataset types", [], c.dataset_types)
        devices = sorted(
            {
                " ".join(
                    p
                    for p in (
                        m.modality.code if m.modality else "",
                        m.manufacturer,
                        m.manufacturer_model_name,
                    )
                    if p
                )
                for m in c.modality_information
            }
        )
        if devices:
            rows.append(("Modality information", "\n".join(devices), "derived"))
    [counts] = collection_counts(session.connection(), c.identifier)
    description.counts = {k: v for k, v in counts.items() if isinstance(v, int)}
    description.studies = [(s.identifier, s.name) for s in c.studies]
    description.contacts = [(p.identifier, p.full_name, p.email or "") for p in c.contacts]
    return description
