"""The images as FHIR: one ImagingStudy per DICOM study, a BodyStructure per segmentation, an
Observation per imaging biomarker (radiomic feature).

ImagingStudy (R4; imaging.md section 8): identifier ``urn:dicom:uid`` = ``urn:oid:<Study
Instance UID>``; ``series`` with ``uid``, ``number``, ``modality`` (a Coding of DICOM's DCM
system; a series without a CID 33 modality gets the data-absent-reason extension instead,
and its value as the display), ``bodySite`` (the SNOMED CT code of Body Part Examined,
PS3.16 Annex L, or the Anatomic Region Sequence (0008,2218) when it is coded in SNOMED CT),
``laterality`` and ``instance`` (``uid``, ``sopClass`` ``urn:oid:<SOP Class UID>``,
``number``). Counts are those stored. Radiomic features: ``code`` from the IBSI coding scheme
(DICOM's ``urn:oid:1.2.840.10008.2.16.13``) with the feature name as text, ``valueQuantity``
in UCUM (``mm^3`` written ``mm3``), ``derivedFrom`` the ImagingStudy, ``focus`` the
segmentation's BodyStructure, ``bodySite`` the series' body part.

A study whose series belong to several donors (a header error, or studies merged by a
pseudonymisation) is written as one ImagingStudy per donor, each with that donor's series:
one donor's images are never put under another.

Free text is not written: study and series descriptions come from the headers and may name
the patient (the demo's held the TCIA subject id); a segment's label (an RTSTRUCT ROI name, a
SEG segment label) is typed by people too. A segmentation is a BodyStructure identified by its
series, source SOP instance and segment number, with its coded property type (or category)
as the morphology.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Any

from sqlalchemy import select

from imaging_biobank.export import fhir_terms
from imaging_biobank.export.fhir_bundle import Problem, reference
from imaging_biobank.export.fhir_context import Context, T, chunks
from imaging_biobank.vocab import codes

STUDY_CHUNK = 200


def ucum(unit: str | None) -> dict[str, str]:
    """The unit of a value as a Quantity's unit/system/code: UCUM when it is a UCUM unit
    (IBSI's ``mm^3`` is UCUM's ``mm3``), else the unit text alone."""
    if not unit:
        return {}
    code = re.sub(r"\^(-?\d+)", r"\1", unit.strip())
    try:
        codes.check_ucum(code)
    except codes.CodeError:
        return {"unit": unit}
    return {"unit": unit, "system": fhir_terms.system("ucum"), "code": code}


def scheme_coding(
    scheme: str | None, code: str | None, meaning: str | None
) -> dict[str, str] | None:
    """A DICOM (scheme designator, code value, meaning) triple as a Coding, when the scheme
    has a FHIR system we know."""
    system_url = fhir_terms.dicom_scheme_system(scheme)
    if not system_url or not code:
        return None
    found = {"system": system_url, "code": code}
    if meaning:
        found["display"] = meaning
    return found


def body_site(ctx: Context, series: Any) -> dict[str, str] | None:
    """The SNOMED CT coding of a series' anatomy: the current SNOMED CT code of its body part
    term (ingest found the term from the Anatomic Region Sequence first, then Body Part
    Examined, reading legacy codes as their current term: CHEST 43799004 is 816094009);
    the Anatomic Region Sequence's own code only when no term was found."""
    if series.body_part_examined_id is not None:
        snomed = ctx.terms.column("body_part_examined", series.body_part_examined_id, "snomed_code")
        if not snomed:
            return None
        row = ctx.terms.get("body_part_examined", series.body_part_examined_id)
        found = {"system": fhir_terms.system("snomed"), "code": str(snomed)}
        if row is not None:
            found["display"] = row.label
        return found
    raw = scheme_coding(
        series.anatomic_region_scheme, series.anatomic_region_code, series.anatomic_region_meaning
    )
    return raw if raw is not None and raw["system"] == fhir_terms.system("snomed") else None


def _modality(ctx: Context, series: Any) -> dict[str, Any]:
    row = ctx.terms.get("modality", series.modality_id)
    if row is not None and row.code in fhir_terms.cid33_modalities():
        return {"system": fhir_terms.system("dcm"), "code": row.code, "display": row.label}
    absent = {"url": fhir_terms.hl7_extension("data-absent-reason"), "valueCode": "unknown"}
    found: dict[str, Any] = {"extension": [absent]}
    if series.modality_value:
        found["display"] = series.modality_value
    return found


