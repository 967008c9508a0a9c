"""E-form pages: the list of forms (``/forms``) and each form generated from its stored
definition (``/forms/{collection}/{form}``). Data managers enter records there; a record is
checked and stored by ``clinical.entry.enter_record``, exactly as an import is, and each
refused value is shown next to its field. Researchers see the definition read-only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from imaging_biobank.access.tokens import Principal
from imaging_biobank.api.deps import AuditNote, audit, settings
from imaging_biobank.catalogue import listing
from imaging_biobank.clinical.dictionary import Field
from imaging_biobank.clinical.entry import RecordExistsError, enter_record
from imaging_biobank.clinical.forms import (
    StoredForm,
    clinical_collection,
    stored_forms,
)
from imaging_biobank.db.lookup import CollectionLookupError
from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.web.render import error_page, page
from imaging_biobank.web.session import same_origin, signed_in, to_login

router = APIRouter(include_in_schema=False)

NOT_ENTERED = {
    "calc": "calculated by REDCap from other fields: not entered here",
    "file": "an uploaded file: not entered here",
}
# REDCap's codes of its two-choice field types
FIXED_CHOICES = {"yesno": (("1", "Yes"), ("0", "No")), "truefalse": (("1", "True"), ("0", "False"))}


@dataclass
class Widget:
    """How one field is drawn."""

    field: Field
    kind: str  # descriptive, text, date, textarea, select, radio, checkbox, yesno, ...
    hint: str = ""

    @property
    def choices(self) -> list[tuple[str, str]]:
        """(code, label) of each choice, REDCap's codes for yes/no and true/false."""
        if self.kind in FIXED_CHOICES:
            return list(FIXED_CHOICES[self.kind])
        return [(c.code, c.label) for c in self.field.choices]

    @property
    def entered(self) -> bool:
        """Whether the page sends a value for it."""
        return self.kind not in ("descriptive", "identifier", "fixed")


def widget(field: Field) -> Widget:
    """The input a field's type and validation call for."""
    hint_parts = []
    validation = field.validation_type
    if validation is not None:
        hint_parts.append(validation.meaning)
    if field.minimum or field.maximum:
        low, high = field.minimum or "\u2026", field.maximum or "\u2026"
        hint_parts.append(f"from {low} to {high}")
    hint = "; ".join(hint_parts)
    if field.identifier:
        return Widget(field, "identifier", "not entered here: identifying values are never stored")
    if field.field_type == "descriptive":
        return Widget(field, "descriptive")
    if field.field_type in NOT_ENTERED:
        return Widget(field, "fixed", NOT_ENTERED[field.field_type])
    if field.field_type in ("dropdown", "sql"):
        return Widget(field, "select" if field.choices else "text", hint)
    if field.field_type in ("radio", "checkbox", "yesno", "truefalse"):
        return Widget(field, field.field_type, hint)
    if field.field_type == "notes":
        return Widget(field, "textarea", hint)
    if validation is not None and validation.kind == "date":
        return Widget(field, "date", hint)
    if validation is not None and validation.kind in ("integer", "number"):
        return Widget(field, "number", hint)
    return Widget(field, "text", hint)


@dataclass
class LoadedForm:
    """A stored form with what the page needs: its collection, record id field, widgets."""

    collection: str
    name: str
    stored: StoredForm
    record_field: Field
    widgets: list[Widget]


def load_form(conn: Connection, collection: str, form: str) -> LoadedForm:
    """The form ``form`` of ``collection`` (``LookupError`` saying what there is)."""
    found = clinical_collection(conn, collection)
    forms = stored_forms(conn, found.id)
    if form not in forms:
        known = ", ".join(forms) or "none yet"
        raise LookupError(f"{found.identifier} has no form {form!r}; its forms: {known}")
    # the record id is the first field of the collection's first form (REDCap's rule)
    record_field = next(iter(forms.values())).form.fields[0]
    stored = forms[form]
    widgets = [widget(f) for f in stored.form.fields if f.name != record_field.name]
    return LoadedForm(found.identifier, form, stored, record_field, widgets)


