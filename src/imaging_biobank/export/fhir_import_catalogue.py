"""The catalogue of a FHIR Bundle into the database: each biobank Organization with its
juristic person, contacts and collection Organizations (and their MIABIS on FHIR Groups), as
one registration document written by ``register.writer.write_document``. A field that does
not validate is reported and left out; a collection or biobank whose required fields do not
validate is reported and not written, and so is a collection whose biobank is not in the
Bundle.

Declared descriptors: a collection of our own export (it carries our collection-kind
extension) declares what its collection-declared-descriptors extension says; its Group's
characteristics are what it holds (derived from the rows, which the import derives again)
and only their age range, the declared one, is read. Another system's Group has nothing but
its characteristics, which are read as declared."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from imaging_biobank.db._schema import metadata
from imaging_biobank.db.engine import session_factory
from imaging_biobank.export import fhir_terms
from imaging_biobank.export.fhir_import_bundle import (
    BBMRI,
    MIABIS,
    BundleReader,
    Entry,
    bbmri_identifier,
    codings_of,
    country_of,
    extensions_of,
    first_value,
    parts_of,
    telecom_url,
    value_of,
)
from imaging_biobank.model.collections import COLLECTION_KINDS
from imaging_biobank.register.document import (
    KIND_ONLY_FIELDS,
    BiobankDoc,
    CollectionDoc,
    ContactDoc,
    RegistrationDocument,
    cross_check,
)
from imaging_biobank.register.writer import RegistrationConflictError, write_document

T = metadata.tables
M = TypeVar("M", bound=BaseModel)
REGISTRATION_ELEMENTS: Final = {
    "id": "Organization.identifier",
    "name": "Organization.name",
    "acronym": "Organization.alias",
    "url": "Organization.telecom",
    "description": "Organization.extension(description)",
    "country": "Organization.address.country",
    "juristic_person": "Organization.partOf",
    "contact": "Organization.contact",
    "contacts": "Organization.contact",
    "kind": "Organization.extension(collection-kind)",
    "parent": "Organization.extension(ParentCollection)",
    "types": "Organization.extension(CollectionType)",
    "data_categories": "Organization.extension(DataCategory)",
    "access": "Organization.extension(collection-access)",
    "dicomweb_url": "Organization.extension(dicomweb-url)",
    "software": "Organization.extension(software-source-code)",
    "sex": "Group.characteristic(Sex)",
    "diseases": "Group.characteristic(Diagnosis)",
    "age_low": "Group.characteristic(Age)",
    "age_high": "Group.characteristic(Age)",
    "age_unit": "Group.characteristic(Age)",
    "material_types": "Group.characteristic(MaterialType)",
    "storage_temperatures": "Group.characteristic(StorageTemperature)",
}
GROUP_FIELDS: Final = (
    "sex",
    "diseases",
    "age_low",
    "age_high",
    "age_unit",
    "material_types",
    "storage_temperatures",
)


class CatalogueImport(BundleReader):
    """Registers the Bundle's biobanks with their contacts and collections."""

    def catalogue(self) -> None:
        """Register every biobank with its contacts and collections; a collection whose
        biobank is not in the Bundle is reported (once) and not stored."""
        placed: set[int] = set()
        for biobank_entry in self.biobanks.values():
            placed |= self._register(biobank_entry)
        for index, org in self.collection_orgs.items():
            if index not in placed:
                self.problem(
                    org,
                    "Organization.partOf",
                    "its biobank is not in the Bundle (no biobank Organization it is partOf,"
                    " nor one whose BBMRI-ERIC id its id extends); the collection is not stored",
                )

    def _biobank_of(self, org: Entry) -> Entry | None:
        """The biobank a collection Organization is ``partOf`` (or whose id it extends)."""
        parent = self.resolve(org.resource.get("partOf"))
        if parent is not None and parent.index in self.biobanks:
            return parent
        identifier = bbmri_identifier(org.resource) or ""
        for biobank in self.biobanks.values():
            if identifier.startswith(f"{bbmri_identifier(biobank.resource)}:collection:"):
                return biobank
        return None

    def _contact(self, entry: Entry, raw: dict[str, Any], country: str) -> dict[str, Any]:
        """A MIABIS contact from an Organization.contact; without our contact-details
        extension (another system's Bundle) its id is made from its e-mail or name."""
        parts = parts_of(raw, fhir_terms.own("extensions", "contact-details"))
        details = {p["field"]: parts.get(p["url"]) for p in fhir_terms.parts("contact-details")}
        name = raw.get("name") or {}
        telecom = {
            t.get("system"): t.get("value") for t in raw.get("telecom", []) if isinstance(t, dict)
        }
        address = raw.get("address") or {}
        identifier = details.pop("id")
        if not identifier:
            who = telecom.get("email") or " ".join([*name.get("given", []), name.get("family", "")])
            local = re.sub(r"[^A-Za-z0-9]+", "_", str(who)).strip("_") or "CONTACT"
            identifier = f"bbmri-eric:contactID:{country or 'EU'}_{local}"
            self.notice(
                entry, "Organization.contact", f"no contact id given; stored as {identifier}"
            )
        found: dict[str, Any] = {
            "id": identifier,
            "first_name": " ".join(name.get("given", [])) or None,
            "last_name": name.get("family"),
            "role": (raw.get("purpose") or {}).get("text"),
            "email": telecom.get("email"),
            "phone": telecom.get("phone"),
            "address": " ".join(address.get("line", [])) or None,
            "zip": address.get("postalCode"),
            "city": address.get("city"),
            "country": address.get("country"),
            **details,
        }
        return {k: v for k, v in found.items() if v not in (None, "")}

    def _validated(
        self,
        model: type[M],
        data: dict[str, Any],
        required: Iterable[str],
        report: Callable[[str, str], None],
    ) -> M | None:
        """``data`` as ``model``: a refused optional field (or list item) is reported and left
        out, a refused required one refuses the whole thing (None)."""
        needed = set(required)
        for _ in range(50):
            try:
                return model.model_validate(data)
            except ValidationError as error:
                for item in error.errors(include_url=False):
                    loc = item["loc"]
                    name = str(loc[0]) if loc else ""
                    message = "required, missing" if item["type"] == "missing" else item["msg"]
                    report(name, message)
                    if not loc and item["type"] in ("age_range", "age_unit"):
                        for key in ("age_low", "age_high", "age_unit"):
                            data.pop(key, None)
                        continue
                    if not loc or name in needed:
                        return None
                    value = data.get(name)
                    if (
                        isinstance(value, list)
                        and len(loc) > 1
                        and isinstance(loc[1], int)
                        and loc[1] < len(value)
                    ):
                        value[loc[1]] = None
                    else:
                        data.pop(name, None)
                for key, value in list(data.items()):
                    if isinstance(value, list):
                        data[key] = [v for v in value if v is not None]
        return None

    def _contact_problem(
        self, report: Callable[[str, str], None], contact: str, name: str, message: str
    ) -> None:
        report("contacts", f"contact {contact}: {name}: {message}")

    def _register(self, entry: Entry) -> set[int]:
        """One biobank: its fields, contacts and collections validated piece by piece (each
        refused piece reported and left out), then written as one registration. Returns the
        entry indexes of the collections it is the biobank of (stored or reported)."""
        r = entry.resource
        identifier = bbmri_identifier(r)
        country = country_of(r)
        person = self.resolve(r.get("partOf"))
        juristic: dict[str, Any] | None = None
        if person is not None and person.type == "Organization":
            p = person.resource
            juristic = {"name": p.get("name")}
            if country_of(p):
                juristic["country"] = country_of(p)
            if telecom_url(p):
                juristic["url"] = telecom_url(p)
        else:
            name = first_value(
                r, MIABIS.extension("juristic-person"), BBMRI.extension("juristic-person")
            )
            juristic = {"name": name} if name else None
        contacts: dict[str, dict[str, Any]] = {}
        biobank_contacts = []
        for raw in r.get("contact", []):
            found = self._contact(entry, raw, country)
            contacts.setdefault(found["id"], found)
            biobank_contacts.append(found["id"])
        data: dict[str, Any] = {
            "id": identifier,
            "acronym": (r.get("alias") or [None])[0],
            "name": r.get("name"),
            "url": telecom_url(r),
            "juristic_person": juristic,
            "country": country or None,
            "contact": biobank_contacts[0] if biobank_contacts else None,
            "description": first_value(
                r, MIABIS.extension("description"), BBMRI.extension("description")
            ),
        }
        data = {k: v for k, v in data.items() if v is not None}

        def report(name: str, message: str) -> None:
            self.problem(entry, REGISTRATION_ELEMENTS.get(name, "Organization"), message)

        collections = [c for c in self.collection_orgs.values() if self._biobank_of(c) is entry]
        placed = {c.index for c in collections}
        docs: dict[int, dict[str, Any]] = {}
        for org in collections:
            doc = self._collection(org, country, contacts)
            if doc is not None:
                docs[org.index] = doc
        contact_docs: dict[str, ContactDoc] = {}
        for cid, contact in contacts.items():
            checked_contact = self._validated(
                ContactDoc,
                contact,
                ["id"],
                partial(self._contact_problem, report, cid),
            )
            if checked_contact is not None:
                contact_docs[cid] = checked_contact
        if data.get("contact") not in contact_docs:
            data.pop("contact", None)
        biobank = self._validated(
            BiobankDoc, data, ["id", "name", "juristic_person", "country"], report
        )
        if biobank is None:
            for org in collections:
                self.problem(
                    org, "Organization.partOf", f"its biobank (entry {entry.index}) was refused"
                )
            return placed
        for doc in docs.values():
            doc["contacts"] = [c for c in doc.get("contacts", []) if c in contact_docs]
        raw_doc = {
            "biobank": data,
            "contacts": [{"id": cid} for cid in contact_docs],
            "collections": list(docs.values()),
        }
        refused_collections = {
            path[1] for path, _ in cross_check(raw_doc) if path[:1] == ("collections",)
        }
        for path, message in cross_check(raw_doc):
            if path[:1] == ("collections",):
                org_index = list(docs)[int(path[1])]
                self.problem(
                    self.by_index(org_index),
                    REGISTRATION_ELEMENTS.get(
                        str(path[2]) if len(path) > 2 else "id", "Organization"
                    ),
                    message,
                )
        kept = {i: d for n, (i, d) in enumerate(docs.items()) if n not in refused_collections}
        checked_collections: list[tuple[int, CollectionDoc]] = []
        for index, doc in kept.items():
            org = self.by_index(index)
            group = self.groups.get(doc["id"])

            def report_collection(
                name: str, message: str, org: Entry = org, group: Entry | None = group
            ) -> None:
                source = group if name in GROUP_FIELDS and group is not None else org
                self.problem(source, REGISTRATION_ELEMENTS.get(name, "Organization"), message)

            collection = self._validated(
                CollectionDoc,
                doc,
                ["id", "kind", "name", "types", "data_categories"],
                report_collection,
            )
            if collection is not None:
                checked_collections.append((index, collection))
        with self.engine.connect() as conn:
            c = T["collection"]
            stored_kinds = dict(conn.execute(select(c.c.identifier, c.c.kind)).all())
        writable = []
        for index, checked in checked_collections:
            stored = stored_kinds.get(checked.id)
            if stored is not None and stored != checked.kind:
                self.problem(
                    self.by_index(index),
                    "Organization.extension(collection-kind)",
                    f"registered as a {stored} collection; a collection cannot change kind",
                )
                continue
            writable.append((index, checked))
        document = RegistrationDocument(
            biobank=biobank,
            contacts=list(contact_docs.values()),
            collections=[d for _, d in writable],
        )
        try:
            with session_factory(self.engine).begin() as session:
                report_counts = write_document(session, document)
                self._undo_defaults(session, [d.id for _, d in writable])
        except RegistrationConflictError as error:
            self.problem(entry, "Organization", str(error))
            return placed
        self.result.stored["biobank"] += 1
        self.result.stored["collection"] += len(writable)
        self.result.stored["contact"] += len(contact_docs)
        self.result.stored["registered (new or changed)"] += sum(
            report_counts.created.values()
        ) + sum(report_counts.updated.values())
        for index, checked in writable:
            self.collection_ids[index] = checked.id
        return placed

    def _undo_defaults(self, session: Session, identifiers: list[str]) -> None:
        """A collection our export wrote without a type or data category (software
        collections made by analysis runs) had none: registration needed one to store it,
        so the placeholder goes again."""
        c = T["collection"]
        for identifier in identifiers:
            for table in self.defaulted.get(identifier, ()):
                link = T[table]
                collection_id = session.scalar(select(c.c.id).where(c.c.identifier == identifier))
                session.execute(delete(link).where(link.c.collection_id == collection_id))

    def _collection(
        self, org: Entry, country: str, contacts: dict[str, dict[str, Any]]
    ) -> dict[str, Any] | None:
        """A collection's registration fields from its Organization and Group (types and
        data categories as Directory ids, MIABIS on FHIR designs when those are absent)."""
        r = org.resource
        identifier = bbmri_identifier(r)
        if identifier is None:
            self.problem(org, "Organization.identifier", "a collection needs its BBMRI-ERIC id")
            return None
        own_ext = fhir_terms.own
        kind = None
        kind_value = first_value(r, own_ext("extensions", "collection-kind"))
        if isinstance(kind_value, dict) and kind_value.get("code") in COLLECTION_KINDS:
            kind = kind_value["code"]
        group = self.groups.get(identifier)
        types = []
        for ext in extensions_of(r, BBMRI.extension("collection-type")):
            for coding in codings_of(value_of(ext)):
                types.append(coding.get("code"))
        if not types:
            for ext in extensions_of(r, MIABIS.extension("collection-design")) + (
                extensions_of(group.resource, MIABIS.extension("collection-design"))
                if group
                else []
            ):
                for coding in codings_of(value_of(ext)):
                    term = fhir_terms.design_term(str(coding.get("code")))
                    if term is not None:
                        types.append(term)
        categories = [
            c.get("code")
            for ext in extensions_of(r, BBMRI.extension("data-category"))
            for c in codings_of(value_of(ext))
        ]
        datasets = {
            c.get("code")
            for ext in extensions_of(r, MIABIS.extension("dataset-type"))
            for c in codings_of(value_of(ext))
        }
        has_specimens = identifier in self.member_of.values()
        if kind is None:
            guessed = fhir_terms.guess_kind(
                {str(d) for d in datasets}, {t for t in types if isinstance(t, str)}
            )
            kind = "sample_tissue" if has_specimens or guessed is None else guessed
            self.notice(org, "Organization", f"no collection kind given; read as {kind}")
        ours = kind_value is not None
        if not types and ours:
            types = ["OTHER"]
            self.defaulted.setdefault(identifier, []).append("collection_collection_category")
        elif not types:
            types = ["OTHER"]
            self.notice(
                org,
                "Organization.extension(CollectionType)",
                "no collection type given; stored as OTHER",
            )
        if not categories and ours:
            categories = ["OTHER"]
            self.defaulted.setdefault(identifier, []).append("collection_data_category")
        elif not categories:
            categories = [fhir_terms.collection_kind(kind).get("data_category") or "OTHER"]
            self.notice(
                org,
                "Organization.extension(DataCategory)",
                f"no data category given; stored as {categories[0]}",
            )
        doc: dict[str, Any] = {
            "id": identifier,
            "kind": kind,
            "name": r.get("name"),
            "acronym": (r.get("alias") or [None])[0],
            "description": first_value(
                r, MIABIS.extension("description"), BBMRI.extension("description")
            ),
            "url": telecom_url(r),
            "types": types,
            "data_categories": categories,
        }
        parent = first_value(r, BBMRI.extension("parent-collection"))
        if isinstance(parent, dict):
            target = self.resolve(parent)
            doc["parent"] = (
                bbmri_identifier(target.resource)
                if target
                else (parent.get("identifier") or {}).get("value")
            )
        contact_ids = []
        for raw in r.get("contact", []):
            found = self._contact(org, raw, country)
            contacts.setdefault(found["id"], found)
            contact_ids.append(found["id"])
        doc["contacts"] = list(dict.fromkeys(contact_ids))
        _set_parts(
            doc, "collection-access", parts_of(r, own_ext("extensions", "collection-access"))
        )
        if kind == "image":
            doc["dicomweb_url"] = first_value(r, own_ext("extensions", "dicomweb-url"))
        if kind == "software_source_code":
            _set_parts(doc, "software", parts_of(r, own_ext("extensions", "software")), "software.")
        if ours:
            self._declared(org, doc)
        if group is not None:
            self._characteristics(group, doc, declared=not ours)
        for name, only in KIND_ONLY_FIELDS.items():
            if only != kind:
                doc.pop(name, None)
        return {k: v for k, v in doc.items() if v not in (None, [], {})}

    def _declared(self, org: Entry, doc: dict[str, Any]) -> None:
        """The declared descriptors of a collection of our own export: the exact terms of
        its collection-declared-descriptors extension."""
        element = "Organization.extension(collection-declared-descriptors)"
        lookups: dict[str, Callable[[str, str], Any]] = {
            "sex": lambda s, c: fhir_terms.vocabulary_term(s, c, "sex"),
            "material_type": lambda s, c: fhir_terms.vocabulary_term(s, c, "material_type"),
            "storage_temperature": lambda s, c: fhir_terms.vocabulary_term(
                s, c, "storage_temperature"
            ),
        }
        found: dict[str, list[Any]] = {}
        items = extensions_of(org.resource, fhir_terms.own("extensions", "collection-declared"))
        values = [e for item in items for e in item.get("extension", []) if isinstance(e, dict)]
        for part in fhir_terms.parts("collection-declared"):
            field = found.setdefault(part["field"], [])
            for value in (value_of(e) for e in values if e.get("url") == part["url"]):
                if part["table"] == "disease":
                    self._declared_disease(org, element, value, field)
                    continue
                term = self._term(org, element, value, lookups[part["table"]])
                if term is not None:
                    field.append(term)
        doc.update(found)

    def _declared_disease(self, entry: Entry, element: str, concept: Any, found: list[Any]) -> None:
        """A declared diagnosis: ICD-10 (registration declares no ORPHA code: noted)."""
        code = self._diagnosis(entry, element, concept)
        if code is not None and code.startswith("ORPHA:"):
            self.notice(
                entry,
                element,
                f"{code}: ORPHA codes are not declared at registration; the collection shows"
                " them from its donors' diagnoses",
            )
        elif code is not None:
            found.append(code)

    def _characteristics(self, group: Entry, doc: dict[str, Any], declared: bool) -> None:
        """A collection's age range from its Group's characteristics and, when ``declared``
        (another system's Group: nothing else says what was declared), its sexes,
        diagnoses, material types and storage temperatures too."""
        characteristic = MIABIS.system("characteristic")
        sexes: list[Any] = []
        diseases: list[Any] = []
        materials: list[Any] = []
        temperatures: list[Any] = []
        for item in group.resource.get("characteristic", []):
            codes = [
                c.get("code") for c in codings_of(item.get("code")) if c["system"] == characteristic
            ]
            what = codes[0] if codes else None
            concept = item.get("valueCodeableConcept")
            if what == "Age" and isinstance(item.get("valueRange"), dict):
                for side in ("low", "high"):
                    quantity = item["valueRange"].get(side)
                    if isinstance(quantity, dict) and quantity.get("value") is not None:
                        doc[f"age_{side}"] = quantity["value"]
                        unit = fhir_terms.term_by_column(
                            "age_unit", "ucum_code", str(quantity.get("code", ""))
                        )
                        doc["age_unit"] = unit if unit is not None else quantity.get("unit")
            elif not declared:
                continue
            elif what == "Sex":
                found = self._term(group, "Group.characteristic(Sex)", concept, self._sex)
                if found is not None:
                    sexes.append(found)
            elif what == "Diagnosis":
                self._declared_disease(group, "Group.characteristic(Diagnosis)", concept, diseases)
            elif what == "MaterialType":
                found = self._term(
                    group, "Group.characteristic(MaterialType)", concept, self._material
                )
                if found is not None:
                    materials.append(found)
            elif what == "StorageTemperature":
                found = self._term(
                    group, "Group.characteristic(StorageTemperature)", concept, self._temperature
                )
                if found is not None:
                    temperatures.append(found)
        if declared:
            doc.update(
                sex=sexes,
                diseases=diseases,
                material_types=materials,
                storage_temperatures=temperatures,
            )


def _set_parts(doc: dict[str, Any], name: str, parts: dict[str, Any], prefix: str = "") -> None:
    """The registration fields of one of our complex extensions (``fhir_terms.parts``): a
    dotted field is nested (``access.fee``); empty values are left out."""
    for part in fhir_terms.parts(name):
        value = parts.get(part["url"])
        if value is None or value == "":
            continue
        path = (prefix + part["field"]).split(".")
        target = doc
        for step in path[:-1]:
            target = target.setdefault(step, {})
        target[path[-1]] = value
