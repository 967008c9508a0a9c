"""The catalogue level as FHIR: the juristic person, the biobank and its collections as
Organizations, and each collection as the Group MIABIS on FHIR models it.

MIABIS on FHIR (default): ``miabis-juristic-person``, ``miabis-biobank`` (``partOf`` the
juristic person), ``miabis-collection-organization`` (``partOf`` the biobank) and the
``miabis-collection`` Group (``managingEntity`` the collection Organization; characteristics
age range, sex, storage temperature, material type, diagnosis; ``member`` its donors'
Patients and, in the ``miabis-member-entity-extension``, its samples' Specimens).
bbmri.de: the ``Biobank`` and ``Collection`` Organizations, with the same Group beside them
(bbmri.de has no profile for a collection's donor descriptors) coded with bbmri.de codes.
A software collection is no bbmri.de Collection (``fhir_collection_kinds.csv``): it goes out
as a plain Organization.

Declared and derived descriptors are kept apart. The Group's characteristics say what the
collection holds, as the catalogue and the Directory show it: the descriptors derived from
its donors and samples, or the declared ones while nothing is derived (the age range is the
declared one: the derived range rests on full birth dates, which the export does not carry).
What the registration declared goes, as exact MIABIS terms, in our own
``collection-declared-descriptors`` extension of the collection Organization, so an import
of our Bundle stores declared as declared and derives the rest again from the rows.

Collection types and data categories are always written as their Directory ids in the
bbmri.de ``CollectionType`` and ``DataCategory`` extensions, which MIABIS on FHIR lacks; what
neither IG carries (kind, access, software, contact ids) goes in our own extensions
(``https://imaging-biobank.org/fhir/StructureDefinition/...``), so the import gets back
every MIABIS attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from imaging_biobank.export import fhir_terms
from imaging_biobank.export.fhir_bundle import Problem, reference
from imaging_biobank.export.fhir_context import CollectionInfo, Context, T
from imaging_biobank.vocab import catalog

ext = fhir_terms.ext


def _concept(system_url: str, code: str, text: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"coding": [fhir_terms.coding(system_url, code)]}
    if text:
        found["text"] = text
    return found


def _parts(name: str, row: Any) -> list[dict[str, Any]]:
    """The parts of one of our complex extensions from a database row (``fhir_terms.parts``)."""
    found = []
    for part in fhir_terms.parts(name):
        value = getattr(row, part["column"])
        if value is not None and value != "":
            found.append({"url": part["url"], part["value"]: value})
    return found


def country_code(ctx: Context, country_id: int | None) -> str | None:
    """The ISO 3166 alpha-2 code of a country row (None when there is none)."""
    row = ctx.terms.get("country", country_id)
    return row.code if row else None


def contact(ctx: Context, row: Any, purpose: dict[str, str] | None) -> dict[str, Any]:
    """An Organization.contact from a MIABIS contact information row (not a donor: names
    and addresses of contact persons are what the Directory publishes)."""
    found: dict[str, Any] = {
        "extension": [
            {
                "url": fhir_terms.own("extensions", "contact-details"),
                "extension": _parts("contact-details", row),
            }
        ]
    }
    concept: dict[str, Any] = {}
    if purpose:
        concept["coding"] = [purpose]
    if row.role:
        concept["text"] = row.role
    if concept:
        found["purpose"] = concept
    name: dict[str, Any] = {}
    if row.last_name:
        name["family"] = row.last_name
    if row.first_name:
        name["given"] = [row.first_name]
    if name:
        found["name"] = name
    telecom = [
        {"system": system, "value": value}
        for system, value in (("email", row.email), ("phone", row.phone))
        if value
    ]
    if telecom:
        found["telecom"] = telecom
    address: dict[str, Any] = {}
    if row.address:
        address["line"] = [row.address]
    if row.city:
        address["city"] = row.city
    if row.zip:
        address["postalCode"] = row.zip
    code = country_code(ctx, row.country_id)
    if code:
        address["country"] = code
    if address:
        found["address"] = address
    return found


def _contacts(ctx: Context, rows: list[Any], biobank: bool) -> list[dict[str, Any]]:
    """bbmri.de wants a head (ADMIN) and a contact (RESEARCH) slice on a biobank; MIABIS has
    one contact (2.0-07), so under bbmri.de it fills both."""
    if ctx.fam.key != "bbmri-de":
        return [contact(ctx, r, None) for r in rows]
    admin = fhir_terms.coding(fhir_terms.system("contact-entity-type"), "ADMIN")
    research = fhir_terms.coding(ctx.fam.system("contact-type"), "RESEARCH")
    found = [contact(ctx, r, research) for r in rows]
    if biobank and rows:
        found.insert(0, contact(ctx, rows[0], admin))
    return found


def _contact_rows(ctx: Context, ids: list[int]) -> list[Any]:
    if not ids:
        return []
    ci = T["contact_information"]
    rows = ctx.conn.execute(select(ci).where(ci.c.id.in_(ids))).all()
    return sorted(rows, key=lambda r: str(r.identifier))


def _organization(
    ctx: Context,
    claim: str | None,
    extensions: list[dict[str, Any]],
    row: Any,
    part_of: dict[str, str],
    contacts: list[dict[str, Any]],
) -> dict[str, Any]:
    """A biobank's or collection's Organization: the profile it claims, its extensions, its
    BBMRI-ERIC id, name, acronym, web site, the biobank's country, what it is part of and
    its contacts (``row`` is the biobank or collection row)."""
    resource: dict[str, Any] = {"resourceType": "Organization"}
    if claim:
        resource["meta"] = {"profile": [claim]}
    resource |= {
        "extension": extensions,
        "identifier": [{"system": fhir_terms.system("bbmri-eric-id"), "value": row.identifier}],
        "active": True,
        "name": row.name,
    }
    if row.acronym:
        resource["alias"] = [row.acronym]
    if row.url:
        resource["telecom"] = [{"system": "url", "value": row.url}]
    resource["address"] = [{"country": ctx.country}]
    resource["partOf"] = part_of
    if contacts:
        resource["contact"] = contacts
    return resource


def _parents_first(ctx: Context) -> list[tuple[CollectionInfo, Any]]:
    """The export's collections with their rows, each parent collection before its
    children (a reference points only at what is written before it), else by id."""
    c = T["collection"]
    rows = {
        int(r.id): r
        for r in ctx.conn.execute(select(c).where(c.c.id.in_([i.id for i in ctx.collections])))
    }
    pending = list(ctx.collections)
    ordered: list[tuple[CollectionInfo, Any]] = []
    while pending:
        waiting = {i.id for i in pending}
        ready = [i for i in pending if rows[i.id].parent_collection_id not in waiting]
        ready = ready or pending  # a cycle cannot be registered; never loop on one
        ordered += [(i, rows[i.id]) for i in ready]
        pending = [i for i in pending if i not in ready]
    return ordered


def write_organizations(ctx: Context, biobank: Any) -> None:
    """The juristic person, the biobank and every collection of the export as Organizations
    (whatever points at one that is refused is refused with it)."""
    fam, conn = ctx.fam, ctx.conn
    jp = conn.execute(
        select(T["juristic_person"]).where(T["juristic_person"].c.id == biobank.juristic_person_id)
    ).one()
    person: dict[str, Any] = {"resourceType": "Organization", "active": True, "name": jp.name}
    if fam.has("profile", "juristic-person"):
        person["meta"] = {"profile": [fam.profile("juristic-person")]}
    if jp.url:
        person["telecom"] = [{"system": "url", "value": jp.url}]
    code = country_code(ctx, jp.country_id)
    if code:
        person["address"] = [{"country": code}]
    ctx.writer.add(person, f"juristic-person|{jp.name}", f"juristic person {jp.name!r}")
    extensions = []
    if biobank.description:
        extensions.append(ext(fam.extension("description"), "valueString", biobank.description))
    extensions.append(ext(fam.extension("juristic-person"), "valueString", jp.name))
    contacts = _contacts(
        ctx, _contact_rows(ctx, [biobank.contact_id] if biobank.contact_id else []), True
    )
    resource = _organization(
        ctx,
        fam.profile("biobank"),
        extensions,
        biobank,
        reference("Organization", f"juristic-person|{jp.name}", jp.name),
        contacts,
    )
    ctx.writer.add(resource, f"biobank|{biobank.identifier}", f"biobank {biobank.identifier}")
    for info, row in _parents_first(ctx):
        _collection_organization(ctx, info, row, biobank.identifier)


def _terms_of(ctx: Context, table: str, ids: list[int]) -> list[catalog.Term]:
    found = [ctx.terms.get(table, i) for i in ids]
    return sorted((r.term for r in found if r and r.term), key=lambda t: (t.vocabulary, t.code))


def _collection_organization(
    ctx: Context, info: CollectionInfo, c: Any, biobank_identifier: str
) -> None:
    fam, conn, bbmri = ctx.fam, ctx.conn, fhir_terms.family("bbmri-de")
    where = f"collection {info.identifier}"
    extensions: list[dict[str, Any]] = []
    if c.description:
        extensions.append(ext(fam.extension("description"), "valueString", c.description))
    kind_system = fhir_terms.own("code_systems", "collection-kind")
    extensions.append(
        ext(
            fhir_terms.own("extensions", "collection-kind"),
            "valueCoding",
            {"system": kind_system, "code": info.kind},
        )
    )
    owned = ctx.links(
        "collection_collection_category", "collection", "collection_category", [info.id]
    )
    types = _terms_of(ctx, "collection_category", owned.get(info.id, []))
    owned = ctx.links("collection_data_category", "collection", "data_category", [info.id])
    categories = _terms_of(ctx, "data_category", owned.get(info.id, []))
    if fam.key == "miabis":
        designs = [fhir_terms.collection_design(t) for t in types]
        for name, codes in (
            ("dataset-type", [fhir_terms.kind_dataset_code(info.kind)]),
            ("collection-design", designs),
        ):
            extensions += [
                ext(fam.extension(name), "valueCodeableConcept", _concept(fam.system(name), code))
                for code in dict.fromkeys(codes)
                if code
            ]
    for name, found in (("collection-type", types), ("data-category", categories)):
        for t in found:
            extensions.append(
                ext(
                    bbmri.extension(name),
                    "valueCodeableConcept",
                    _concept(bbmri.system(name), t.get("directory_id"), t.label),
                )
            )
    if c.parent_collection_id is not None:
        parent = conn.execute(
            select(T["collection"].c.identifier).where(
                T["collection"].c.id == c.parent_collection_id
            )
        ).scalar_one()
        target = (
            reference("Organization", f"collection|{parent}", parent)
            if ctx.writer.has("Organization", f"collection|{parent}")
            else {"identifier": {"system": fhir_terms.system("bbmri-eric-id"), "value": parent}}
        )
        extensions.append(ext(bbmri.extension("parent-collection"), "valueReference", target))
    parts = _parts("collection-access", c)
    if parts:
        extensions.append(
            {"url": fhir_terms.own("extensions", "collection-access"), "extension": parts}
        )
    if info.kind == "image":
        url = conn.execute(
            select(T["image_collection"].c.dicomweb_url).where(
                T["image_collection"].c.id == info.id
            )
        ).scalar()
        if url:
            extensions.append(ext(fhir_terms.own("extensions", "dicomweb-url"), "valueUrl", url))
    if info.kind == "software_source_code":
        s = conn.execute(
            select(T["software_source_code"]).where(T["software_source_code"].c.id == info.id)
        ).one()
        parts = _parts("software", s)
        if parts:
            extensions.append({"url": fhir_terms.own("extensions", "software"), "extension": parts})
    declared = _declared(ctx, info)
    if declared:
        extensions.append(
            {"url": fhir_terms.own("extensions", "collection-declared"), "extension": declared}
        )
    claim: str | None = fam.profile("collection-organization")
    if (
        fam.key == "bbmri-de"
        and fhir_terms.collection_kind(info.kind)["bbmri_de_collection"] != "yes"
    ):
        claim = None
        ctx.notices.append(
            Problem(
                where,
                f"a {info.kind} collection is no {fam.title} Collection (a biobank's collection"
                " of samples or data): written as a plain Organization",
            )
        )
    contact_ids = ctx.links(
        "collection_contact_information", "collection", "contact_information", [info.id]
    )
    contacts = _contacts(ctx, _contact_rows(ctx, contact_ids.get(info.id, [])), False)
    part_of = reference("Organization", f"biobank|{biobank_identifier}", biobank_identifier)
    resource = _organization(ctx, claim, extensions, c, part_of, contacts)
    ctx.writer.add(resource, f"collection|{info.identifier}", where)


# ---- declared and derived descriptors ------------------------------------------------------

# the descriptor link tables: (link table, owner column, target column) per vocabulary table
DESCRIPTORS = {
    "sex": ("collection_sex", "collection"),
    "disease": ("collection_disease", "collection"),
    "material_type": ("sample_tissue_collection_material_type", "sample_tissue_collection"),
    "storage_temperature": (
        "sample_tissue_collection_storage_temperature",
        "sample_tissue_collection",
    ),
}


def _descriptors(ctx: Context, table: str, collection_id: int) -> dict[str, list[int]]:
    """A collection's descriptor rows of one vocabulary table, by origin."""
    link_name, owner = DESCRIPTORS[table]
    link = T[link_name]
    rows = ctx.conn.execute(
        select(link.c[f"{table}_id"], link.c.origin).where(link.c[f"{owner}_id"] == collection_id)
    ).all()
    found: dict[str, list[int]] = {"declared": [], "derived": []}
    for target, origin in rows:
        found.setdefault(str(origin), []).append(int(target))
    return found


