"""Writing a validated registration document: upsert by id, in one transaction.

Re-registering the same document changes nothing; a changed value updates its row. Links
a data manager declares (sex, diagnoses, materials, temperatures) replace the previously
declared ones and never touch the links the writers derive from individual-level data.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session

from imaging_biobank.db.terms import TermIds
from imaging_biobank.model import (
    Biobank,
    ClinicalVariableCollection,
    Collection,
    CollectionCategory,
    ContactInformation,
    DataCategory,
    ImageCollection,
    InclusionCriterion,
    JuristicPerson,
    MaterialType,
    MolecularBiomarkerCollection,
    SampleTissueCollection,
    Sex,
    SoftwareSourceCode,
    Study,
)
from imaging_biobank.model.base import Base
from imaging_biobank.model.collections import (
    collection_disease,
    collection_sex,
    sample_tissue_collection_material_type,
    sample_tissue_collection_storage_temperature,
)
from imaging_biobank.model.links import DECLARED
from imaging_biobank.register.document import (
    BiobankDoc,
    CollectionDoc,
    ContactDoc,
    RegistrationDocument,
    StudyDoc,
)
from imaging_biobank.vocab import catalog

KIND_CLASSES: dict[str, type[Collection]] = {
    "image": ImageCollection,
    "sample_tissue": SampleTissueCollection,
    "clinical_variable": ClinicalVariableCollection,
    "molecular_biomarker": MolecularBiomarkerCollection,
    "software_source_code": SoftwareSourceCode,
}

M = TypeVar("M", bound=Base)


class RegistrationConflictError(ValueError):
    """The document contradicts the database in a way an update cannot resolve."""


@dataclass
class RegisterReport:
    """Per entity: how many rows were created, updated and left unchanged."""

    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)

    @property
    def changed(self) -> bool:
        return bool(sum(self.created.values()) or sum(self.updated.values()))

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {
            "created": dict(self.created),
            "updated": dict(self.updated),
            "unchanged": dict(self.unchanged),
        }


class _Writer:
    def __init__(self, session: Session):
        self.session = session
        self.terms = TermIds(session)
        self.report = RegisterReport()
        self.touched: list[tuple[str, Base]] = []
        self.status: dict[int, str] = {}
        self.pending_links: list[tuple[Table, Base, list[int]]] = []

    def get_or_new(self, cls: type[M], entity: str, **key: Any) -> M:
        found = self.session.scalar(select(cls).filter_by(**key))
        obj = found if found is not None else cls(**key)
        if found is None:
            self.session.add(obj)
        self.touched.append((entity, obj))
        return obj

    def term_id(self, term: catalog.Term | None) -> int | None:
        return None if term is None else self.terms.id(term)

    def declare(self, table: Table, owner: Base, terms: list[catalog.Term]) -> None:
        """Queue: the declared links of ``owner`` in ``table`` become ``terms``."""
        self.pending_links.append((table, owner, [self.terms.id(t) for t in terms]))

    def apply_declared_links(self) -> None:
        """Replace declared links where they differ (after the flush gave owners their ids)."""
        for table, owner, wanted_ids in self.pending_links:
            owner_id = owner.id  # type: ignore[attr-defined]
            owner_col, target_col = (c for c in table.c if c.name.endswith("_id"))
            wanted = set(wanted_ids)
            current = set(
                self.session.scalars(
                    select(target_col).where(owner_col == owner_id, table.c.origin == DECLARED)
                )
            )
            if wanted == current:
                continue
            self.session.execute(
                delete(table).where(owner_col == owner_id, table.c.origin == DECLARED)
            )
            if wanted:
                rows = [
                    {owner_col.name: owner_id, target_col.name: t, "origin": DECLARED}
                    for t in sorted(wanted)
                ]
                self.session.execute(insert(table), rows)
            entity = next(e for e, o in self.touched if o is owner)
            if self.status[id(owner)] == "unchanged":
                self.report.unchanged[entity] -= 1
                self.report.updated[entity] += 1
                self.status[id(owner)] = "updated"

    # --- entities ---

    def contact(self, doc: ContactDoc) -> ContactInformation:
        obj = self.get_or_new(ContactInformation, "contact_information", identifier=doc.id)
        for name in (
            "first_name",
            "last_name",
            "role",
            "email",
            "phone",
            "address",
            "zip",
            "city",
            "juristic_person",
            "department",
            "orcid",
        ):
            setattr(obj, name, getattr(doc, name))
        obj.country_id = self.term_id(doc.country)
        return obj

    def biobank(self, doc: BiobankDoc, contacts: dict[str, ContactInformation]) -> Biobank:
        person = self.get_or_new(JuristicPerson, "juristic_person", name=doc.juristic_person.name)
        person.country_id = self.term_id(doc.juristic_person.country)
        person.url = doc.juristic_person.url
        obj = self.get_or_new(Biobank, "biobank", identifier=doc.id)
        obj.acronym, obj.name, obj.url, obj.description = (
            doc.acronym,
            doc.name,
            doc.url,
            doc.description,
        )
        obj.juristic_person = person
        obj.country_id = self.terms.id(doc.country)
        obj.contact = contacts[doc.contact] if doc.contact else None
        return obj

    def collection(
        self, doc: CollectionDoc, biobank: Biobank, contacts: dict[str, ContactInformation]
    ) -> Collection:
        existing = self.session.scalar(select(Collection).filter_by(identifier=doc.id))
        cls = KIND_CLASSES[doc.kind]
        if existing is not None and existing.kind != doc.kind:
            raise RegistrationConflictError(
                f"collection {doc.id} is registered as {existing.kind}, the file says {doc.kind};"
                " a collection cannot change kind"
            )
        obj = self.get_or_new(cls, "collection", identifier=doc.id)
        obj.biobank = biobank
        obj.name, obj.acronym, obj.description, obj.url = (
            doc.name,
            doc.acronym,
            doc.description,
            doc.url,
        )
        obj.age_low, obj.age_high = doc.age_low, doc.age_high
        obj.age_unit_id = self.term_id(doc.age_unit)
        access = doc.access
        obj.access_fee = access.fee if access else None
        obj.access_joint_project = access.joint_project if access else None
        obj.access_description = access.description if access else None
        obj.access_uri = access.uri if access else None
        obj.collaboration_commercial = doc.collaboration_commercial
        obj.collaboration_non_for_profit = doc.collaboration_non_for_profit
        obj.types = self.terms.rows(CollectionCategory, doc.types)
        obj.data_categories = self.terms.rows(DataCategory, doc.data_categories)
        obj.contacts = [contacts[c] for c in dict.fromkeys(doc.contacts)]
        if isinstance(obj, ImageCollection):
            obj.dicomweb_url = doc.dicomweb_url
        if isinstance(obj, SoftwareSourceCode):
            software = doc.software
            for name in (
                "repository_url",
                "version",
                "licence",
                "programming_language",
                "persistent_identifier",
            ):
                setattr(obj, name, getattr(software, name) if software else None)
        self.declare(collection_sex, obj, doc.sex)
        self.declare(collection_disease, obj, doc.diseases)
        if isinstance(obj, SampleTissueCollection):
            self.declare(sample_tissue_collection_material_type, obj, doc.material_types)
            self.declare(
                sample_tissue_collection_storage_temperature, obj, doc.storage_temperatures
            )
        return obj

    def study(
        self,
        doc: StudyDoc,
        collections: dict[str, Collection],
        contacts: dict[str, ContactInformation],
    ) -> Study:
        obj = self.get_or_new(Study, "study", identifier=doc.id)
        obj.name, obj.description = doc.name, doc.description
        pi = doc.principal_investigator
        obj.principal_investigator = contacts[pi] if pi else None
        obj.age_low, obj.age_high = doc.age_low, doc.age_high
        obj.age_unit_id = self.term_id(doc.age_unit)
        obj.total_participants, obj.total_donors = doc.total_participants, doc.total_donors
        obj.collections = [collections[c] for c in dict.fromkeys(doc.collections)]
        obj.contacts = [contacts[c] for c in dict.fromkeys(doc.contacts)]
        obj.designs = self.terms.rows(CollectionCategory, doc.designs)
        obj.data_categories = self.terms.rows(DataCategory, doc.data_categories)
        obj.sexes = self.terms.rows(Sex, doc.sex)
        obj.material_types = self.terms.rows(MaterialType, doc.material_types)
        obj.inclusion_criteria = self.terms.rows(InclusionCriterion, doc.inclusion_criteria)
        return obj

    def tally(self) -> None:
        """Classify every touched row as created, updated or unchanged (before the flush)."""
        for entity, obj in self.touched:
            if obj in self.session.new:
                status = "created"
            elif self.session.is_modified(obj, include_collections=True):
                status = "updated"
            else:
                status = "unchanged"
            self.status[id(obj)] = status
            getattr(self.report, status)[entity] += 1


def write_document(session: Session, doc: RegistrationDocument) -> RegisterReport:
    """Upsert everything ``doc`` describes; the caller commits (or rolls back)."""
    writer = _Writer(session)
    with session.no_autoflush:  # so the tally sees every change before it is flushed
        contacts = {c.id: writer.contact(c) for c in doc.contacts}
        biobank = writer.biobank(doc.biobank, contacts)
        collections = {c.id: writer.collection(c, biobank, contacts) for c in doc.collections}
        for c in doc.collections:
            collections[c.id].parent_collection = collections[c.parent] if c.parent else None
        for study in doc.studies:
            writer.study(study, collections, contacts)
        writer.tally()
    session.flush()
    writer.apply_declared_links()
    session.flush()
    return writer.report
