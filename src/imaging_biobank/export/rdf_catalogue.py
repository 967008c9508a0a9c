"""The catalogue as RDF: biobanks (``dcat:Catalog``), their collections (``dcat:Dataset``, with
their MIABIS attributes and the descriptors derived from their data), MIABIS studies, the
juristic persons and the contact persons (never donors). Counts are shown as the graph's
reader may see them (``Builder.count``: obfuscated for researchers, MIABIS study totals
included); the ages of a collection's donors as the 10-year bands the catalogue's age facet
shows (``ib:ageBand``), and the exact youngest and oldest ages only in a data manager's
graph."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Final

from rdflib import RDF, URIRef
from sqlalchemy import Row, Table, select

from imaging_biobank.db._schema import metadata
from imaging_biobank.export.rdf_build import Builder
from imaging_biobank.export.rdf_terms import DCAT, DCTERMS, FOAF, IB, SCHEMA, VCARD, XSD
from imaging_biobank.query.facets import collection_facets

T = metadata.tables
KIND_CLASS: Final = {
    "image": IB.ImageCollection,
    "sample_tissue": IB.SampleTissueCollection,
    "clinical_variable": IB.ClinicalVariableCollection,
    "molecular_biomarker": IB.MolecularBiomarkerCollection,
    "software_source_code": IB.SoftwareSourceCode,
}


def _url(text: str | None) -> URIRef | None:
    """A web address as an IRI (only http(s) addresses; anything else is left out)."""
    if not text:
        return None
    text = text.strip()
    if text.startswith(("http://", "https://")) and " " not in text:
        return URIRef(text)
    return None


def collection_iri(b: Builder, identifier: str) -> URIRef:
    return b.mint.item("collection", identifier)


def _links(
    b: Builder, table: Table, parent: str, target: str, ids: list[int]
) -> dict[int, list[Any]]:
    """parent id -> the target ids of an N:M link table (all origins), in target id order."""
    found: dict[int, list[Any]] = defaultdict(list)
    if not ids:
        return found
    rows = b.conn.execute(
        select(table.c[parent], table.c[target])
        .where(table.c[parent].in_(ids))
        .order_by(table.c[parent], table.c[target])
    )
    for p, t in rows:
        if t not in found[p]:
            found[p].append(t)
    return found


def _derived_or_declared(
    b: Builder, table: Table, parent: str, target: str, ids: list[int]
) -> dict[int, list[int]]:
    """parent id -> targets: the derived links where there are any, else the declared ones
    (the model's rule for sexes, diseases, materials and temperatures)."""
    by_origin: dict[tuple[int, str], list[int]] = defaultdict(list)
    if ids:
        rows = b.conn.execute(
            select(table.c[parent], table.c[target], table.c.origin)
            .where(table.c[parent].in_(ids))
            .order_by(table.c[parent], table.c[target])
        )
        for p, t, origin in rows:
            by_origin[(p, origin)].append(t)
    return {i: by_origin.get((i, "derived")) or by_origin.get((i, "declared"), []) for i in ids}


def add_catalogue(b: Builder) -> None:
    """Biobanks, collections and studies of the scope, with their contacts."""
    ids = b.scope.ids
    c = T["collection"]
    collections = b.conn.execute(select(c).where(c.c.id.in_(ids)).order_by(c.c.id)).all()
    biobank_ids = sorted({int(r.biobank_id) for r in collections})
    biobanks = _biobanks(b, biobank_ids)
    b.tally("biobanks", len(biobanks))
    b.tally("collections", len(collections))
    identifiers = {int(r.id): str(r.identifier) for r in collections}
    parents = {
        int(r.id): str(r.identifier) for r in b.conn.execute(select(c.c.id, c.c.identifier)).all()
    }
    contacts: set[int] = set()
    bands = {k: v["age"] for k, v in collection_facets(b.conn).items()} if collections else {}
    for row in collections:
        _collection(b, row, biobanks[int(row.biobank_id)], parents)
        for band in bands.get(str(row.identifier), []):
            b.add(collection_iri(b, row.identifier), IB.ageBand, band)
    contacts_of = _links(
        b, T["collection_contact_information"], "collection_id", "contact_information_id", ids
    )
    for cid, found in contacts_of.items():
        for contact in found:
            b.add(collection_iri(b, identifiers[cid]), DCAT.contactPoint, _contact_iri(b, contact))
            contacts.add(int(contact))
    _collection_terms(b, ids, identifiers)
    _image_descriptors(b, [i for i in ids if b.scope_kind(i) == "image"], identifiers)
    _sample_descriptors(b, [i for i in ids if b.scope_kind(i) == "sample_tissue"], identifiers)
    _software(b, [i for i in ids if b.scope_kind(i) == "software_source_code"], identifiers)
    contacts |= _studies(b, ids, identifiers)
    contacts |= {int(row.contact_id) for row in biobanks.values() if row.contact_id is not None}
    _contacts(b, sorted(contacts))


def _biobanks(b: Builder, ids: list[int]) -> dict[int, Row[Any]]:
    t, jp = T["biobank"], T["juristic_person"]
    rows = b.conn.execute(
        select(t, jp.c.name.label("jp_name"), jp.c.country_id.label("jp_country"),
               jp.c.url.label("jp_url"))
        .join(jp, jp.c.id == t.c.juristic_person_id)
        .where(t.c.id.in_(ids))
        .order_by(t.c.id)
    ).all()  # fmt: skip
    for row in rows:
        iri = b.mint.item("biobank", row.identifier)
        b.graph.add((iri, RDF.type, IB.Biobank))
        b.graph.add((iri, RDF.type, DCAT.Catalog))
        b.add(iri, DCTERMS.identifier, row.identifier)
        b.add(iri, DCTERMS.title, row.name)
        b.add(iri, DCTERMS.alternative, row.acronym)
        b.add(iri, DCTERMS.description, row.description)
        b.add(iri, FOAF.homepage, _url(row.url))
        b.add(iri, DCTERMS.spatial, b.country(row.country_id))
        organisation = b.mint.item("organisation", row.jp_name)
        b.graph.add((organisation, RDF.type, FOAF.Organization))
        b.add(organisation, FOAF.name, row.jp_name)
        b.add(organisation, DCTERMS.spatial, b.country(row.jp_country))
        b.add(organisation, FOAF.homepage, _url(row.jp_url))
        b.add(iri, IB.juristicPerson, organisation)
        b.add(iri, DCTERMS.publisher, organisation)
        if row.contact_id is not None:
            b.add(iri, DCAT.contactPoint, _contact_iri(b, row.contact_id))
        b.add(iri, IB.countsObfuscated, b.options.role == "researcher")
    return {int(r.id): r for r in rows}


def _collection(b: Builder, row: Row[Any], biobank: Row[Any], parents: dict[int, str]) -> None:
    iri = collection_iri(b, row.identifier)
    owner = b.mint.item("biobank", biobank.identifier)
    g = b.graph
    g.add((iri, RDF.type, IB.Collection))
    g.add((iri, RDF.type, KIND_CLASS[row.kind]))
    g.add((iri, RDF.type, DCAT.Dataset))
    g.add((owner, DCAT.dataset, iri))
    b.add(iri, DCTERMS.isPartOf, owner)
    b.add(iri, DCTERMS.identifier, row.identifier)
    b.add(iri, DCTERMS.title, row.name)
    b.add(iri, DCTERMS.alternative, row.acronym)
    b.add(iri, DCTERMS.description, row.description)
    b.add(iri, DCAT.landingPage, _url(row.url))
    if row.parent_collection_id is not None:
        b.add(iri, IB.parentCollection, collection_iri(b, parents[row.parent_collection_id]))
    b.add(iri, IB.ageLow, row.age_low, XSD.decimal)
    b.add(iri, IB.ageHigh, row.age_high, XSD.decimal)
    b.add(iri, IB.ageUnit, b.term("age_unit", row.age_unit_id))
    if b.exact:  # a researcher sees the donors' ages as bands only (ib:ageBand)
        b.add(iri, IB.donorAgeLowYears, row.donor_age_low_years, XSD.decimal)
        b.add(iri, IB.donorAgeHighYears, row.donor_age_high_years, XSD.decimal)
    b.add(iri, IB.numberOfDonors, b.count(row.number_of_donors), XSD.integer)
    b.add(iri, IB.size, b.count(row.size), XSD.integer)
    b.add(iri, IB.accessFee, row.access_fee)
    b.add(iri, IB.accessJointProject, row.access_joint_project)
    b.add(iri, IB.accessDescription, row.access_description)
    b.add(iri, IB.accessUri, _url(row.access_uri))
    b.add(iri, IB.collaborationCommercial, row.collaboration_commercial)
    b.add(iri, IB.collaborationNonForProfit, row.collaboration_non_for_profit)


def _collection_terms(b: Builder, ids: list[int], identifiers: dict[int, str]) -> None:
    """Types, data categories, sexes and diseases of every collection."""
    plain = [
        ("collection_collection_category", "collection_category", IB.collectionType),
        ("collection_data_category", "data_category", IB.dataCategory),
    ]
    for link, table, predicate in plain:
        for cid, terms in _links(b, T[link], "collection_id", f"{table}_id", ids).items():
            for term in terms:
                b.add(collection_iri(b, identifiers[cid]), predicate, b.term(table, term))
    derived = [("collection_sex", "sex", IB.sex), ("collection_disease", "disease", IB.diagnosis)]
    for link, table, predicate in derived:
        for cid, terms in _derived_or_declared(
            b, T[link], "collection_id", f"{table}_id", ids
        ).items():
            for term in terms:
                b.add(collection_iri(b, identifiers[cid]), predicate, b.term(table, term))


def _image_descriptors(b: Builder, ids: list[int], identifiers: dict[int, str]) -> None:
    """Body parts, dataset types, equipment and modalities derived from the series."""
    ic = T["image_collection"]
    for row in b.conn.execute(select(ic).where(ic.c.id.in_(ids))):
        b.add(collection_iri(b, identifiers[row.id]), IB.dicomwebUrl, _url(row.dicomweb_url))
    for link, table, predicate in (
        ("image_collection_body_part_examined", "body_part_examined", IB.bodyPart),
        ("image_collection_dataset_type", "dataset_type", IB.datasetType),
    ):
        for cid, terms in _links(b, T[link], "image_collection_id", f"{table}_id", ids).items():
            for term in terms:
                b.add(collection_iri(b, identifiers[cid]), predicate, b.term(table, term))
    devices_of = _links(
        b, T["image_collection_modality_information"], "image_collection_id",
        "modality_information_id", ids,
    )  # fmt: skip
    for cid, devices in devices_of.items():
        for device in devices:
            iri = b.equipment(device)
            b.add(collection_iri(b, identifiers[cid]), IB.equipment, iri)
            for modality in b.graph.objects(iri, IB.modality):
                b.add(collection_iri(b, identifiers[cid]), IB.modality, modality)


def _sample_descriptors(b: Builder, ids: list[int], identifiers: dict[int, str]) -> None:
    for link, table, predicate in (
        ("sample_tissue_collection_material_type", "material_type", IB.materialType),
        (
            "sample_tissue_collection_storage_temperature",
            "storage_temperature",
            IB.storageTemperature,
        ),
    ):
        found = _derived_or_declared(b, T[link], "sample_tissue_collection_id", f"{table}_id", ids)
        for cid, terms in found.items():
            for term in terms:
                b.add(collection_iri(b, identifiers[cid]), predicate, b.term(table, term))


def _software(b: Builder, ids: list[int], identifiers: dict[int, str]) -> None:
    s = T["software_source_code"]
    for row in b.conn.execute(select(s).where(s.c.id.in_(ids)).order_by(s.c.id)):
        iri = collection_iri(b, identifiers[row.id])
        b.graph.add((iri, RDF.type, SCHEMA.SoftwareSourceCode))
        b.add(iri, SCHEMA.codeRepository, _url(row.repository_url))
        b.add(iri, SCHEMA.softwareVersion, row.version)
        b.add(iri, SCHEMA.license, row.licence)
        b.add(iri, SCHEMA.programmingLanguage, row.programming_language)
        b.add(iri, SCHEMA.identifier, row.persistent_identifier)


def _studies(b: Builder, ids: list[int], identifiers: dict[int, str]) -> set[int]:
    """The MIABIS studies spanning a collection of the scope; the contacts they name."""
    s, sc = T["study"], T["study_collection"]
    rows = b.conn.execute(
        select(s)
        .where(s.c.id.in_(select(sc.c.study_id).where(sc.c.collection_id.in_(ids))))
        .order_by(s.c.id)
    ).all()
    study_ids = [int(r.id) for r in rows]
    iris = {int(r.id): b.mint.item("study", r.identifier) for r in rows}
    contacts: set[int] = set()
    for row in rows:
        iri = iris[int(row.id)]
        b.graph.add((iri, RDF.type, IB.Study))
        b.add(iri, DCTERMS.identifier, row.identifier)
        b.add(iri, DCTERMS.title, row.name)
        b.add(iri, DCTERMS.description, row.description)
        b.add(iri, IB.ageLow, row.age_low, XSD.decimal)
        b.add(iri, IB.ageHigh, row.age_high, XSD.decimal)
        b.add(iri, IB.ageUnit, b.term("age_unit", row.age_unit_id))
        b.add(iri, IB.totalParticipants, b.count(row.total_participants), XSD.integer)
        b.add(iri, IB.totalDonors, b.count(row.total_donors), XSD.integer)
        if row.principal_investigator_id is not None:
            b.add(iri, IB.principalInvestigator, _contact_iri(b, row.principal_investigator_id))
            contacts.add(int(row.principal_investigator_id))
    for sid, members in _links(b, sc, "study_id", "collection_id", study_ids).items():
        for member in members:
            if member in identifiers:
                b.add(iris[sid], IB.collection, collection_iri(b, identifiers[member]))
    for link, table, predicate in (
        ("study_collection_category", "collection_category", IB.studyDesign),
        ("study_data_category", "data_category", IB.dataCategory),
        ("study_sex", "sex", IB.sex),
        ("study_material_type", "material_type", IB.materialType),
        ("study_inclusion_criterion", "inclusion_criterion", IB.inclusionCriterion),
    ):
        for sid, terms in _links(b, T[link], "study_id", f"{table}_id", study_ids).items():
            for term in terms:
                b.add(iris[sid], predicate, b.term(table, term))
    contacts_of = _links(
        b, T["study_contact_information"], "study_id", "contact_information_id", study_ids
    )
    for sid, found in contacts_of.items():
        for contact in found:
            b.add(iris[sid], DCAT.contactPoint, _contact_iri(b, contact))
            contacts.add(int(contact))
    b.tally("studies", len(rows))
    return contacts


_CONTACT_IRIS: Final = "contact"


def _contact_iri(b: Builder, contact_id: int) -> URIRef:
    identifier = b.contact_identifier(int(contact_id))
    return b.mint.item(_CONTACT_IRIS, identifier)


def _contacts(b: Builder, ids: list[int]) -> None:
    """Contact persons of biobanks, collections and studies (vCard): name, role, email,
    organisation, ORCID. Not donors: the Directory and MIABIS publish them."""
    t = T["contact_information"]
    for row in b.conn.execute(select(t).where(t.c.id.in_(ids)).order_by(t.c.id)):
        iri = b.mint.item(_CONTACT_IRIS, row.identifier)
        b.graph.add((iri, RDF.type, VCARD.Individual))
        name = " ".join(p for p in (row.first_name, row.last_name) if p)
        b.add(iri, VCARD.fn, name)
        b.add(iri, VCARD["given-name"], row.first_name)
        b.add(iri, VCARD["family-name"], row.last_name)
        b.add(iri, VCARD.role, row.role)
        if row.email and "@" in row.email and " " not in row.email.strip():
            b.add(iri, VCARD.hasEmail, URIRef("mailto:" + row.email.strip()))
        b.add(iri, VCARD["organization-name"], row.juristic_person)
        b.add(iri, VCARD["organization-unit"], row.department)
        orcid = (row.orcid or "").strip().removeprefix("https://orcid.org/")
        if orcid:
            b.add(iri, IB.orcid, URIRef("https://orcid.org/" + orcid))