def _effective(ctx: Context, table: str, collection_id: int) -> list[int]:
    """What the collection shows: derived descriptors once there are any, else declared."""
    found = _descriptors(ctx, table, collection_id)
    return found["derived"] or found["declared"]


def _declared(ctx: Context, info: CollectionInfo) -> list[dict[str, Any]]:
    """The parts of our collection-declared extension: each declared descriptor as its exact
    MIABIS term (a diagnosis as its ICD-10 or ORPHA coding)."""
    parts: list[dict[str, Any]] = []
    for part in fhir_terms.parts("collection-declared"):
        table = part["table"]
        if table in ("material_type", "storage_temperature") and info.kind != "sample_tissue":
            continue
        ids = _descriptors(ctx, table, info.id)["declared"]
        if table == "disease":
            codings = [disease_coding(ctx, i) for i in ids]
            values = sorted((c for c in codings if c), key=lambda c: (c["system"], c["code"]))
        else:
            values = [fhir_terms.vocabulary_coding(t) for t in _terms_of(ctx, table, ids)]
        parts += [{"url": part["url"], part["value"]: v} for v in values]
    return parts


def disease_coding(ctx: Context, disease_id: int | None) -> dict[str, str] | None:
    """The coding of a diagnosis: ICD-10 (WHO) or an ORPHAcode."""
    row = ctx.terms.get("disease", disease_id)
    if row is None:
        return None
    if row.vocabulary == "disease.orphanet":
        found = {"system": fhir_terms.system("orpha"), "code": row.code.split(":", 1)[-1]}
    else:
        found = {"system": fhir_terms.system("icd-10"), "code": row.code}
    if row.label and row.label != row.code:
        found["display"] = row.label
    return found


