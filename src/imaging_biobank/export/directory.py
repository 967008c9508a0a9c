"""``export directory``: the biobank as the BBMRI-ERIC Directory imports it.

Two forms of the same content:

- **EMX1** (the Directory until 2023, MOLGENIS EMX1): one ``.xlsx`` workbook with the sheets
  ``eu_bbmri_eric_persons``, ``eu_bbmri_eric_networks``, ``eu_bbmri_eric_biobanks`` and
  ``eu_bbmri_eric_collections`` (``directory_emx1.py``);
- **EMX2** (the current Directory, MOLGENIS EMX2, schema ``ERIC``): CSV tables ``Persons``,
  ``Networks``, ``Biobanks``, ``Collections`` and ``CollectionFacts`` in a folder or a
  ``.zip`` (``directory_emx2.py``, facts in ``directory_facts.py``).

Everything is read from the database and aggregate-level only: no donor pseudonym, sample
id or DICOM UID is written. Coded values are the Directory's ids, taken from the shipped
vocabulary tables' ``directory_id`` column (or that of the term a term ``maps_to``), never
retyped: sex, age units, data categories, collection types, materials, storage
temperatures, ``urn:miriam:icd:`` diagnoses, countries, and the imaging fields
``body_part_examined``, ``imaging_modality`` and ``image_dataset_type`` derived from the
collection's series. ``order_of_magnitude`` comes from the collection's item count (samples;
images, i.e. DICOM instances, of an image collection; records or results of the other
kinds). Every image collection lists ``IMAGING_DATA`` among its data categories (added,
with a note, when its registration lacks it).

Before anything is written the tables are checked against the Directory's rules
(``directory_rules.py``); a broken rule raises ``DirectoryExportError`` listing table, row
id, attribute and reason, and no file is created or changed.

Filled by rule where our model has no such attribute (said in the notes of every export):
``contact_priority`` (required) is 1 for a biobank, and for a collection 2 when it has its
own contact person (so it is asked first) or 1 when its biobank's contact stands in;
``partner_charter_signed`` (required) is false: signing the BBMRI-ERIC partner charter is
not something this database records. Software collections are not Directory collections
and are left out, as are collections that hold nothing yet (no items, no donors).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple

from sqlalchemy import Connection, func, select

from imaging_biobank.db._schema import metadata
from imaging_biobank.db.lookup import FoundCollection
from imaging_biobank.export.directory_facts import FactUnit
from imaging_biobank.export.directory_rules import (
    COUNTRIES,
    ORPHA,
    DirectoryExportError,
    Problem,
    Row,
    age_range,
    lookup_ids,
    order_of_magnitude,
)
from imaging_biobank.export.scope import export_scope
from imaging_biobank.export.source import (
    Series,
    biobanks_of,
    collection_donors,
    image_series,
    read_terms,
    years_between,
)

T = metadata.tables
Form = Literal["emx1", "emx2"]
FORMS: Final = ("emx1", "emx2")
IMAGING_DATA: Final = "IMAGING_DATA"  # the Directory data_types id every image collection has
SOFTWARE: Final = "software_source_code"
YEARS: Final = "Years"  # the MIABIS age unit code derived ages are in (catalogue.descriptors)


@dataclass(frozen=True)
class TermRef:
    """A vocabulary term as the export sees it: its code, and its Directory id (its own,
    or that of the term it ``maps_to``; None when the Directory has no such value)."""

    code: str
    directory_id: str | None

    def emx2_id(self) -> str | None:
        """The id in the current Directory, which also lists ORPHA codes."""
        if self.directory_id:
            return self.directory_id
        return self.code if ORPHA.match(self.code) else None


@dataclass
class CollectionContent:
    """One exported collection: its EMX1 row and what only the EMX2 form carries."""

    row: Row
    kind: str
    donors: int
    diseases: list[TermRef]
    units: list[FactUnit]


@dataclass
class DirectoryContent:
    """Everything an export writes, before it is shaped into one form."""

    biobanks: list[Row]
    collections: list[CollectionContent]
    persons: list[Row]
    person_roles: dict[str, str | None]
    extra_countries: dict[str, str]  # countries beyond the 2017 list: id -> name
    diseases: frozenset[str]  # the Directory's ICD-10 disease ids
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DirectoryResult:
    """What an export wrote: where, in which form, rows per table, and notes."""

    path: Path
    form: Form
    counts: dict[str, int]
    notes: list[str]


class DirectoryUsageError(ValueError):
    """The export cannot run as asked (form and file name disagree, nothing to export)."""


def resolve_form(out: Path, form: str | None) -> tuple[Form, Literal["xlsx", "folder", "zip"]]:
    """The form and container an output path asks for: ``.xlsx`` -> EMX1 workbook; ``.zip``
    -> EMX2 zip; anything else -> EMX2 folder. An explicit ``form`` must agree."""
    suffix = out.suffix.lower()
    implied: Form = "emx1" if suffix == ".xlsx" else "emx2"
    if form is not None and form not in FORMS:
        raise DirectoryUsageError(f"--form {form!r}: expected one of {', '.join(FORMS)}")
    chosen: Form = implied if form is None else ("emx1" if form == "emx1" else "emx2")
    if chosen == "emx1" and suffix != ".xlsx":
        raise DirectoryUsageError(f"{out}: the EMX1 form is a workbook: give a .xlsx file name")
    if chosen == "emx2" and suffix == ".xlsx":
        raise DirectoryUsageError(
            f"{out}: the EMX2 form is CSV tables: give a folder or a .zip file name"
        )
    if chosen == "emx1":
        return chosen, "xlsx"
    return chosen, "zip" if suffix == ".zip" else "folder"


def export_directory(
    conn: Connection,
    out: Path,
    identifiers: Sequence[str] = (),
    *,
    form: str | None = None,
    today: dt.date | None = None,
) -> DirectoryResult:
    """Write the collections named by ``identifiers`` (all when none) with their biobanks
    and contact persons to ``out`` in the Directory's EMX1 or EMX2 form (see
    ``resolve_form``). Checks every rule first: ``DirectoryExportError`` (nothing written)
    when one breaks; ``DirectoryUsageError`` when the export cannot run as asked;
    ``CollectionLookupError`` for an unknown collection."""
    from imaging_biobank.export.directory_emx1 import emx1_tables, write_workbook
    from imaging_biobank.export.directory_emx2 import emx2_tables, write_csv_tables

    chosen, container = resolve_form(out, form)
    content = gather(conn, identifiers)
    if chosen == "emx1":
        tables, notes = emx1_tables(content)
        write = write_workbook
    else:
        date = (today or dt.date.today()).isoformat()
        tables, notes = emx2_tables(content, last_update=date)
        write = write_csv_tables
    write(tables, out, container)
    counts = {name: len(rows) for name, rows in tables.items()}
    return DirectoryResult(out, chosen, counts, content.notes + notes)


def atomic_target(out: Path) -> Path:
    """A temporary path beside ``out`` (same file system), for a write that replaces
    ``out`` only once it is complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(handle)
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)  # as an ordinary new file, not mkstemp's 0600
    return Path(name)


