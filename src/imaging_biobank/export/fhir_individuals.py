"""The individual level as FHIR: donors (Patient), their events (Condition for a diagnosis,
Observation for other events) and samples (Specimen, with their diagnoses).

Privacy: a Patient carries the donor's pseudonym as its only identifier, the administrative
gender and at most the birth year; nothing else about the person. An event carries its
identifier, a keyed token the registry import made (HMAC of the pseudonym and the event's
facts under the biobank's key: it cannot be reversed or recomputed without the key), so a
re-import finds the event again. Free text is not written: an event's description, a
sample's anatomical-site free text (like study and series descriptions and segment labels,
it is typed by people and may name the patient).

MIABIS on FHIR: ``miabis-sample-donor`` (dataset types in ``miabis-dataset-type-extension``),
``miabis-condition``, ``miabis-sample`` (DetailedSampleType; storage temperature in
``processing.extension``; the collection's id in ``miabis-sample-collection-extension``) and
one ``miabis-observation`` per ICD-10 sample diagnosis (LOINC 52797-8, ``specimen`` the
sample). bbmri.de: ``Patient``, ``Condition`` and ``Specimen`` (SampleMaterialType;
``StorageTemperature``, ``SampleDiagnosis`` and ``Custodian`` extensions). A sample's ORPHA
diagnosis, which neither profile's slot takes, goes in our own ``diagnosis`` extension.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from imaging_biobank.export import fhir_terms
from imaging_biobank.export.fhir_bundle import Problem, reference
from imaging_biobank.export.fhir_catalogue import age_quantity, diagnosis_codings, disease_coding
from imaging_biobank.export.fhir_context import Context, T, chunks

ext = fhir_terms.ext


def write_patients(ctx: Context) -> None:
    """A Patient for every donor of the export's collections, by pseudonym."""
    fam, miabis = ctx.fam, fhir_terms.family("miabis")
    donor = T["sample_donor"]
    ids = sorted(ctx.donors())
    datasets = ctx.links(
        "sample_donor_miabis_dataset_type", "sample_donor", "miabis_dataset_type", ids
    )
    conditions = ctx.links(
        "sample_donor_use_access_condition", "sample_donor", "use_access_condition", ids
    )
    rows: list[Any] = []
    for batch in chunks(ids):
        rows += ctx.conn.execute(
            select(donor.c.id, donor.c.pseudonym, donor.c.sex_id, donor.c.birth_date).where(
                donor.c.id.in_(batch)
            )
        ).all()
    for row in sorted(rows, key=lambda r: str(r.pseudonym)):
        where = f"donor {row.pseudonym}"
        sex = ctx.terms.get("sex", row.sex_id)
        if sex is None or sex.term is None:
            ctx.problems.append(Problem(where, "its sex is not a shipped MIABIS sex"))
            continue
        extensions: list[dict[str, Any]] = []
        found_sets = (ctx.terms.get("miabis_dataset_type", i) for i in datasets.get(row.id, []))
        codes = {d.term.get("miabis_fhir_code") for d in found_sets if d and d.term}
        for code in sorted(c for c in codes if c):
            extensions.append(ext(miabis.extension("donor-dataset-type"), "valueCode", code))
        extensions += ctx.use_access_extensions(conditions.get(row.id, []), where)
        gender = fhir_terms.gender(sex.term)
        if gender == "other":  # Undifferentiated and Not applicable: say which
            sex_coding = fhir_terms.coding(
                miabis.system("sex"), fhir_terms.miabis_sex_code(sex.term)
            )
            extensions.append(
                ext(fhir_terms.own("extensions", "miabis-sex"), "valueCoding", sex_coding)
            )
        resource: dict[str, Any] = {
            "resourceType": "Patient",
            "meta": {"profile": [fam.profile("donor")]},
        }
        if extensions:
            resource["extension"] = extensions
        resource["identifier"] = [
            {"system": fhir_terms.own("identifiers", "donor"), "value": row.pseudonym}
        ]
        resource["gender"] = gender
        if row.birth_date:
            resource["birthDate"] = str(row.birth_date)[:4]  # the year at most
        if ctx.writer.add(resource, str(row.pseudonym), where):
            ctx.pseudonyms[int(row.id)] = str(row.pseudonym)


def _event_key(ctx: Context, pseudonym: str, row: Any, code: str) -> str:
    """An event's natural key: its identifier (a keyed token), else what it says."""
    if row.identifier and fhir_terms.is_event_token(str(row.identifier)):
        return f"event|{row.identifier}"
    unit = ctx.terms.get("age_unit", row.age_unit_id)
    when = row.event_date or f"{row.age_at_event}|{unit.code if unit else ''}"
    return f"{pseudonym}|{row.event_type}|{when}|{code}"