def _show(
    request: Request,
    me: Principal,
    loaded: LoadedForm,
    *,
    values: dict[str, Any] | None = None,
    record: str = "",
    errors: dict[str, list[str]] | None = None,
    message: str | None = None,
    stored: str | None = None,
    status: int = 200,
) -> Response:
    key_file = settings(request).key_file
    may_enter = me.may("data_manager")
    return page(
        request,
        "eform.html",
        {
            "f": loaded,
            "values": values or {},
            "record": record,
            "errors": errors or {},
            "message": message,
            "stored": stored,
            "may_enter": may_enter,
            "has_key": key_file is not None,
            "can_submit": may_enter and key_file is not None,
        },
        status=status,
        me=me,
    )


@router.get("/forms")
def forms_list(request: Request) -> Response:
    """Every e-form: collection, fields, records (obfuscated for researchers), source."""
    me = signed_in(request)
    if me is None:
        return to_login(request)
    step = settings(request).obfuscation_step
    found = listing.e_forms(settings(request).engine, role=me.role, step=step)
    audit(request, AuditNote("web.forms", result_count=len(found)))
    return page(
        request,
        "forms.html",
        {"forms": found, "obfuscated": me.role == "researcher", "step": step},
        me=me,
    )


def _lookup(request: Request, me: Principal, collection: str, form: str) -> LoadedForm | Response:
    with settings(request).engine.connect() as conn:
        try:
            return load_form(conn, collection, form)
        except (CollectionLookupError, LookupError) as error:
            return error_page(request, 404, "No such form", str(error), me)


@router.get("/forms/{collection}/{form}")
def form_page(request: Request, collection: str, form: str) -> Response:
    """The form, drawn from its stored definition (read-only unless the role may enter)."""
    me = signed_in(request)
    if me is None:
        return to_login(request)
    loaded = _lookup(request, me, collection, form)
    if isinstance(loaded, Response):
        return loaded
    audit(request, AuditNote("web.form", f"{loaded.collection}|{form}", result_count=1))
    return _show(request, me, loaded)


@router.post("/forms/{collection}/{form}")
async def form_submit(request: Request, collection: str, form: str) -> Response:
    """Store one record entered on the page, checked as an import is; nothing is stored
    when a value is refused, and each refusal is shown beside its field."""
    me = signed_in(request)
    if me is None:
        return to_login(request)
    if not same_origin(request):
        return error_page(request, 403, "Forbidden", "forms must come from this site", me)
    loaded = await run_in_threadpool(_lookup, request, me, collection, form)
    if isinstance(loaded, Response):
        return loaded
    audit(request, AuditNote("forms.record", f"{loaded.collection}|{form}"))
    if not me.may("data_manager"):
        return error_page(
            request,
            403,
            "Forbidden",
            f"entering records is for data managers; your role is {me.role}",
            me,
        )
    key_file = settings(request).key_file
    if key_file is None:
        return error_page(
            request,
            409,
            "No key file",
            "this server has no key to pseudonymise record ids: start it with --key-file",
            me,
        )
    data = await request.form()
    record = str(data.get(loaded.record_field.name, "")).strip()
    values: dict[str, str | list[str]] = {}
    for w in loaded.widgets:
        if not w.entered:
            continue
        name = w.field.name
        if w.kind == "checkbox":
            values[name] = [str(v) for v in data.getlist(name)]
        else:
            values[name] = str(data.get(name, ""))
    update = data.get("update") == "1"
    if update:  # only the values entered change; the fields left empty keep theirs
        values = {name: value for name, value in values.items() if value}
    try:
        result = await run_in_threadpool(
            enter_record,
            settings(request).engine,
            loaded.collection,
            form,
            record,
            values,
            Pseudonymiser.from_file(key_file),
            update=update,
        )
    except ValueError as error:
        status = 409 if isinstance(error, RecordExistsError) else 422
        return _show(
            request, me, loaded, values=values, record=record, message=str(error), status=status
        )
    written = result.written
    if result.bad_cells or not (written.stored + written.updated + written.unchanged):
        errors: dict[str, list[str]] = {}
        for cell in result.bad_cells:
            errors.setdefault(cell.field, []).append(cell.reason)
        message = (
            f"{len(result.bad_cells)} value(s) refused; nothing was stored"
            if result.bad_cells
            else "nothing was stored"
        )
        return _show(
            request,
            me,
            loaded,
            values=values,
            record=record,
            errors=errors,
            message=message,
            status=422,
        )
    audit(request, AuditNote("forms.record", f"{loaded.collection}|{form}", result_count=1))
    what = "stored" if written.stored else "updated" if written.updated else "unchanged"
    return _show(request, me, loaded, stored=f"Record {record} {what}.")