# -- reading the database -------------------------------------------------------------------


def terms(conn: Connection, table: str, ids: set[int]) -> dict[int, TermRef]:
    """The terms of one vocabulary table by id, each with its Directory id or that of the
    term it maps to."""
    return {
        i: TermRef(t.code, t.value("directory_id"))
        for i, t in read_terms(conn, table, ids, ("directory_id",)).items()
    }


def _links(
    conn: Connection, link: str, owner: str, target: str, owners: list[int]
) -> dict[int, dict[str, set[int]]]:
    """owner id -> origin ("declared", "derived", or "" for plain links) -> target ids."""
    t = T[link]
    origin = t.c.origin if "origin" in t.c else None
    columns = [t.c[owner], t.c[target]] + ([origin] if origin is not None else [])
    out: dict[int, dict[str, set[int]]] = {}
    for r in conn.execute(select(*columns).where(t.c[owner].in_(owners))):
        key = str(r[2]) if origin is not None else ""
        out.setdefault(int(r[0]), {}).setdefault(key, set()).add(int(r[1]))
    return out


def _shown(links: dict[str, set[int]]) -> set[int]:
    """What a collection shows: its derived links once there are any, else declared ones."""
    return links.get("derived") or links.get("declared") or links.get("") or set()


def _directory_ids(
    refs: Sequence[TermRef], what: str, collection: str, notes: list[str]
) -> list[str]:
    """The Directory ids of terms, sorted; a note names each term the Directory lacks."""
    found = sorted({r.directory_id for r in refs if r.directory_id})
    for r in sorted({r.code for r in refs if not r.directory_id}):
        notes.append(f"{collection}: {what} {r!r} has no Directory id: left out")
    return found