def write_events(ctx: Context) -> None:
    """Every event of the exported donors: a diagnosis as a Condition, other events as an
    Observation coded with the event type; each with the event's identifier (a keyed token,
    see the module docstring) and without its free-text description."""
    fam = ctx.fam
    e = T["event"]
    rows: list[Any] = []
    for batch in chunks(sorted(ctx.pseudonyms)):
        rows += ctx.conn.execute(select(e).where(e.c.sample_donor_id.in_(batch))).all()
    keyed = []
    for row in rows:
        coding = disease_coding(ctx, row.disease_id)
        pseudonym = ctx.pseudonyms[int(row.sample_donor_id)]
        keyed.append(
            (_event_key(ctx, pseudonym, row, coding["code"] if coding else ""), row, coding)
        )
    seen: dict[str, int] = {}
    event_system = fhir_terms.own("code_systems", "event-type")
    for key, row, coding in sorted(keyed, key=lambda k: (k[0], str(k[1].identifier))):
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            key = f"{key}|{seen[key]}"
        pseudonym = ctx.pseudonyms[int(row.sample_donor_id)]
        event_type = {"system": event_system, "code": row.event_type}
        where = f"event {row.event_type} of donor {pseudonym}"
        identifier = (
            [{"system": fhir_terms.own("identifiers", "event"), "value": row.identifier}]
            if key.startswith("event|")
            else []
        )
        resource: dict[str, Any]
        if coding is not None:
            resource = {
                "resourceType": "Condition",
                "meta": {"profile": [fam.profile("condition")]},
                "identifier": identifier,
                "category": [{"coding": [event_type]}],
                "code": {"coding": [coding]},
                "subject": reference("Patient", pseudonym),
            }
            if row.event_date:
                resource["onsetDateTime"] = row.event_date
            elif row.age_at_event is not None:
                resource["onsetAge"] = age_quantity(ctx, row.age_at_event, row.age_unit_id)
        else:
            resource = {
                "resourceType": "Observation",
                "identifier": identifier,
                "status": "final",
                "code": {"coding": [event_type], "text": row.event_type},
                "subject": reference("Patient", pseudonym),
            }
            if row.event_date:
                resource["effectiveDateTime"] = row.event_date
            elif row.age_at_event is not None:
                age = age_quantity(ctx, row.age_at_event, row.age_unit_id)
                resource["extension"] = [
                    ext(fhir_terms.own("extensions", "age-at-event"), "valueAge", age)
                ]
        if not identifier:
            del resource["identifier"]
        ctx.writer.add(resource, key, where)


def _anatomical_site(row: Any) -> dict[str, Any] | None:
    """SAMPLE-05: the ontology's code, version and description (ICD-O-3 under the bbmri.de
    system URL, another ontology as ``fhir_terms.ontology_system`` says); the free text is
    not written."""
    if not row.anatomical_site_ontology:
        return None
    coding: dict[str, Any] = {
        "system": fhir_terms.ontology_system(str(row.anatomical_site_ontology))
    }
    if row.anatomical_site_version:
        coding["version"] = row.anatomical_site_version
    if row.anatomical_site_code:
        coding["code"] = row.anatomical_site_code
    if row.anatomical_site_description:
        coding["display"] = row.anatomical_site_description
    return {"coding": [coding]}


def _exact(system_url: str, code: str, found: Any) -> dict[str, Any]:
    """A profile's code, with the exact MIABIS term as its translation."""
    return {"coding": [fhir_terms.coding(system_url, code), fhir_terms.vocabulary_coding(found)]}


def sample_key(collection: str, identifier: str) -> str:
    """A Specimen's natural key: its collection's id and the sample id."""
    return f"{collection}|{identifier}"


def _codes(ctx: Context, row: Any, where: str) -> tuple[str, str] | None:
    """A sample's type and storage-temperature codes in the family (None, reported, when
    the family has no code for one of them)."""
    fam = ctx.fam
    material = ctx.terms.get("material_type", row.material_type_id)
    code = (
        fhir_terms.material_code(fam, material.term, "sample") if material and material.term else ""
    )
    if not code:
        what = material.code if material else row.material_type_id
        ctx.problems.append(Problem(where, f"sample type {what!r} has no {fam.title} code"))
        return None
    temperature = ctx.terms.get("storage_temperature", row.storage_temperature_id)
    temperature_code = ""
    if temperature is not None and temperature.term is not None:
        temperature_code = fhir_terms.storage_temperature_code(fam, temperature.term)
        if not temperature_code:
            ctx.problems.append(
                Problem(where, f"storage temperature {temperature.code!r} has no {fam.title} code")
            )
            return None
    return code, temperature_code