def diagnosis_codings(
    ctx: Context, ids: list[int], where: str, slot: str, allowed: tuple[str, ...] = ("icd-10",)
) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """Diagnoses as codings, in code order, split by what the profile's ``slot`` takes
    (``allowed`` systems) and what goes in our own ``diagnosis`` extension instead (ORPHA
    codes), with a notice."""
    codings = sorted(
        (c for c in (disease_coding(ctx, i) for i in ids) if c),
        key=lambda c: (c["system"], c["code"]),
    )
    fits = {fhir_terms.system(name) for name in allowed}
    kept = [c for c in codings if c["system"] in fits]
    own = [
        ext(fhir_terms.own("extensions", "diagnosis"), "valueCoding", c)
        for c in codings
        if c["system"] not in fits
    ]
    for item in own:
        ctx.notices.append(
            Problem(
                where,
                f"{item['valueCoding']['system']}#{item['valueCoding']['code']} goes in"
                f" {item['url']}: {slot} takes {', '.join(allowed)} only",
            )
        )
    return kept, own


def age_quantity(ctx: Context, value: float, unit_id: int | None) -> dict[str, Any]:
    """An age as a UCUM Quantity (the MIABIS age unit's UCUM code)."""
    row = ctx.terms.get("age_unit", unit_id)
    found: dict[str, Any] = {"value": value}
    if row is not None:
        found["unit"] = row.label.lower()
        ucum = row.term.get("ucum_code") if row.term else ""
        if ucum:
            found["system"] = fhir_terms.system("ucum")
            found["code"] = ucum
    return found