def gather(conn: Connection, identifiers: Sequence[str] = ()) -> DirectoryContent:
    """Read what the Directory export writes: the collections in scope (software and empty
    collections left out, with a note), their biobanks and contact persons, their units
    for the facts, and the Directory ids of every coded value."""
    scope = export_scope(conn, identifiers)
    notes: list[str] = []
    candidates = []
    for found in scope.collections:
        if found.kind == SOFTWARE:
            notes.append(
                f"{found.identifier}: not exported: software is not a Directory collection"
            )
        else:
            candidates.append(found)
    kinds = {c.id: c.kind for c in candidates}
    series = image_series(conn, [c.id for c in candidates if c.kind == "image"])
    units, donors = _units(conn, candidates, series)
    chosen = []
    for found in candidates:
        if not units.get(found.id) and not donors.get(found.id):
            notes.append(
                f"{found.identifier}: not exported: it holds no data yet (no items, no donors)"
            )
        else:
            chosen.append(found)
    if not chosen:
        why = "; ".join(notes) or "no collection is registered"
        raise DirectoryUsageError(f"nothing to export to the Directory: {why}")
    ids = [c.id for c in chosen]
    c = T["collection"]
    collection_rows = {
        int(r.id): r
        for r in conn.execute(select(c).where(c.c.id.in_(ids)).order_by(c.c.identifier))
    }
    people = _biobanks_and_persons(conn, collection_rows)
    disease_ids = frozenset(
        str(v)
        for v in conn.execute(
            select(T["disease"].c.directory_id)
            .join(T["vocabulary"], T["vocabulary"].c.id == T["disease"].c.vocabulary_id)
            .where(
                T["vocabulary"].c.name == "disease.icd-10",
                T["disease"].c.directory_id.is_not(None),
            )
        ).scalars()
    )
    content = DirectoryContent(
        biobanks=people.biobanks,
        collections=[],
        persons=people.persons,
        person_roles=people.roles,
        extra_countries=people.extra_countries,
        diseases=disease_ids,
        notes=notes,
    )
    content.collections = _collections(
        conn, collection_rows, kinds, series, units, donors, people, notes
    )
    return content


@dataclass(frozen=True)
class _BiobankInfo:
    identifier: str
    country: str | None
    contact: str | None


@dataclass(frozen=True)
class _People:
    """The biobanks of an export and the contact persons it refers to."""

    biobanks: list[Row]
    persons: list[Row]
    roles: dict[str, str | None]  # person id -> role (EMX2 Persons.role)
    extra_countries: dict[str, str]  # beyond the Directory's 2017 countries: id -> name
    biobank_info: dict[int, _BiobankInfo]
    collection_contacts: dict[int, str]  # collection id -> its own contact person's id