def write_specimens(ctx: Context) -> None:
    """A Specimen for every sample of the export's sample collections, and a
    ``miabis-observation`` for each of its ICD-10 diagnoses (MIABIS on FHIR)."""
    fam, miabis, bbmri = ctx.fam, fhir_terms.family("miabis"), fhir_terms.family("bbmri-de")
    s = T["sample"]
    for info in ctx.of_kind("sample_tissue"):
        rows = ctx.conn.execute(select(s).where(s.c.collection_id == info.id)).all()
        ids = [int(r.id) for r in rows]
        diagnoses = ctx.links("sample_disease", "sample", "disease", ids)
        conditions = ctx.links("sample_use_access_condition", "sample", "use_access_condition", ids)
        keys = ctx.specimens.setdefault(info.id, [])
        for row in sorted(rows, key=lambda r: str(r.identifier)):
            where = f"sample {row.identifier} of {info.identifier}"
            pseudonym = ctx.patient(int(row.sample_donor_id))
            if pseudonym is None:
                ctx.problems.append(Problem(where, "its donor is not in the Bundle"))
                continue
            codes = _codes(ctx, row, where)
            if codes is None:
                continue
            code, temperature_code = codes
            material = ctx.terms.get("material_type", row.material_type_id)
            temperature = ctx.terms.get("storage_temperature", row.storage_temperature_id)
            assert material is not None and material.term is not None
            slot = (
                "MIABIS on FHIR's sample diagnosis (miabis-observation)"
                if fam.key == "miabis"
                else "bbmri.de's SampleDiagnosis"
            )
            disease_codings, own = diagnosis_codings(
                ctx, diagnoses.get(int(row.id), []), where, slot
            )
            extensions: list[dict[str, Any]] = []
            if fam.key == "miabis":
                collection_identifier = {
                    "system": fhir_terms.system("bbmri-eric-id"),
                    "value": info.identifier,
                }
                extensions.append(
                    ext(
                        miabis.extension("sample-collection"),
                        "valueIdentifier",
                        collection_identifier,
                    )
                )
            else:
                if temperature_code and temperature is not None and temperature.term:
                    value = _exact(
                        fam.system("storage-temperature"), temperature_code, temperature.term
                    )
                    extensions.append(
                        ext(bbmri.extension("storage-temperature"), "valueCodeableConcept", value)
                    )
                custodian = reference("Organization", f"collection|{info.identifier}", info.name)
                extensions.append(ext(bbmri.extension("custodian"), "valueReference", custodian))
                for coding in disease_codings:
                    extensions.append(
                        ext(
                            bbmri.extension("sample-diagnosis"),
                            "valueCodeableConcept",
                            {"coding": [coding]},
                        )
                    )
            extensions += own
            extensions += ctx.use_access_extensions(conditions.get(int(row.id), []), where)
            source = ctx.terms.get("sample_source", row.sample_source_id)
            if source is not None:
                coding = fhir_terms.coding(miabis.system("sample-source"), source.code)
                extensions.append(
                    ext(fhir_terms.own("extensions", "sample-source"), "valueCoding", coding)
                )
            resource: dict[str, Any] = {
                "resourceType": "Specimen",
                "meta": {"profile": [fam.profile("sample")]},
                "extension": extensions,
                "identifier": [
                    {"system": fhir_terms.own("identifiers", "sample"), "value": row.identifier}
                ],
                "type": _exact(fhir_terms.material_system(fam, "sample"), code, material.term),
                "subject": reference("Patient", pseudonym),
            }
            collection: dict[str, Any] = {}
            if row.creation_date:
                collection["collectedDateTime"] = row.creation_date
            site = _anatomical_site(row)
            if site is not None:
                collection["bodySite"] = site
            if collection:
                resource["collection"] = collection
            if fam.key == "miabis" and temperature_code and temperature and temperature.term:
                value = _exact(
                    fam.system("storage-temperature"), temperature_code, temperature.term
                )
                resource["processing"] = [
                    {
                        "extension": [
                            ext(fam.extension("storage-temperature"), "valueCodeableConcept", value)
                        ]
                    }
                ]
            key = sample_key(info.identifier, str(row.identifier))
            if not ctx.writer.add(resource, key, where):
                continue
            keys.append(key)
            if fam.key == "miabis":
                _sample_diagnoses(ctx, row, key, pseudonym, disease_codings, where)


def _sample_diagnoses(
    ctx: Context,
    row: Any,
    key: str,
    pseudonym: str,
    codings: list[dict[str, str]],
    where: str,
) -> None:
    """One ``miabis-observation`` per ICD-10 diagnosis of a sample (identified, as the
    profile says, by the sample's id)."""
    for coding in codings:
        observation = {
            "resourceType": "Observation",
            "meta": {"profile": [ctx.fam.profile("sample-diagnosis")]},
            "identifier": [
                {"system": fhir_terms.own("identifiers", "sample"), "value": row.identifier}
            ],
            "status": "final",
            "code": {"coding": [fhir_terms.fixed_coding("diagnosis-icd-code")]},
            "subject": reference("Patient", pseudonym),
            "specimen": reference("Specimen", key, str(row.identifier)),
            "valueCodeableConcept": {"coding": [coding]},
        }
        ctx.writer.add(
            observation, f"{key}|{coding['system']}|{coding['code']}", f"diagnosis of {where}"
        )
