"""Donors, samples and events of a FHIR Bundle into the database, as the rows of the registry
imports (``samples.importer.import_registry``): one donors, samples and events file per
collection, so the MIABIS rules of a CSV import apply and re-importing changes nothing. A row
the importer refuses is reported at the entry it came from, with the element its column
stands for.

Pseudonyms: a Bundle of our own export says which key made its pseudonyms (the key's
fingerprint in ``Bundle.meta``). Imported with that key, its donor pseudonyms and event
identifiers are kept as they are, so it meets the rows they came from; any other identifier,
and ours from a Bundle that does not say it was made with this key, is pseudonymised like
every import does. What our export leaves out by design (birth dates but their year, free
text) is not taken as erased: importing such a Bundle into a database that holds its rows
keeps the stored values."""

from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy import select

from imaging_biobank.catalogue.descriptors import derive_descriptors
from imaging_biobank.db._schema import metadata
from imaging_biobank.db.lookup import CollectionLookupError
from imaging_biobank.deid.pseudonym import Pseudonymiser, normalise_identifier
from imaging_biobank.export import fhir_terms
from imaging_biobank.export.fhir_context import chunks
from imaging_biobank.export.fhir_import_bundle import (
    BundleReader,
    Entry,
    bbmri_identifier,
    canonical,
    chosen_identifier,
    codings_of,
    extensions_of,
    fhir_date,
    first_value,
    value_of,
)
from imaging_biobank.samples.columns import COLUMNS
from imaging_biobank.samples.importer import ImportSummary, import_registry
from imaging_biobank.samples.table import TableError

T = metadata.tables
MIABIS, BBMRI = fhir_terms.family("miabis"), fhir_terms.family("bbmri-de")
ELEMENTS: Final = {  # import file columns -> the FHIR element they came from
    "donor_id": "Patient.identifier",
    "sex": "Patient.gender",
    "birth_date": "Patient.birthDate",
    "dataset_type": "Patient.extension(dataset type)",
    "use_access_conditions": "extension(use-access-condition)",
    "sample_id": "Specimen.identifier",
    "sample_type": "Specimen.type",
    "storage_temperature": "Specimen storage temperature",
    "creation_date": "Specimen.collection.collectedDateTime",
    "anatomical": "Specimen.collection.bodySite",
    "diagnosis": "code",
    "sample_source": "Specimen.extension(sample-source)",
    "event_date": "onsetDateTime",
    "age_at_event": "onsetAge",
    "age_unit": "onsetAge.code",
    "event_type": "category",
    "event_id": "identifier",
}


@dataclass(frozen=True)
class KeepingPseudonymiser(Pseudonymiser):
    """Pseudonymises source identifiers, and leaves the pseudonyms in ``kept`` and the event
    identifiers in ``kept_events`` as they are (our own export's, made with this key)."""

    kept: frozenset[str] = frozenset()
    kept_events: frozenset[str] = frozenset()

    def donor(self, source_identifier: str) -> str:
        """The pseudonym of a source identifier; a kept pseudonym as it is."""
        value = normalise_identifier(source_identifier)
        return value if value in self.kept else super().donor(source_identifier)

    def token(self, purpose: str, value: str, length: int = 16) -> str:
        """A keyed token; for an event whose given id (the last part of what the registry
        import keys it by) is a kept event identifier, that identifier."""
        given = value.rsplit("|", 1)[-1]
        if purpose == "event" and given in self.kept_events:
            return given
        return super().token(purpose, value, length)