def _biobanks_and_persons(conn: Connection, collections: dict[int, Any]) -> _People:
    """The biobanks of the collections, and the persons they and the collections name as
    contacts (a collection's: the first of its contacts by id), with the Directory ids of
    their countries."""
    ci = T["contact_information"]
    rows = biobanks_of(conn, collections)
    contact_links = _links(
        conn,
        "collection_contact_information",
        "collection_id",
        "contact_information_id",
        list(collections),
    )
    contact_ids = {int(r.contact_id) for r in rows if r.contact_id is not None}
    for links in contact_links.values():
        contact_ids |= _shown(links)
    contacts = {
        int(r.id): r for r in conn.execute(select(ci).where(ci.c.id.in_(sorted(contact_ids))))
    }
    country_ids = {int(r.country_id) for r in rows} | {
        int(p.country_id) for p in contacts.values() if p.country_id is not None
    }
    countries = terms(conn, "country", country_ids)
    labels = {
        int(r.id): str(r.label)
        for r in conn.execute(
            select(T["country"].c.id, T["country"].c.label).where(
                T["country"].c.id.in_(sorted(country_ids))
            )
        )
    }
    known = lookup_ids()[COUNTRIES]
    extra: dict[str, str] = {}

    def country(country_id: int | None) -> str | None:
        if country_id is None:
            return None
        ref = countries[int(country_id)]
        if ref.directory_id and ref.directory_id not in known:
            extra[ref.directory_id] = labels[int(country_id)]
        return ref.directory_id

    biobanks: list[Row] = []
    info: dict[int, _BiobankInfo] = {}
    for r in rows:
        contact = contacts[int(r.contact_id)].identifier if r.contact_id is not None else None
        info[int(r.id)] = _BiobankInfo(str(r.identifier), country(r.country_id), contact)
        biobanks.append(
            {
                "id": r.identifier,
                "name": r.name,
                "acronym": r.acronym,
                "description": r.description,
                "url": r.url,
                "juridical_person": r.juristic_person,
                "country": info[int(r.id)].country,
                "contact": contact,
                "contact_priority": 1,
                "partner_charter_signed": False,
            }
        )
    used = {int(r.contact_id) for r in rows if r.contact_id is not None}
    own: dict[int, str] = {}
    for collection_id, links in contact_links.items():
        if _shown(links):
            chosen = min(_shown(links), key=lambda i: str(contacts[i].identifier))
            own[collection_id] = str(contacts[chosen].identifier)
            used.add(chosen)
    people = sorted((contacts[i] for i in used), key=lambda p: str(p.identifier))
    roles = {str(p.identifier): p.role for p in people}
    persons: list[Row] = [
        {
            "id": p.identifier,
            "first_name": p.first_name,
            "last_name": p.last_name,
            "email": p.email,
            "phone": p.phone,
            "address": p.address,
            "zip": p.zip,
            "city": p.city,
            "country": country(p.country_id),
        }
        for p in people
    ]
    return _People(biobanks, persons, roles, extra, info, own)


class _Item(NamedTuple):
    """One item (or group of a donor's items) of a collection, before its values are coded."""

    collection: int
    donor: int
    weight: int
    age_years: float | None = None
    material: int | None = None
    diseases: set[int] | None = None  # the sample's own diagnoses (None: the donor's)


def _image_items(series: Sequence[Series]) -> Iterator[_Item]:
    """One item per series, weighing its images (DICOM instances); age at its study."""
    for s in series:
        yield _Item(s.collection_id, s.donor_id, s.instances, s.patient_age_years)


def _sample_items(
    conn: Connection, collections: list[int], births: dict[int, str | None]
) -> Iterator[_Item]:
    """One item per sample: its material, its diagnoses, the donor's age at its creation."""
    sm, sd = T["sample"], T["sample_disease"]
    diagnoses: dict[int, set[int]] = {}
    for r in conn.execute(
        select(sd.c.sample_id, sd.c.disease_id)
        .join(sm, sm.c.id == sd.c.sample_id)
        .where(sm.c.collection_id.in_(collections))
    ):
        diagnoses.setdefault(int(r.sample_id), set()).add(int(r.disease_id))
    for sample in conn.execute(
        select(
            sm.c.id,
            sm.c.collection_id,
            sm.c.sample_donor_id,
            sm.c.material_type_id,
            sm.c.creation_date,
        ).where(sm.c.collection_id.in_(collections))
    ):
        yield _Item(
            int(sample.collection_id),
            int(sample.sample_donor_id),
            1,
            years_between(births.get(int(sample.sample_donor_id)), sample.creation_date),
            int(sample.material_type_id),
            diagnoses.get(int(sample.id)),
        )


