"""Clinical variables and molecular biomarkers as FHIR Observations, with the e-forms they were
entered with as Questionnaires (``clinical.questionnaire``, not written twice).

A clinical value is one Observation (category ``survey``): ``code`` the field's own code when
the e-form binds one (@IB-CODE, e.g. LOINC 2532-0 for LDH) with the field label as text;
numbers as ``valueQuantity`` in the field's UCUM unit, choices as ``valueCodeableConcept``
(the choice's standard code when an @IB-CHOICE tag gives one), yes/no as ``valueBoolean``,
dates as ``valueDateTime``; a ticked checkbox option is one Observation each. An answer that
is free text (no number, date, choice or code: a text or notes field) is not written, as no
other free text is (it is typed by people and may name the patient); a notice names the
field once. A molecular
biomarker result is one Observation (category ``laboratory``): its LOINC code when known,
the gene (HGNC) as a component, ``specimen`` the sample it was measured on.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from imaging_biobank.clinical.dictionary import Field
from imaging_biobank.clinical.forms import stored_forms
from imaging_biobank.clinical.questionnaire import coding as choice_coding
from imaging_biobank.clinical.questionnaire import item_type, plain_text, questionnaire_dict
from imaging_biobank.export import fhir_terms
from imaging_biobank.export.fhir_bundle import Problem, reference
from imaging_biobank.export.fhir_context import Context, T
from imaging_biobank.export.fhir_imaging import ucum
from imaging_biobank.export.fhir_individuals import sample_key

STATUS = {2: "final", 1: "preliminary", 0: "preliminary"}  # REDCap <form>_complete
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
_TIME = re.compile(r"\d{2}:\d{2}(:\d{2})?")


def _category(code: str) -> list[dict[str, Any]]:
    return [{"coding": [fhir_terms.coding(fhir_terms.system("observation-category"), code)]}]


def _value(field: Field, row: Any) -> dict[str, Any]:
    """The value[x] of one stored answer."""
    kind = item_type(field)
    if field.field_type in ("yesno", "truefalse") and row.raw in ("0", "1"):
        return {"valueBoolean": row.raw == "1"}
    if field.choices:
        choice = field.choice(row.value_code or row.raw)
        if choice is not None:
            return {
                "valueCodeableConcept": {
                    "coding": [choice_coding(field, choice)],
                    "text": choice.label,
                }
            }
    if row.value_code and row.code_system:
        return {
            "valueCodeableConcept": {
                "coding": [{"system": row.code_system, "code": row.value_code}]
            }
        }
    if row.value_number is not None:
        unit = row.unit or field.unit
        if unit:
            return {"valueQuantity": {"value": row.value_number, **ucum(unit)}}
        if kind == "integer" and float(row.value_number).is_integer():
            return {"valueInteger": int(row.value_number)}
        return {"valueQuantity": {"value": row.value_number}}
    if row.value_date:
        if _DATE.fullmatch(row.value_date):
            return {"valueDateTime": row.value_date}
        if _TIME.fullmatch(row.value_date):
            time = row.value_date if len(row.value_date) == 8 else f"{row.value_date}:00"
            return {"valueTime": time}
    return {"valueString": row.raw}


def write_clinical(ctx: Context) -> None:
    """The Questionnaire of every e-form of the export's clinical collections, and an
    Observation per stored answer."""
    rec, val = T["clinical_record"], T["clinical_value"]
    for info in ctx.of_kind("clinical_variable"):
        forms = stored_forms(ctx.conn, info.id)
        by_id = {stored.id: stored for stored in forms.values()}
        for name in sorted(forms):
            stored = forms[name]
            questionnaire = questionnaire_dict(
                stored.form,
                collection=info.identifier,
                sha256=stored.dictionary_sha256,
                base=ctx.base,
            )
            ctx.writer.add(
                questionnaire, f"{info.identifier}|{name}", f"e-form {name} of {info.identifier}"
            )
        fields = {
            field_id: (stored, stored.form.field(field_name))
            for stored in forms.values()
            for field_name, field_id in stored.field_ids.items()
        }
        rows = ctx.conn.execute(
            select(
                val.c.e_form_field_id,
                val.c.item,
                val.c.raw,
                val.c.value_number,
                val.c.value_date,
                val.c.value_code,
                val.c.code_system,
                val.c.unit,
                rec.c.e_form_id,
                rec.c.record_key,
                rec.c.sample_donor_id,
                rec.c.completion,
            )
            .join(rec, rec.c.id == val.c.clinical_record_id)
            .where(rec.c.collection_id == info.id)
        ).all()

        def order(r: Any, fields: dict[int, Any] = fields) -> tuple[str, str, int, int]:
            stored, field = fields[int(r.e_form_field_id)]
            return (
                stored.form.name,
                str(r.record_key),
                field.position if field else 0,
                int(r.item),
            )

        free_text: set[str] = set()
        for row in sorted(rows, key=order):
            stored, field = fields[int(row.e_form_field_id)]
            if field is None or field.identifier or not field.has_value:
                continue
            pseudonym = ctx.patient(int(row.sample_donor_id))
            if pseudonym is None or int(row.e_form_id) not in by_id:
                continue
            value = _value(field, row)
            if "valueString" in value:
                if field.name not in free_text:
                    free_text.add(field.name)
                    ctx.notices.append(
                        Problem(
                            f"e-form {stored.form.name} of {info.identifier}",
                            f"field {field.name}: free-text answers are not written",
                        )
                    )
                continue
            key = f"{info.identifier}|{stored.form.name}|{row.record_key}|{field.name}|{row.item}"
            code: dict[str, Any] = {"text": plain_text(field.label)}
            if field.code is not None:
                code = {"coding": [{"system": field.code.system, "code": field.code.code}], **code}
            resource: dict[str, Any] = {
                "resourceType": "Observation",
                "identifier": [
                    {"system": fhir_terms.own("identifiers", "clinical-value"), "value": key}
                ],
                "status": STATUS.get(row.completion, "final"),
                "category": _category("survey"),
                "code": code,
                "subject": reference("Patient", pseudonym),
                **value,
            }
            ctx.writer.add(
                resource, key, f"{field.name} of record {row.record_key} ({stored.form.name})"
            )


def write_biomarkers(ctx: Context) -> None:
    """An Observation per molecular biomarker result of the export's molecular collections."""
    r, s, gene = T["molecular_biomarker_result"], T["sample"], T["gene"]
    for info in ctx.of_kind("molecular_biomarker"):
        rows = ctx.conn.execute(
            select(
                r,
                s.c.identifier.label("sample_identifier"),
                s.c.collection_id.label("sample_collection"),
            )
            .outerjoin(s, s.c.id == r.c.sample_id)
            .where(r.c.collection_id == info.id)
        ).all()
        genes = (
            {int(g.id): g for g in ctx.conn.execute(select(gene.c.id, gene.c.code, gene.c.label))}
            if rows
            else {}
        )
        collections = {c.id: c.identifier for c in ctx.collections}
        for row in sorted(rows, key=lambda x: str(x.identifier)):
            pseudonym = ctx.patient(int(row.sample_donor_id))
            if pseudonym is None:
                continue
            key = f"{info.identifier}|{row.identifier}"
            code: dict[str, Any] = {"text": row.biomarker}
            if row.loinc_code:
                code = {
                    "coding": [{"system": fhir_terms.system("loinc"), "code": row.loinc_code}],
                    **code,
                }
            resource: dict[str, Any] = {
                "resourceType": "Observation",
                "identifier": [
                    {"system": fhir_terms.own("identifiers", "biomarker-result"), "value": key}
                ],
                "status": "final",
                "category": _category("laboratory"),
                "code": code,
                "subject": reference("Patient", pseudonym),
            }
            if row.result_date:
                resource["effectiveDateTime"] = row.result_date
            if row.value_number is not None:
                resource["valueQuantity"] = {"value": row.value_number, **ucum(row.unit)}
            elif row.value_category:
                resource["valueCodeableConcept"] = {"text": row.value_category}
            elif row.value_text:
                resource["valueString"] = row.value_text
            if row.method:
                resource["method"] = {"text": row.method}
            if row.sample_identifier is not None and row.sample_collection in collections:
                target = sample_key(collections[row.sample_collection], str(row.sample_identifier))
                if ctx.writer.has("Specimen", target):
                    resource["specimen"] = reference("Specimen", target, str(row.sample_identifier))
            components: list[dict[str, Any]] = []
            if row.gene_id is not None and int(row.gene_id) in genes:
                g = genes[int(row.gene_id)]
                value = {
                    "coding": [
                        {"system": fhir_terms.system("hgnc"), "code": g.code, "display": g.label}
                    ]
                }
                components.append(
                    {
                        "code": {"coding": [fhir_terms.fixed_coding("gene-studied")]},
                        "valueCodeableConcept": value,
                    }
                )
            if row.value_text and (row.value_number is not None or row.value_category):
                components.append(
                    {"code": {"text": "variant (HGVS)"}, "valueString": row.value_text}
                )
            if components:
                resource["component"] = components
            ctx.writer.add(resource, key, f"biomarker result {row.biomarker} ({info.identifier})")