def _number(value: int | None) -> int | None:
    return value if value is not None and value >= 0 else None


def write_imaging(ctx: Context) -> None:
    """ImagingStudies of the export's image collections, then their segmentations and
    imaging biomarkers, a few hundred studies at a time."""
    collections = [c.id for c in ctx.of_kind("image")]
    if not collections:
        return
    series_t, study_t = T["imaging_series"], T["imaging_study"]
    rows = ctx.conn.execute(
        select(study_t.c.id, study_t.c.study_instance_uid).where(
            study_t.c.id.in_(
                select(series_t.c.imaging_study_id).where(
                    series_t.c.image_collection_id.in_(collections)
                )
            )
        )
    ).all()
    ordered = [int(r.id) for r in sorted(rows, key=lambda r: str(r.study_instance_uid))]
    for batch in chunks(ordered, STUDY_CHUNK):
        _write_batch(ctx, batch, collections)


def _write_batch(ctx: Context, study_ids: list[int], collections: list[int]) -> None:
    series_t, study_t, inst_t = T["imaging_series"], T["imaging_study"], T["imaging_instance"]
    studies = {
        int(r.id): r for r in ctx.conn.execute(select(study_t).where(study_t.c.id.in_(study_ids)))
    }
    series_rows = ctx.conn.execute(
        select(series_t).where(
            series_t.c.imaging_study_id.in_(study_ids),
            series_t.c.image_collection_id.in_(collections),
        )
    ).all()
    by_study: dict[int, list[Any]] = defaultdict(list)
    for row in series_rows:
        by_study[int(row.imaging_study_id)].append(row)
    series_ids = [int(r.id) for r in series_rows]
    instances: dict[int, list[Any]] = defaultdict(list)
    for batch in chunks(series_ids):
        query = select(
            inst_t.c.imaging_series_id,
            inst_t.c.sop_instance_uid,
            inst_t.c.sop_class_uid,
            inst_t.c.instance_number,
        )
        for row in ctx.conn.execute(query.where(inst_t.c.imaging_series_id.in_(batch))):
            instances[int(row.imaging_series_id)].append(row)
    written: dict[int, str] = {}  # series id -> its ImagingStudy's key, for the analyses
    for study_id in study_ids:
        study = studies[study_id]
        uid = str(study.study_instance_uid)
        by_donor: dict[int, list[Any]] = defaultdict(list)
        for row in by_study[study_id]:
            by_donor[int(row.sample_donor_id)].append(row)
        if len(by_donor) > 1:
            ctx.notices.append(
                Problem(
                    f"imaging study {uid}",
                    f"its series belong to {len(by_donor)} donors: one ImagingStudy per donor,"
                    " each with that donor's series",
                )
            )
        for donor_id, members in sorted(
            by_donor.items(), key=lambda d: (ctx.patient(d[0]) or "", d[0])
        ):
            pseudonym = ctx.patient(donor_id)
            where = f"imaging study {uid}" + (
                f" (series of donor {pseudonym or donor_id})" if len(by_donor) > 1 else ""
            )
            if pseudonym is None:
                ctx.problems.append(Problem(where, "its donor is not in the Bundle"))
                continue
            key = uid if len(by_donor) == 1 else f"{uid}|{pseudonym}"
            resource = _study(ctx, study, pseudonym, members, instances)
            if ctx.writer.add(resource, key, where):
                written.update({int(r.id): key for r in members})
    _write_analyses(ctx, written)