def _record_items(conn: Connection, table: str, collections: list[int]) -> Iterator[_Item]:
    """One item per donor of a collection of records or results, weighing their number."""
    t = T[table]
    for r in conn.execute(
        select(t.c.collection_id, t.c.sample_donor_id, func.count().label("n"))
        .where(t.c.collection_id.in_(collections))
        .group_by(t.c.collection_id, t.c.sample_donor_id)
    ):
        yield _Item(int(r.collection_id), int(r.sample_donor_id), int(r.n))


def _units(
    conn: Connection, collections: Sequence[FoundCollection], series: Sequence[Series]
) -> tuple[dict[int, list[FactUnit]], dict[int, set[int]]]:
    """Per collection, the fact units (one per series, sample, or donor's records or
    results; weight 0 for a member donor with no item) and the member donors."""
    donors = collection_donors(conn, collections)
    kinds = {c.id: c.kind for c in collections}

    def of_kind(kind: str) -> list[int]:
        return [cid for cid, k in kinds.items() if k == kind]

    items: list[_Item] = []
    items += _image_items(series)
    for kind, table in (
        ("clinical_variable", "clinical_record"),
        ("molecular_biomarker", "molecular_biomarker_result"),
    ):
        if of_kind(kind) and table in T:
            items += _record_items(conn, table, of_kind(kind))
    everyone = sorted(set().union(set(), *donors.values(), (i.donor for i in items)))
    d, e = T["sample_donor"], T["event"]
    people = {
        int(r.id): r
        for r in conn.execute(
            select(d.c.id, d.c.sex_id, d.c.birth_date).where(d.c.id.in_(everyone))
        )
    }
    if of_kind("sample_tissue"):
        births = {k: v.birth_date for k, v in people.items()}
        # a sample's donor is a member (source.collection_donors): read above
        items += _sample_items(conn, of_kind("sample_tissue"), births)
    sexes = terms(conn, "sex", {int(r.sex_id) for r in people.values()})
    event_diseases: dict[int, set[int]] = {}
    for r in conn.execute(
        select(e.c.sample_donor_id, e.c.disease_id).where(
            e.c.sample_donor_id.in_(everyone), e.c.disease_id.is_not(None)
        )
    ):
        event_diseases.setdefault(int(r.sample_donor_id), set()).add(int(r.disease_id))
    materials = terms(conn, "material_type", {i.material for i in items if i.material})
    disease_terms = terms(
        conn,
        "disease",
        set().union(set(), *event_diseases.values(), *(i.diseases for i in items if i.diseases)),
    )

    def unit(donor: int, item: _Item | None) -> FactUnit:
        diseases = (item.diseases if item else None) or event_diseases.get(donor, set())
        material = item.material if item else None
        return FactUnit(
            donor=donor,
            weight=item.weight if item else 0,
            sex=sexes[int(people[donor].sex_id)].directory_id,
            age_range=age_range(item.age_years if item else None),
            sample_type=materials[material].directory_id if material is not None else None,
            diseases=frozenset(
                v for v in (disease_terms[x].emx2_id() for x in diseases) if v is not None
            ),
        )

    units: dict[int, list[FactUnit]] = {cid: [] for cid in kinds}
    with_items: dict[int, set[int]] = {cid: set() for cid in kinds}
    for item in items:
        with_items[item.collection].add(item.donor)
        units[item.collection].append(unit(item.donor, item))
    for cid in kinds:
        donors[cid] |= with_items[cid]
        units[cid] += [unit(donor, None) for donor in sorted(donors[cid] - with_items[cid])]
    return units, donors