def _characteristic(code: str, key: str, value: Any) -> dict[str, Any]:
    miabis = fhir_terms.family("miabis")
    return {
        "code": _concept(miabis.system("characteristic"), code),
        key: value,
        "exclude": False,
    }


def _coded(
    ctx: Context,
    where: str,
    found: list[catalog.Term],
    system_url: str,
    code_of: Callable[[catalog.Term], str],
) -> list[dict[str, Any]]:
    """One CodeableConcept per term: the profile's code with the exact term as its
    translation, in code order; a term without a code is reported."""
    concepts = []
    for item in found:
        code = code_of(item)
        if not code:
            ctx.problems.append(
                Problem(where, f"{item.code!r} has no {ctx.fam.title} code; left out")
            )
            continue
        coding = fhir_terms.coding(system_url, code)
        concepts.append(
            (
                code,
                item.vocabulary,
                item.code,
                {"coding": [coding, fhir_terms.vocabulary_coding(item)]},
            )
        )
    return [c[3] for c in sorted(concepts, key=lambda c: c[:3])]


def _sample_characteristics(ctx: Context, info: CollectionInfo, where: str) -> list[Any]:
    """The storage temperature and material type characteristics of a sample collection."""
    fam, found = ctx.fam, []
    temps = _terms_of(ctx, "storage_temperature", _effective(ctx, "storage_temperature", info.id))
    for concept in _coded(
        ctx,
        where,
        temps,
        fam.system("storage-temperature"),
        lambda t: fhir_terms.storage_temperature_code(fam, t),
    ):
        found.append(_characteristic("StorageTemperature", "valueCodeableConcept", concept))
    materials = _terms_of(ctx, "material_type", _effective(ctx, "material_type", info.id))
    for concept in _coded(
        ctx,
        where,
        materials,
        fhir_terms.material_system(fam, "collection"),
        lambda t: fhir_terms.material_code(fam, t, "collection"),
    ):
        found.append(_characteristic("MaterialType", "valueCodeableConcept", concept))
    return found


