"""Clinical e-forms: definitions (also as FHIR Questionnaires) and record entry, checked as
imports are."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from imaging_biobank.api.deps import AuditNote, Conn, DataManager, Settings, Who, audit
from imaging_biobank.api.problems import ProblemError
from imaging_biobank.catalogue import listing
from imaging_biobank.clinical.forms import StoredForm, clinical_collection, field_row
from imaging_biobank.clinical.questionnaire import questionnaire_dict
from imaging_biobank.db.lookup import CollectionLookupError

router = APIRouter(prefix="/api", tags=["e-forms"])


class RecordEntry(BaseModel):
    """One record of one form: the record id (pseudonymised on the server) and the values
    as a REDCap export writes them (choice codes; checkbox fields as lists of codes)."""

    record_id: str = Field(..., min_length=1, max_length=255)
    values: dict[str, str | list[str]] = Field(default_factory=dict)
    update: bool = Field(
        False,
        description="Change a stored record with this id: the fields given change, the others"
        " stay. Without it, a stored record id answers 409.",
    )


class Entered(BaseModel):
    collection: str
    form: str
    stored: int
    updated: int
    unchanged: int


def stored_form(conn: Conn, collection: str, form: str) -> tuple[str, StoredForm]:
    from imaging_biobank.clinical.forms import stored_forms

    try:
        found = clinical_collection(conn, collection)
    except CollectionLookupError as error:
        raise ProblemError(404, str(error), kind="not-found") from None
    forms = stored_forms(conn, found.id)
    if form not in forms:
        known = ", ".join(forms) or "none yet"
        raise ProblemError(
            404, f"{found.identifier} has no form {form!r}; its forms: {known}", kind="not-found"
        )
    return found.identifier, forms[form]


@router.get("/forms")
def forms(request: Request, settings: Settings, me: Who) -> list[dict[str, Any]]:
    """Every e-form: collection, fields, records (obfuscated for researchers), source
    dictionary."""
    found = listing.e_forms(settings.engine, role=me.role, step=settings.obfuscation_step)
    audit(request, AuditNote("forms.list", result_count=len(found)))
    return found


@router.get("/forms/{collection}/{form}")
def form_definition(
    request: Request, collection: str, form: str, conn: Conn, me: Who
) -> dict[str, Any]:
    """A form's definition: its fields with types, validation, choices, codes, branching."""
    identifier, stored = stored_form(conn, collection, form)
    audit(request, AuditNote("forms.definition", f"{identifier}|{form}", result_count=1))
    return {
        "collection": identifier,
        "form": form,
        "label": stored.form.label,
        "dictionary_sha256": stored.dictionary_sha256,
        "fields": [field_row(f) for f in stored.form.fields],
    }


@router.get("/forms/{collection}/{form}/questionnaire")
def form_questionnaire(
    request: Request, collection: str, form: str, conn: Conn, me: Who
) -> JSONResponse:
    """The form as a FHIR R4 Questionnaire."""
    identifier, stored = stored_form(conn, collection, form)
    audit(request, AuditNote("forms.questionnaire", f"{identifier}|{form}", result_count=1))
    body = questionnaire_dict(
        stored.form,
        collection=identifier,
        sha256=stored.dictionary_sha256,
        imported_at=stored.imported_at,
    )
    return JSONResponse(body, media_type="application/fhir+json")


@router.post(
    "/forms/{collection}/{form}/records",
    status_code=201,
    response_model=Entered,
    responses={422: {"description": "Bad cells: nothing stored"}},
)
def enter(
    request: Request,
    collection: str,
    form: str,
    body: RecordEntry,
    settings: Settings,
    me: DataManager,
) -> Entered:
    """Store one record, checked as imports are (types, ranges, choices, required fields,
    branching, codes); with any bad cell nothing is stored and each is listed."""
    from imaging_biobank.clinical.entry import RecordExistsError, UnknownFormError, enter_record
    from imaging_biobank.deid.pseudonym import Pseudonymiser

    audit(request, AuditNote("forms.record", f"{collection}|{form}"))
    if settings.key_file is None:
        raise ProblemError(
            409,
            "this server has no key to pseudonymise record ids: start it with --key-file",
            kind="no-key",
        )
    try:
        result = enter_record(
            settings.engine,
            collection,
            form,
            body.record_id,
            body.values,
            Pseudonymiser.from_file(settings.key_file),
            update=body.update,
        )
    except (CollectionLookupError, UnknownFormError) as error:
        raise ProblemError(404, str(error), kind="not-found") from None
    except RecordExistsError as error:
        raise ProblemError(409, str(error), kind="record-exists") from None
    except ValueError as error:
        raise ProblemError(422, str(error), kind="record") from None
    if result.bad_cells:
        raise ProblemError(
            422,
            f"{len(result.bad_cells)} value(s) refused; nothing stored",
            kind="record",
            errors=[
                {"where": cell.field, "value": cell.value, "message": cell.reason}
                for cell in result.bad_cells
            ],
        )
    written = result.written
    if not written.stored + written.updated + written.unchanged:
        raise ProblemError(422, "the record has no values: nothing stored", kind="record")
    audit(request, AuditNote("forms.record", f"{collection}|{form}", result_count=1))
    return Entered(
        collection=result.collection,
        form=form,
        stored=result.written.stored,
        updated=result.written.updated,
        unchanged=result.written.unchanged,
    )