def _series_terms(series: Sequence[Series]) -> dict[str, dict[int, Counter[int]]]:
    """Per imaging field, collection id -> term id -> number of series."""
    out: dict[str, dict[int, Counter[int]]] = {
        "body_part_examined_id": {},
        "modality_id": {},
        "dataset_type_id": {},
    }
    for s in series:
        for column, term in (
            ("body_part_examined_id", s.body_part_id),
            ("modality_id", s.modality_id),
            ("dataset_type_id", s.dataset_type_id),
        ):
            if term is not None:
                out[column].setdefault(s.collection_id, Counter())[term] += 1
    return out


IMAGING_FIELDS: Final = (
    ("body_part_examined", "body_part_examined_id", "body_part_examined", "body part"),
    ("imaging_modality", "modality_id", "modality", "modality"),
    ("image_dataset_type", "dataset_type_id", "dataset_type", "dataset type (SOP class)"),
)
ACCESS: Final = {  # our access columns -> the Directory's, by collection kind
    "image": (
        "image_access_fee",
        "image_joint_projects",
        "image_access_description",
        "image_access_uri",
    ),
    "sample_tissue": (
        "sample_access_fee",
        "sample_access_joint_project",
        "sample_access_description",
        "sample_access_uri",
    ),
    "": (
        "data_access_fee",
        "data_access_joint_project",
        "data_access_description",
        "data_access_uri",
    ),
}