def _study(
    ctx: Context, study: Any, pseudonym: str, members: list[Any], instances: dict[int, list[Any]]
) -> dict[str, Any]:
    """An ImagingStudy of one donor's series of a DICOM study."""
    members = sorted(
        members,
        key=lambda r: (r.series_number is None, r.series_number or 0, str(r.series_instance_uid)),
    )
    series_json = [_series(ctx, row, instances[int(row.id)]) for row in members]
    modalities = {
        s["modality"]["code"]: s["modality"] for s in series_json if "code" in s["modality"]
    }
    uid = str(study.study_instance_uid)
    resource: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "identifier": [{"system": fhir_terms.system("dicom-uid"), "value": f"urn:oid:{uid}"}],
        "status": "available",
    }
    if modalities:
        resource["modality"] = [modalities[k] for k in sorted(modalities)]
    resource["subject"] = reference("Patient", pseudonym)
    if study.study_date is not None:
        resource["started"] = study.study_date.isoformat()
    resource["numberOfSeries"] = len(series_json)
    resource["numberOfInstances"] = sum(len(s.get("instance", [])) for s in series_json)
    resource["series"] = series_json
    return resource


def _series(ctx: Context, row: Any, instances: list[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {"uid": row.series_instance_uid}
    number = _number(row.series_number)
    if number is not None:
        found["number"] = number
    found["modality"] = _modality(ctx, row)
    found["numberOfInstances"] = len(instances)
    site = body_site(ctx, row)
    if site is not None:
        found["bodySite"] = site
    side = fhir_terms.laterality(row.laterality)
    if side is not None:
        found["laterality"] = side
    if row.series_date is not None:
        found["started"] = row.series_date.isoformat()
    items = []
    for inst in sorted(
        instances,
        key=lambda i: (i.instance_number is None, i.instance_number or 0, str(i.sop_instance_uid)),
    ):
        item: dict[str, Any] = {
            "uid": inst.sop_instance_uid,
            "sopClass": {
                "system": fhir_terms.system("rfc3986"),
                "code": f"urn:oid:{inst.sop_class_uid}",
            },
        }
        number = _number(inst.instance_number)
        if number is not None:
            item["number"] = number
        items.append(item)
    if items:
        found["instance"] = items
    return found


def _segment_keys(series: dict[int, Any], rows: list[Any]) -> dict[int, str]:
    """A neutral key per segmentation: its series' UID, the source SEG/RTSTRUCT instance's UID
    and the segment (ROI) number, or its place among the series' segments without one."""
    found: dict[int, str] = {}
    unnumbered: dict[int, int] = defaultdict(int)
    for row in sorted(rows, key=lambda r: (int(r.imaging_series_id), int(r.id))):
        uid = str(series[int(row.imaging_series_id)].series_instance_uid)
        number = row.segment_number
        if number is None:
            unnumbered[int(row.imaging_series_id)] += 1
            number = f"n{unnumbered[int(row.imaging_series_id)]}"
        found[int(row.id)] = f"{uid}|{row.source_sop_instance_uid or ''}|{number}"
    return found


def _write_analyses(ctx: Context, written: dict[int, str]) -> None:
    """BodyStructures of the segmentations and Observations of the imaging biomarkers of the
    series just written."""
    if not written:
        return
    seg_t, ib_t, tex_t, series_t = (
        T["segmentation"],
        T["imaging_biomarker"],
        T["textural_features"],
        T["imaging_series"],
    )
    ids = sorted(written)
    series = {
        int(r.id): r
        for batch in chunks(ids)
        for r in ctx.conn.execute(select(series_t).where(series_t.c.id.in_(batch)))
    }
    seg_rows = [
        r
        for batch in chunks(ids)
        for r in ctx.conn.execute(select(seg_t).where(seg_t.c.imaging_series_id.in_(batch)))
    ]
    keys = _segment_keys(series, seg_rows)
    segment_keys: dict[int, str] = {}
    for row in sorted(seg_rows, key=lambda r: keys[int(r.id)]):
        s = series[int(row.imaging_series_id)]
        key = keys[int(row.id)]
        pseudonym = ctx.patient(int(s.sample_donor_id))
        if pseudonym is None:
            continue
        resource: dict[str, Any] = {
            "resourceType": "BodyStructure",
            "identifier": [{"system": fhir_terms.own("identifiers", "segmentation"), "value": key}],
            "active": True,
        }
        morphology = scheme_coding(
            row.property_type_scheme, row.property_type_code, row.property_type_meaning
        ) or scheme_coding(
            row.property_category_scheme, row.property_category_code, row.property_category_meaning
        )
        if morphology is not None:
            resource["morphology"] = {"coding": [morphology]}
        site = body_site(ctx, s)
        if site is not None:
            resource["location"] = {"coding": [site]}
        resource["patient"] = reference("Patient", pseudonym)
        where = f"segment {key.rsplit('|', 1)[-1]} of series {s.series_instance_uid}"
        if ctx.writer.add(resource, key, where):
            segment_keys[int(row.id)] = key
    textural: dict[int, Any] = {}
    biomarkers: list[Any] = []
    for batch in chunks(ids):
        rows = ctx.conn.execute(select(ib_t).where(ib_t.c.imaging_series_id.in_(batch))).all()
        biomarkers += rows
        found = [int(r.id) for r in rows if r.kind == "textural"]
        for sub in chunks(found):
            textural.update(
                {int(r.id): r for r in ctx.conn.execute(select(tex_t).where(tex_t.c.id.in_(sub)))}
            )
    seen: dict[str, int] = {}

    def order(r: Any) -> tuple[str, str, str, str, str, int]:
        uid = str(series[int(r.imaging_series_id)].series_instance_uid)
        return (
            uid,
            segment_keys.get(int(r.segmentation_id or 0), ""),
            r.kind,
            r.name,
            r.code or "",
            int(r.id),
        )

    for row in sorted(biomarkers, key=order):
        s = series[int(row.imaging_series_id)]
        uid = str(s.series_instance_uid)
        segment = segment_keys.get(int(row.segmentation_id)) if row.segmentation_id else None
        key = f"{segment or uid}|{row.kind}|{row.name}|{row.code or ''}"
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            key = f"{key}|{seen[key]}"
        pseudonym = ctx.patient(int(s.sample_donor_id))
        if pseudonym is None:
            continue
        _biomarker(
            ctx,
            row,
            textural.get(int(row.id)),
            s,
            written[int(row.imaging_series_id)],
            pseudonym,
            segment,
            key,
        )


def _biomarker(
    ctx: Context,
    row: Any,
    textural: Any,
    series: Any,
    study_key: str,
    pseudonym: str,
    segment: str | None,
    key: str,
) -> None:
    coding = scheme_coding(row.code_scheme, row.code, None)
    if coding is not None and coding["system"] == fhir_terms.system("ibsi"):
        name = fhir_terms.ibsi_names().get(coding["code"])
        if name:
            coding["display"] = name
    code: dict[str, Any] = {"text": row.name}
    if coding is not None:
        code = {"coding": [coding], "text": row.name}
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [
            {"system": fhir_terms.own("identifiers", "imaging-biomarker"), "value": key}
        ],
        "status": "final",
        "category": [
            {"coding": [fhir_terms.coding(fhir_terms.system("observation-category"), "imaging")]}
        ],
        "code": code,
        "subject": reference("Patient", pseudonym),
    }
    if segment is not None:
        resource["focus"] = [reference("BodyStructure", segment)]
    value_code = scheme_coding(row.value_code_scheme, row.value_code, row.value_code_meaning)
    if row.value is not None and math.isfinite(row.value):
        resource["valueQuantity"] = {"value": row.value, **ucum(row.unit)}
    elif value_code is not None or row.value_code_meaning:
        concept: dict[str, Any] = {"coding": [value_code]} if value_code else {}
        if row.value_code_meaning:
            concept["text"] = row.value_code_meaning
        resource["valueCodeableConcept"] = concept
    else:
        reason = "not-a-number" if row.value is not None and math.isnan(row.value) else "unknown"
        if row.value is not None and math.isinf(row.value):
            reason = "positive-infinity" if row.value > 0 else "negative-infinity"
        absent = fhir_terms.coding(fhir_terms.system("data-absent-reason"), reason)
        resource["dataAbsentReason"] = {"coding": [absent]}
    site = body_site(ctx, series)
    if site is not None:
        resource["bodySite"] = {"coding": [site]}
    if textural is not None:
        steps = [
            textural.feature_family,
            textural.aggregation_method,
            textural.discretisation,
            textural.image_filter,
        ]
        method = "; ".join(str(s) for s in steps if s)
        if method:
            resource["method"] = {"text": method}
    resource["derivedFrom"] = [reference("ImagingStudy", study_key)]
    ctx.writer.add(
        resource, key, f"imaging biomarker {row.name} of series {series.series_instance_uid}"
    )