def write_groups(ctx: Context) -> None:
    """One Group per collection, after the Patients and Specimens it lists."""
    fam, miabis = ctx.fam, fhir_terms.family("miabis")
    for info in ctx.collections:
        c = ctx.conn.execute(select(T["collection"]).where(T["collection"].c.id == info.id)).one()
        where = f"collection {info.identifier} (Group)"
        characteristic: list[dict[str, Any]] = []
        if c.age_low is not None or c.age_high is not None:
            value: dict[str, Any] = {}
            if c.age_low is not None:
                value["low"] = age_quantity(ctx, c.age_low, c.age_unit_id)
            if c.age_high is not None:
                value["high"] = age_quantity(ctx, c.age_high, c.age_unit_id)
            characteristic.append(_characteristic("Age", "valueRange", value))
        for sex in _terms_of(ctx, "sex", _effective(ctx, "sex", info.id)):
            codings = [fhir_terms.coding(fhir_terms.system("gender"), fhir_terms.gender(sex))]
            codings.append(fhir_terms.coding(miabis.system("sex"), fhir_terms.miabis_sex_code(sex)))
            characteristic.append(
                _characteristic("Sex", "valueCodeableConcept", {"coding": codings})
            )
        if info.kind == "sample_tissue":
            characteristic += _sample_characteristics(ctx, info, where)
        diagnoses, own = diagnosis_codings(
            ctx,
            _effective(ctx, "disease", info.id),
            where,
            "MIABIS on FHIR's diagnosis characteristic (miabis-collection)",
        )
        for coding in diagnoses:
            characteristic.append(
                _characteristic("Diagnosis", "valueCodeableConcept", {"coding": [coding]})
            )
        patients = sorted(
            p for p in (ctx.patient(d) for d in ctx.members.get(info.id, set())) if p is not None
        )
        extensions: list[dict[str, Any]] = [
            ext(miabis.extension("number-of-subjects"), "valueInteger", len(patients)),
            *own,
        ]
        for key in ctx.specimens.get(info.id, []):
            extensions.append(
                ext(miabis.extension("member-entity"), "valueReference", reference("Specimen", key))
            )
        group: dict[str, Any] = {"resourceType": "Group"}
        if fam.key == "miabis":
            group["meta"] = {"profile": [fam.profile("collection")]}
        group |= {
            "extension": extensions,
            "identifier": [
                {"system": fhir_terms.system("bbmri-eric-id"), "value": info.identifier}
            ],
            "active": True,
            "type": "person",
            "actual": True,
            "name": c.name,
            "quantity": len(patients),
            "managingEntity": reference("Organization", f"collection|{info.identifier}", c.name),
        }
        if characteristic:
            group["characteristic"] = characteristic
        if patients:
            group["member"] = [{"entity": reference("Patient", p)} for p in patients]
        ctx.writer.add(group, f"collection-group|{info.identifier}", where)