def _collections(
    conn: Connection,
    rows: dict[int, Any],
    kinds: dict[int, str],
    image: Sequence[Series],
    units: dict[int, list[FactUnit]],
    donors: dict[int, set[int]],
    people: _People,
    notes: list[str],
) -> list[CollectionContent]:
    """The collections' EMX1 rows (with what the EMX2 form adds), every coded value as the
    Directory's id; a note for each value the Directory has no id for."""
    ids = list(rows)
    types = _links(
        conn, "collection_collection_category", "collection_id", "collection_category_id", ids
    )
    categories = _links(conn, "collection_data_category", "collection_id", "data_category_id", ids)
    sexes = _links(conn, "collection_sex", "collection_id", "sex_id", ids)
    diseases = _links(conn, "collection_disease", "collection_id", "disease_id", ids)
    tissue = [i for i in ids if kinds[i] == "sample_tissue"]
    materials = _links(
        conn,
        "sample_tissue_collection_material_type",
        "sample_tissue_collection_id",
        "material_type_id",
        tissue,
    )
    temperatures = _links(
        conn,
        "sample_tissue_collection_storage_temperature",
        "sample_tissue_collection_id",
        "storage_temperature_id",
        tissue,
    )
    series = _series_terms([s for s in image if s.collection_id in rows])

    def resolve(table: str, links: dict[int, dict[str, set[int]]]) -> dict[int, list[TermRef]]:
        wanted = {int(cid): _shown(v) for cid, v in links.items()}
        found = terms(conn, table, set().union(*wanted.values()) if wanted else set())
        return {cid: [found[t] for t in sorted(v)] for cid, v in wanted.items()}

    type_refs = resolve("collection_category", types)
    category_refs = resolve("data_category", categories)
    sex_refs = resolve("sex", sexes)
    disease_refs = resolve("disease", diseases)
    material_refs = resolve("material_type", materials)
    temperature_refs = resolve("storage_temperature", temperatures)
    age_units = terms(
        conn,
        "age_unit",
        {int(r.age_unit_id) for r in rows.values() if r.age_unit_id is not None}
        | set(
            conn.execute(select(T["age_unit"].c.id).where(T["age_unit"].c.code == YEARS)).scalars()
        ),
    )
    years_unit = next((r.directory_id for r in age_units.values() if r.code == YEARS), None)
    imaging_refs: dict[str, dict[int, TermRef]] = {
        column: terms(
            conn,
            table,
            set().union(*series.get(column, {}).values()) if series.get(column) else set(),
        )
        for _, column, table, _ in IMAGING_FIELDS
    }
    out: list[CollectionContent] = []
    for cid, r in rows.items():
        name = str(r.identifier)
        kind = kinds[cid]
        biobank = people.biobank_info[int(r.biobank_id)]
        size = sum(u.weight for u in units[cid])
        own_contact = people.collection_contacts.get(cid)
        data_categories = _directory_ids(category_refs.get(cid, []), "data category", name, notes)
        if kind == "image" and IMAGING_DATA not in data_categories:
            data_categories = sorted([*data_categories, IMAGING_DATA])
            notes.append(
                f"{name}: {IMAGING_DATA} added to its data categories (an image collection)"
            )
        parent = None
        if r.parent_collection_id is not None:
            if int(r.parent_collection_id) in rows:
                parent = rows[int(r.parent_collection_id)].identifier
            else:
                notes.append(
                    f"{name}: parent collection not in this export: parent_collection left empty"
                )
        row: Row = {
            "id": name,
            "country": biobank.country,
            "biobank": biobank.identifier,
            "name": r.name,
            "acronym": r.acronym,
            "description": r.description,
            "parent_collection": parent,
            "type": _directory_ids(type_refs.get(cid, []), "collection type", name, notes),
            "data_categories": data_categories,
            "order_of_magnitude": order_of_magnitude(size),
            "size": size,
            "contact": own_contact or biobank.contact,
            "contact_priority": 2 if own_contact else 1,
            "sex": _directory_ids(sex_refs.get(cid, []), "sex", name, notes),
            "diagnosis_available": sorted(
                {d.directory_id for d in disease_refs.get(cid, []) if d.directory_id}
            ),
            **_ages(r, age_units, years_unit),
            "collaboration_commercial": r.collaboration_commercial,
            "collaboration_non_for_profit": r.collaboration_non_for_profit,
        }
        access = ACCESS.get(kind, ACCESS[""])
        for ours, theirs in zip(
            ("access_fee", "access_joint_project", "access_description", "access_uri"),
            access,
            strict=True,
        ):
            row[theirs] = r._mapping[ours]
        if kind == "sample_tissue":
            row["materials"] = _directory_ids(
                material_refs.get(cid, []), "material type", name, notes
            )
            row["storage_temperatures"] = _directory_ids(
                temperature_refs.get(cid, []), "storage temperature", name, notes
            )
        if kind == "image":
            for attribute, column, _, label in IMAGING_FIELDS:
                counts = series.get(column, {}).get(cid, Counter())
                refs = imaging_refs[column]
                row[attribute] = sorted(
                    {str(refs[t].directory_id) for t in counts if refs[t].directory_id}
                )
                for t, n in sorted(counts.items()):
                    if not refs[t].directory_id:
                        notes.append(
                            f"{name}: {label} {refs[t].code!r} ({n} series) is not in the"
                            f" Directory's {attribute} list: left out"
                        )
        out.append(
            CollectionContent(
                row=row,
                kind=kind,
                donors=len(donors[cid]),
                diseases=disease_refs.get(cid, []),
                units=units[cid],
            )
        )
    return out


def _ages(r: Any, units: dict[int, TermRef], years_unit: str | None) -> Row:
    """age_low/age_high/age_unit: the derived range in whole years once donors' ages are
    known, else the declared range in its unit."""
    if r.donor_age_low_years is not None and r.donor_age_high_years is not None:
        return {
            "age_low": math.floor(r.donor_age_low_years),
            "age_high": math.floor(r.donor_age_high_years),
            "age_unit": [years_unit] if years_unit else [],
        }
    if r.age_low is None and r.age_high is None:
        return {}
    unit = units[int(r.age_unit_id)].directory_id if r.age_unit_id is not None else None
    return {
        "age_low": math.floor(r.age_low) if r.age_low is not None else None,
        "age_high": math.floor(r.age_high) if r.age_high is not None else None,
        "age_unit": [unit] if unit else [],
    }


__all__ = [
    "DirectoryContent",
    "DirectoryExportError",
    "DirectoryResult",
    "DirectoryUsageError",
    "Problem",
    "export_directory",
    "gather",
    "resolve_form",
]