class IndividualsImport(BundleReader):
    """Donors, samples and events of the Bundle, as the rows of registry imports."""

    def _same_key(self) -> bool:
        """Whether the Bundle says it was made by our export with this import's key; a
        Bundle made with another key is noted."""
        meta = self.bundle.get("meta")
        said = (
            first_value(meta, fhir_terms.own("extensions", "pseudonym-key"))
            if isinstance(meta, dict)
            else None
        )
        ours = self.pseudonymiser.fingerprint
        if said is not None and said != ours:
            self.notice(
                None,
                "Bundle.meta",
                f"its pseudonyms were made with another key (fingerprint {said}, this one is"
                f" {ours}): they are pseudonymised again, as source identifiers",
            )
        return said == ours

    def individuals(self) -> None:
        """Rows for the registry imports: donors per collection, samples, events."""
        self.rows: dict[tuple[str, str], list[tuple[dict[str, str], Entry]]] = {}
        self.same_key = self._same_key()
        self.kept_events: set[str] = set()
        self.donor_cells: dict[int, dict[str, str]] = {}  # Patient entry -> its row
        donor_cells = self.donor_cells
        kept: set[str] = set()
        for entry in self.patients:
            cells = self._donor(entry, kept)
            if cells is not None:
                donor_cells[entry.index] = cells
        self.memberships: dict[int, list[str]] = {}  # Patient entry -> collections
        memberships = self.memberships
        for identifier, group in sorted(self.groups.items()):
            if identifier not in self.collection_ids.values() and not self._registered(identifier):
                continue
            for member in group.resource.get("member", []):
                target = self.resolve(member.get("entity"))
                if target is not None and target.index in donor_cells:
                    memberships.setdefault(target.index, []).append(identifier)
        for entry in self.specimens:
            donor = self._subject(entry, donor_cells)
            if donor is not None:
                self._sample(entry, donor)
        for entry in self.patients:
            if entry.index not in donor_cells:
                continue
            places = memberships.get(entry.index)
            if not places:
                self.problem(
                    entry,
                    "Patient",
                    "the donor is in no collection of the Bundle (no Group lists it, no sample"
                    " of it has a collection); not stored",
                )
                continue
            for collection in dict.fromkeys(places):
                self.rows.setdefault(("donors", collection), []).append(
                    (donor_cells[entry.index], entry)
                )
        for entry in self.conditions + self.event_observations:
            donor = self._subject(entry, donor_cells)
            if donor is not None:
                self._event(entry, donor)
        if kept or self.kept_events:
            self.pseudonymiser = KeepingPseudonymiser(
                self.pseudonymiser.key, frozenset(kept), frozenset(self.kept_events)
            )
        if self.same_key:
            self._keep_stored(donor_cells)

    def _keep_stored(self, donor_cells: dict[int, dict[str, str]]) -> None:
        """Our own export, imported with its key, into a database that holds its rows: what
        the export leaves out by design stays as stored (a donor's full birth date where the
        Bundle has its year; an event's description; a sample's anatomical-site free text
        where the Bundle has the same site code)."""
        d, e, s, c = T["sample_donor"], T["event"], T["sample"], T["collection"]
        by_pseudonym = {self.pseudonymiser.donor(v["donor_id"]): v for v in donor_cells.values()}
        events = [
            cells
            for (kind, _), rows in self.rows.items()
            if kind == "events"
            for cells, _ in rows
            if cells.get("event_id") in self.kept_events and not cells.get("description")
        ]
        samples = {
            (collection, cells["sample_id"]): cells
            for (kind, collection), rows in self.rows.items()
            if kind == "samples"
            for cells, _ in rows
            if not cells.get("anatomical_site_free_text")
        }
        with self.engine.connect() as conn:
            for batch in chunks(sorted(by_pseudonym)):
                for pseudonym, birth in conn.execute(
                    select(d.c.pseudonym, d.c.birth_date).where(d.c.pseudonym.in_(batch))
                ):
                    cells = by_pseudonym[pseudonym]
                    year = cells.get("birth_date", "")
                    if len(year) == 4 and birth and str(birth).startswith(year):
                        del cells["birth_date"]
            by_event = {cells["event_id"]: cells for cells in events}
            for batch in chunks(sorted(by_event)):
                for identifier, description in conn.execute(
                    select(e.c.identifier, e.c.description).where(e.c.identifier.in_(batch))
                ):
                    if description:
                        by_event[identifier]["description"] = description
            for batch in chunks(sorted({sample for _, sample in samples})):
                query = (
                    select(
                        c.c.identifier,
                        s.c.identifier,
                        s.c.anatomical_site_code,
                        s.c.anatomical_site_free_text,
                    )
                    .join(c, c.c.id == s.c.collection_id)
                    .where(s.c.identifier.in_(batch), s.c.anatomical_site_free_text.is_not(None))
                )
                for collection, sample, code, text in conn.execute(query):
                    found = samples.get((collection, sample))
                    if found is not None and found.get("anatomical_site_code", "") == (code or ""):
                        found["anatomical_site_free_text"] = text

    def _registered(self, identifier: str) -> bool:
        with self.engine.connect() as conn:
            c = T["collection"]
            return (
                conn.execute(select(c.c.id).where(c.c.identifier == identifier)).first() is not None
            )

    def _donor(self, entry: Entry, kept: set[str]) -> dict[str, str] | None:
        r = entry.resource
        chosen, ours = chosen_identifier(r, fhir_terms.own("identifiers", "donor"))
        if chosen is None and not r.get("id"):
            self.problem(
                entry, "Patient.identifier", "a donor needs an identifier (SAMPLEDONOR-01)"
            )
            return None
        if chosen is None:  # bbmri.de bridgeheads key a Patient by its id alone
            chosen = str(r["id"])
            self.notice(entry, "Patient.identifier", "none given; the Patient's id is the donor id")
        value = normalise_identifier(chosen)
        if ours and self.same_key and fhir_terms.is_pseudonym(value):
            kept.add(value)
        cells = {"donor_id": value}
        gender = fhir_terms.term_by_column("sex", "fhir_code", str(r.get("gender", "")))
        if r.get("gender") and gender is None:
            self.problem(
                entry,
                "Patient.gender",
                f"{r['gender']!r} is not an administrative gender (male, female, other,"
                " unknown); the donor is stored with sex Unknown",
            )
        sex_value = first_value(r, fhir_terms.own("extensions", "miabis-sex"))
        sex = (
            self._sex(canonical(sex_value.get("system")), str(sex_value.get("code")))
            if isinstance(sex_value, dict) and gender is not None
            else None
        )
        sex = sex or gender
        if sex is not None:
            cells["sex"] = sex.code
        if r.get("birthDate"):
            cells["birth_date"] = str(r["birthDate"])
        datasets = []
        for ext in extensions_of(r, MIABIS.extension("donor-dataset-type")):
            code = value_of(ext)
            code = code.get("code") if isinstance(code, dict) else code
            term = fhir_terms.term_by_column("miabis_dataset_type", "miabis_fhir_code", str(code))
            if term is None:
                self.problem(
                    entry,
                    "Patient.extension(dataset type)",
                    f"{code!r} is not a MIABIS dataset type code",
                )
            else:
                datasets.append(term.code)
        cells["dataset_type"] = " | ".join(datasets)
        cells["use_access_conditions"] = " | ".join(self._conditions(entry, r))
        return cells

    def _conditions(self, entry: Entry, resource: dict[str, Any]) -> list[str]:
        found = []
        prefix = fhir_terms.vocabulary_system("")
        for ext in extensions_of(resource, fhir_terms.own("extensions", "use-access-condition")):
            coding = value_of(ext) if isinstance(value_of(ext), dict) else {}
            system_url, code = str(coding.get("system", "")), str(coding.get("code", ""))
            term = (
                fhir_terms.term(system_url.removeprefix(prefix), code)
                if system_url.startswith(prefix)
                else None
            )
            if term is None:
                self.problem(
                    entry,
                    "extension(use-access-condition)",
                    f"{system_url}#{code} is not a use and access condition we know",
                )
            else:
                found.append(term.code)
        return found

    def _sample_collection(self, entry: Entry) -> str | None:
        r = entry.resource
        value = first_value(r, MIABIS.extension("sample-collection"))
        if isinstance(value, dict) and value.get("value"):
            return str(value["value"])
        custodian = self.resolve(first_value(r, BBMRI.extension("custodian")))
        if custodian is not None and custodian.type == "Organization":
            return bbmri_identifier(custodian.resource)
        return self.member_of.get(entry.index)

    def _subject(self, entry: Entry, donors: dict[int, dict[str, str]]) -> Entry | None:
        """The donor (Patient entry) a Specimen, Condition or Observation is of; None, with
        a problem, when it points at none that could be read."""
        donor = self.resolve(entry.resource.get("subject"))
        if donor is None or donor.index not in donors:
            self.problem(
                entry,
                f"{entry.type}.subject",
                "does not point at a donor (Patient) of the Bundle that could be read",
            )
            return None
        return donor

    def _sample(self, entry: Entry, donor: Entry) -> None:
        """The samples-file row of a Specimen of ``donor``."""
        r = entry.resource
        collection = self._sample_collection(entry)
        if collection is None:
            self.problem(
                entry,
                "Specimen.extension",
                "no collection: give the sample collection extension (MIABIS on FHIR) or the"
                " Custodian (bbmri.de)",
            )
            return
        chosen, _ = chosen_identifier(r, fhir_terms.own("identifiers", "sample"))
        if chosen is None and r.get("id"):  # as bbmri.de bridgeheads write it
            chosen = str(r["id"])
            self.notice(
                entry, "Specimen.identifier", "none given; the Specimen's id is the sample id"
            )
        if chosen is None:
            self.problem(entry, "Specimen.identifier", "a sample needs an identifier (SAMPLE-01)")
            return
        material = self._term(entry, "Specimen.type", r.get("type"), self._material)
        if material is None:
            return
        cells = {
            "sample_id": chosen,
            "donor_id": self.donor_cells[donor.index]["donor_id"],
            "sample_type": material.code,
        }
        temperature_ext = extensions_of(
            r, BBMRI.extension("storage-temperature"), MIABIS.extension("storage-temperature")
        )
        for step in r.get("processing", []):
            temperature_ext += extensions_of(step, MIABIS.extension("storage-temperature"))
        if temperature_ext:
            found = self._term(
                entry,
                "Specimen storage temperature",
                value_of(temperature_ext[0]),
                self._temperature,
            )
            if found is None:
                return
            cells["storage_temperature"] = found.code
        created = fhir_date((r.get("collection") or {}).get("collectedDateTime"))
        if created:
            cells["creation_date"] = created
        self._site(entry, (r.get("collection") or {}).get("bodySite"), cells)
        codes: list[str] = []
        for ext in extensions_of(r, BBMRI.extension("sample-diagnosis")):
            code = self._diagnosis(entry, "Specimen.extension(SampleDiagnosis)", value_of(ext))
            if code:
                codes.append(code)
        for ext in extensions_of(r, MIABIS.extension("sample-diagnosis")):
            value = value_of(ext)
            if isinstance(value, str):
                codes.append(value)
        for ext in extensions_of(r, fhir_terms.own("extensions", "diagnosis")):
            code = self._diagnosis(entry, "Specimen.extension(diagnosis)", value_of(ext))
            if code:
                codes.append(code)
        for coding in self.sample_diagnoses.get(entry.index, []):
            code = self._diagnosis(
                entry, "Observation.valueCodeableConcept (sample diagnosis)", coding
            )
            if code:
                codes.append(code)
        cells["diagnosis"] = " | ".join(dict.fromkeys(codes))
        cells["use_access_conditions"] = " | ".join(self._conditions(entry, r))
        source = first_value(
            r, fhir_terms.own("extensions", "sample-source"), MIABIS.extension("sample-source")
        )
        codings = codings_of(source)
        if codings and codings[0].get("code"):
            cells["sample_source"] = str(codings[0]["code"])
        self.rows.setdefault(("samples", collection), []).append((cells, entry))
        self.memberships.setdefault(donor.index, []).append(collection)

    def _site(self, entry: Entry, site: Any, cells: dict[str, str]) -> None:
        codings = codings_of(site)
        if not codings:
            return
        coding = codings[0]
        ontology = fhir_terms.ontology_name(coding["system"])
        if not coding.get("version"):
            self.problem(
                entry,
                "Specimen.collection.bodySite",
                "MIABIS needs the ontology's version with an anatomical site (SAMPLE-05-02);"
                " the site is left out",
            )
            return
        cells.update(
            anatomical_site_ontology=ontology,
            anatomical_site_version=str(coding["version"]),
            anatomical_site_code=str(coding.get("code", "")),
            anatomical_site_description=str(coding.get("display", "")),
            anatomical_site_free_text=str((site or {}).get("text", "")),
        )

    def _event(self, entry: Entry, donor: Entry) -> None:
        """The events-file row of a Condition or event Observation of ``donor``."""
        r = entry.resource
        places = self.memberships.get(donor.index)
        if not places:
            return  # the donor is reported already
        event_system = fhir_terms.own("code_systems", "event-type")
        cells = {"donor_id": self.donor_cells[donor.index]["donor_id"]}
        given, ours = chosen_identifier(r, fhir_terms.own("identifiers", "event"))
        if given:
            cells["event_id"] = given
            if ours and self.same_key and fhir_terms.is_event_token(given):
                self.kept_events.add(given)
        if entry.type == "Condition":
            types = [
                c.get("code")
                for cat in r.get("category", [])
                for c in codings_of(cat)
                if c["system"] == event_system
            ]
            cells["event_type"] = str(types[0]) if types else "diagnosis"
            code = self._diagnosis(entry, "Condition.code", r.get("code"))
            if code is None:
                return
            cells["diagnosis"] = code
            date = fhir_date(r.get("onsetDateTime"))
            age = r.get("onsetAge")
            notes = [n.get("text") for n in r.get("note", []) if n.get("text")]
            if notes:
                cells["description"] = " ".join(notes)
        else:
            types = [
                c.get("code") for c in codings_of(r.get("code")) if c["system"] == event_system
            ]
            cells["event_type"] = str(types[0])
            date = fhir_date(r.get("effectiveDateTime"))
            age = first_value(r, fhir_terms.own("extensions", "age-at-event"))
            if r.get("valueString"):
                cells["description"] = str(r["valueString"])
        if date:
            cells["event_date"] = date
        if isinstance(age, dict) and age.get("value") is not None:
            cells["age_at_event"] = str(age["value"])
            unit = fhir_terms.term_by_column("age_unit", "ucum_code", str(age.get("code", "")))
            cells["age_unit"] = unit.code if unit else str(age.get("unit", ""))
        self.rows.setdefault(("events", sorted(set(places))[0]), []).append((cells, entry))

    def write_rows(self) -> None:
        """Donors, then samples, then events, one registry import per collection."""
        self.stored_entries: dict[str, set[int]] = {}
        with tempfile.TemporaryDirectory(prefix="fhir-import-") as folder:
            for kind in ("donors", "samples", "events"):
                for (which, collection), rows in sorted(self.rows.items()):
                    if which != kind:
                        continue
                    path = Path(folder) / f"{kind}.csv"
                    headers = [c.name for c in COLUMNS[kind]]
                    with path.open("w", encoding="utf-8", newline="") as f:
                        writer = csv.DictWriter(f, headers)
                        writer.writeheader()
                        for cells, _ in rows:
                            writer.writerow({h: cells.get(h, "") for h in headers})
                    try:
                        summary = import_registry(
                            self.engine, kind, path, collection, self.pseudonymiser
                        )
                    except (CollectionLookupError, TableError) as error:
                        for _, entry in rows:
                            self.problem(entry, entry.type, str(error))
                        continue
                    self._tally(kind, summary, rows)
        self._derive({collection for _, collection in self.rows})

    def _derive(self, collections: set[str]) -> None:
        """The derived descriptors of every collection the rows touched, once all are in:
        a donor's events, imported after the donor joined a collection, count there too."""
        c = T["collection"]
        with self.engine.begin() as conn:
            for identifier in sorted(collections):
                found = conn.execute(select(c.c.id).where(c.c.identifier == identifier)).scalar()
                if found is not None:
                    derive_descriptors(conn, int(found))

    def _tally(
        self, kind: str, summary: ImportSummary, rows: list[tuple[dict[str, str], Entry]]
    ) -> None:
        refused = {item.row: item.reason for item in summary.refused}
        for number, (_, entry) in enumerate(rows, start=2):
            reason = refused.get(number)
            if reason is None:
                kind_stored = f"{entry.type} (event)" if entry.type == "Observation" else entry.type
                self.stored_entries.setdefault(kind_stored, set()).add(entry.index)
                continue
            column = next((c for c in ELEMENTS if reason.startswith(c) or f" {c}" in reason), "")
            element = ELEMENTS.get(column, entry.type)
            if kind == "samples" and column == "diagnosis":
                element = "Specimen sample diagnosis"
            if not element.startswith(("Patient", "Specimen")) and entry.type not in element:
                element = f"{entry.type}.{element}"
            self.problem(entry, element, reason)
