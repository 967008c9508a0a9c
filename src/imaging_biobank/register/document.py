"""The registration document: a biobank, its contacts, collections and studies (pydantic).

Every coded field is resolved against the shipped vocabularies while the document is
validated, so an unknown value is refused before anything is written, with the allowed
values in the message; every id is checked against the BBMRI-ERIC Directory rules.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from imaging_biobank.model.collections import COLLECTION_KINDS
from imaging_biobank.vocab import catalog, identifiers

# ---- field types ------------------------------------------------------------------------


def _vocabulary(table: str) -> BeforeValidator:
    def resolve(value: Any) -> catalog.Term:
        if isinstance(value, catalog.Term):
            return value
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise PydanticCustomError(
                "vocabulary",
                "expected a {what} (text), got {got}",
                {"what": table.replace("_", " "), "got": type(value).__name__},
            )
        try:
            return catalog.resolve(table, str(value))
        except catalog.UnknownTermError as error:
            raise PydanticCustomError("vocabulary", "{message}", {"message": str(error)}) from None

    return BeforeValidator(resolve)


def _identifier(check: Any) -> BeforeValidator:
    def validate(value: Any) -> str:
        if not isinstance(value, str):
            raise PydanticCustomError("identifier", "expected an id (text)")
        try:
            return str(check(value.strip()))
        except identifiers.InvalidIdentifierError as error:
            raise PydanticCustomError("identifier", "{message}", {"message": str(error)}) from None

    return BeforeValidator(validate)


Country = Annotated[catalog.Term, _vocabulary("country")]
Sex = Annotated[catalog.Term, _vocabulary("sex")]
AgeUnit = Annotated[catalog.Term, _vocabulary("age_unit")]
DataCategory = Annotated[catalog.Term, _vocabulary("data_category")]
CollectionCategory = Annotated[catalog.Term, _vocabulary("collection_category")]
InclusionCriterion = Annotated[catalog.Term, _vocabulary("inclusion_criterion")]
MaterialType = Annotated[catalog.Term, _vocabulary("material_type")]
StorageTemperature = Annotated[catalog.Term, _vocabulary("storage_temperature")]
Disease = Annotated[catalog.Term, _vocabulary("disease")]
BiobankId = Annotated[str, _identifier(identifiers.check_biobank_id)]
PersonId = Annotated[str, _identifier(identifiers.check_person_id)]
LocalId = Annotated[str, _identifier(identifiers.check_local_id)]
Text = Annotated[str, Field(min_length=1)]
Age = Annotated[float, Field(ge=0)]
Kind = Literal[
    "image", "sample_tissue", "clinical_variable", "molecular_biomarker", "software_source_code"
]
assert set(Kind.__args__) == set(COLLECTION_KINDS)  # type: ignore[attr-defined]


class Strict(BaseModel):
    """Refuses unknown fields, naming the allowed ones."""

    model_config = ConfigDict(arbitrary_types_allowed=True, str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = set(cls.model_fields)
            for key in data:
                if key not in allowed:
                    raise PydanticCustomError(
                        "unknown_field",
                        "unknown field '{field}'; allowed: {allowed}",
                        {"field": key, "allowed": ", ".join(sorted(allowed))},
                    )
        return data


class AgeRange(Strict):
    """MIABIS 2.0-10/11/12: youngest and oldest donor, and the unit of both."""

    age_low: Age | None = None
    age_high: Age | None = None
    age_unit: AgeUnit | None = None

    @model_validator(mode="after")
    def _age(self) -> AgeRange:
        if self.age_low is not None and self.age_high is not None and self.age_low > self.age_high:
            raise PydanticCustomError(
                "age_range",
                "age_low ({low}) is above age_high ({high})",
                {"low": self.age_low, "high": self.age_high},
            )
        if (self.age_low is not None or self.age_high is not None) and self.age_unit is None:
            raise PydanticCustomError(
                "age_unit", "an age needs an age_unit (Years, Months, Weeks, Days)"
            )
        return self


# ---- the entities -----------------------------------------------------------------------


class ContactDoc(Strict):
    """MIABIS-2.0-07 contact information (and 2.0-23 researcher information)."""

    id: PersonId
    first_name: str | None = None
    last_name: str | None = None
    role: str | None = None
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: str | None = Field(default=None, pattern=r"^\+[0-9]{6,15}$")
    address: str | None = None
    zip: str | None = None
    city: str | None = None
    country: Country | None = None
    juristic_person: str | None = None
    department: str | None = None
    orcid: str | None = Field(default=None, pattern=r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")


class JuristicPersonDoc(Strict):
    """MIABIS-2.0-05: the legal entity hosting the biobank."""

    name: Text
    country: Country | None = None
    url: str | None = None


class BiobankDoc(Strict):
    """MIABIS Core 2.0 Biobank (2.0-01 to 2.0-08)."""

    id: BiobankId
    acronym: str | None = None
    name: Text
    url: str | None = None
    juristic_person: JuristicPersonDoc
    country: Country
    contact: str | None = None
    description: str | None = None

    @field_validator("juristic_person", mode="before")
    @classmethod
    def _juristic_person_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class AccessDoc(Strict):
    """Access conditions of a collection (Directory access policy fields)."""

    fee: bool | None = None
    joint_project: bool | None = None
    description: str | None = None
    uri: str | None = None


class SoftwareDoc(Strict):
    """What a Software/Source Code collection points at."""

    repository_url: str | None = None
    version: str | None = None
    licence: str | None = None
    programming_language: str | None = None
    persistent_identifier: str | None = None


KIND_ONLY_FIELDS: dict[str, str] = {
    "material_types": "sample_tissue",
    "storage_temperatures": "sample_tissue",
    "dicomweb_url": "image",
    "software": "software_source_code",
}


class CollectionDoc(AgeRange):
    """MIABIS 2.0 Sample Collection, generalised to the five kinds of the model."""

    id: str
    kind: Kind
    name: Text
    acronym: str | None = None
    description: Annotated[str, Field(max_length=4000)] | None = None
    url: str | None = None
    parent: str | None = None
    types: list[CollectionCategory] = Field(min_length=1)
    data_categories: list[DataCategory] = Field(min_length=1)
    contacts: list[str] = []
    sex: list[Sex] = []
    diseases: list[Disease] = []
    access: AccessDoc | None = None
    collaboration_commercial: bool | None = None
    collaboration_non_for_profit: bool | None = None
    material_types: list[MaterialType] = []
    storage_temperatures: list[StorageTemperature] = []
    dicomweb_url: str | None = None
    software: SoftwareDoc | None = None

    @model_validator(mode="after")
    def _kind_fields(self) -> CollectionDoc:
        for name, kind in KIND_ONLY_FIELDS.items():
            if getattr(self, name) and self.kind != kind:
                raise PydanticCustomError(
                    "kind_field",
                    "{field} is only for {kind} collections, and this one is {this}",
                    {"field": name, "kind": kind, "this": self.kind},
                )
        return self


class StudyDoc(AgeRange):
    """MIABIS Core 2.0 Study: a research study over collections (not a DICOM study)."""

    id: LocalId
    name: Text
    description: str | None = None
    principal_investigator: str | None = None
    contacts: list[str] = []
    collections: list[str] = []
    designs: list[CollectionCategory] = []
    data_categories: list[DataCategory] = []
    sex: list[Sex] = []
    material_types: list[MaterialType] = []
    inclusion_criteria: list[InclusionCriterion] = []
    total_participants: Annotated[int, Field(ge=0)] | None = None
    total_donors: Annotated[int, Field(ge=0)] | None = None


class RegistrationDocument(Strict):
    """One YAML file: a biobank with its contacts, collections and studies."""

    biobank: BiobankDoc
    contacts: list[ContactDoc] = []
    collections: list[CollectionDoc] = []
    studies: list[StudyDoc] = []


# ---- checks across the document -----------------------------------------------------------

Path = tuple[str | int, ...]


def _items(data: dict[str, Any], key: str) -> list[tuple[int, dict[str, Any]]]:
    value = data.get(key)
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)]


def _strings(value: Any) -> list[tuple[int, str]]:
    if not isinstance(value, list):
        return []
    return [(i, v) for i, v in enumerate(value) if isinstance(v, str)]


def cross_check(data: dict[str, Any]) -> list[tuple[Path, str]]:
    """Rules that span entities, checked on the raw document so every problem is reported
    at once: collection ids under their biobank id, no duplicates, references that resolve.
    """
    problems: list[tuple[Path, str]] = []
    raw_biobank = data.get("biobank")
    biobank: dict[str, Any] = raw_biobank if isinstance(raw_biobank, dict) else {}
    contacts = {c["id"] for _, c in _items(data, "contacts") if isinstance(c.get("id"), str)}
    collections = {c["id"] for _, c in _items(data, "collections") if isinstance(c.get("id"), str)}

    def need(kind: str, known: set[str], ref: Any, path: Path) -> None:
        if isinstance(ref, str) and ref not in known:
            listed = ", ".join(sorted(known)) or "none"
            problems.append((path, f"{ref!r} is not a {kind} of this file (listed: {listed})"))

    def unique(key: str) -> None:
        seen: set[str] = set()
        for i, item in _items(data, key):
            ident = item.get("id")
            if isinstance(ident, str):
                if ident in seen:
                    problems.append(((key, i, "id"), f"{ident!r} is listed twice"))
                seen.add(ident)

    for key in ("contacts", "collections", "studies"):
        unique(key)
    need("contact", contacts, biobank.get("contact"), ("biobank", "contact"))
    biobank_id = biobank.get("id")
    try:
        identifiers.check_biobank_id(biobank_id if isinstance(biobank_id, str) else "")
    except identifiers.InvalidIdentifierError:
        biobank_id = None  # reported by the field check; do not cascade onto every collection
    for i, collection in _items(data, "collections"):
        ident = collection.get("id")
        if isinstance(ident, str):
            try:
                if isinstance(biobank_id, str):
                    identifiers.check_collection_id(ident, biobank_id)
                else:
                    identifiers.check_local_id(ident)
            except identifiers.InvalidIdentifierError as error:
                problems.append((("collections", i, "id"), str(error)))
        for j, ref in _strings(collection.get("contacts")):
            need("contact", contacts, ref, ("collections", i, "contacts", j))
        need(
            "collection",
            collections - {ident},
            collection.get("parent"),
            ("collections", i, "parent"),
        )
    for i, study in _items(data, "studies"):
        need(
            "contact",
            contacts,
            study.get("principal_investigator"),
            ("studies", i, "principal_investigator"),
        )
        for j, ref in _strings(study.get("contacts")):
            need("contact", contacts, ref, ("studies", i, "contacts", j))
        for j, ref in _strings(study.get("collections")):
            need("collection", collections, ref, ("studies", i, "collections", j))
    return problems
