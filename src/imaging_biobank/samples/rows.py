"""One registry row, checked against the MIABIS rules (pure): what it says about the donor,
an event and a sample, or every reason it cannot be stored.

The rules (MIABIS Sample v1.1, Sample Donor v1.1, Event v1.0): one id and one sample type
per sample; one sex per donor from the allowed list; an event has an age or a date, not
both; an age has a unit; an event date needs the donor's birth date; diagnoses are ICD-10
or ORPHA codes. A row with any problem is refused as a whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from imaging_biobank.samples import values
from imaging_biobank.vocab import catalog


@dataclass
class DonorFacts:
    source_id: str
    sex: catalog.Term | None = None
    birth_date: str | None = None
    dataset_types: list[catalog.Term] | None = None  # None: column absent, keep stored ones
    conditions: list[catalog.Term] | None = None


@dataclass
class EventFacts:
    source_id: str | None
    event_type: str
    event_date: str | None
    age: float | None
    age_unit: catalog.Term | None
    diagnosis: tuple[str, catalog.Term | None] | None
    description: str | None


@dataclass
class SampleFacts:
    identifier: str
    material_type: catalog.Term
    storage_temperature: catalog.Term | None
    creation_date: str | None
    anatomical_site: dict[str, str | None]
    diagnoses: list[tuple[str, catalog.Term | None]]
    conditions: list[catalog.Term]
    sample_source: catalog.Term | None


@dataclass
class Checked:
    """The facts of one row, or the problems that keep it out."""

    number: int
    donor: DonorFacts | None = None
    event: EventFacts | None = None
    sample: SampleFacts | None = None
    problems: list[str] = field(default_factory=list)


EVENT_COLUMNS = ("event_id", "event_type", "event_date", "age_at_event", "age_unit")
SITE_COLUMNS = (
    "anatomical_site_ontology",
    "anatomical_site_version",
    "anatomical_site_code",
    "anatomical_site_description",
    "anatomical_site_free_text",
)


class _Cells:
    """Reads cells, collecting each problem instead of stopping at the first."""

    def __init__(self, cells: dict[str, str], problems: list[str]):
        self.cells = cells
        self.problems = problems

    def text(self, name: str) -> str:
        return self.cells.get(name, "").strip()

    def has(self, name: str) -> bool:
        return name in self.cells

    def parse(self, name: str, parser: Callable[..., object], *args: object) -> object | None:
        raw = self.text(name)
        if not raw:
            return None
        try:
            return parser(*args, raw)
        except ValueError as error:
            self.problems.append(f"{name}: {error}")
            return None

    def term(self, name: str, table: str) -> catalog.Term | None:
        found = self.parse(name, values.term, table)
        return found if isinstance(found, catalog.Term) else None

    def terms(self, name: str, table: str) -> list[catalog.Term]:
        out = []
        for item in values.split_list(self.text(name)):
            try:
                out.append(values.term(table, item))
            except ValueError as error:
                self.problems.append(f"{name}: {error}")
        return out

    def diagnoses(self, name: str) -> list[tuple[str, catalog.Term | None]]:
        out = []
        for item in values.split_list(self.text(name)):
            try:
                out.append(values.diagnosis(item))
            except ValueError as error:
                self.problems.append(f"{name}: {error}")
        return out


def check(kind: str, number: int, cells: dict[str, str]) -> Checked:
    """The facts of a row of a ``kind`` file (donors, samples, events), or its problems."""
    result = Checked(number)
    read = _Cells(cells, result.problems)
    result.donor = _donor(read, kind)
    if kind == "samples":
        result.sample = _sample(read)
        if any(read.text(c) for c in EVENT_COLUMNS):
            result.event = _event(read, "sample collection")
    elif kind == "events":
        result.event = _event(read, None)
    return result


def _donor(read: _Cells, kind: str) -> DonorFacts | None:
    source_id = read.text("donor_id")
    if not source_id:
        read.problems.append("donor_id: empty (SAMPLEDONOR-01 is required)")
        return None
    sexes = values.split_list(read.text("sex"))
    if len(sexes) > 1:
        read.problems.append(f"sex: one sex per donor (SAMPLEDONOR-02), not {read.text('sex')!r}")
    facts = DonorFacts(source_id)
    facts.sex = read.term("sex", "sex") if len(sexes) == 1 else None
    birth = read.parse("birth_date", values.partial_date)
    facts.birth_date = birth if isinstance(birth, str) else None
    if kind == "donors":
        if read.has("dataset_type"):
            facts.dataset_types = read.terms("dataset_type", "miabis_dataset_type")
        if read.has("use_access_conditions"):
            facts.conditions = read.terms("use_access_conditions", "use_access_condition")
    return facts


def _event(read: _Cells, default_type: str | None) -> EventFacts | None:
    problems_before = len(read.problems)
    date = read.parse("event_date", values.partial_date)
    age = read.parse("age_at_event", values.age)
    unit = read.term("age_unit", "age_unit")
    diagnosis = None
    if read.has("diagnosis") and default_type is None:
        found = read.diagnoses("diagnosis")
        if len(found) > 1:
            read.problems.append("diagnosis: one diagnosis per event")
        diagnosis = found[0] if found else None
    if read.text("event_date") and read.text("age_at_event"):
        read.problems.append(
            "an event has either an age or a date, not both (MIABIS EVENT-02/EVENT-03)"
        )
    if read.text("age_at_event") and not read.text("age_unit"):
        read.problems.append("age_at_event: an age needs its unit in age_unit (EVENT-04)")
    if read.text("age_unit") and not read.text("age_at_event"):
        read.problems.append("age_unit given without age_at_event")
    if not read.text("event_date") and not read.text("age_at_event"):
        read.problems.append("an event needs event_date or age_at_event")
    event_type = read.text("event_type").lower() or default_type
    if event_type is None:
        event_type = "diagnosis" if diagnosis else None
        if event_type is None:
            read.problems.append("event_type: empty (diagnosis, relapse, death, ...)")
    if len(read.problems) > problems_before or event_type is None:
        return None
    return EventFacts(
        read.text("event_id") or None,
        event_type,
        date if isinstance(date, str) else None,
        age if isinstance(age, float) else None,
        unit,
        diagnosis,
        read.text("description") or None,
    )


def _sample(read: _Cells) -> SampleFacts | None:
    problems_before = len(read.problems)
    identifier = read.text("sample_id")
    if not identifier:
        read.problems.append("sample_id: empty (SAMPLE-01 is required)")
    elif len(values.split_list(identifier)) > 1:
        read.problems.append(f"sample_id: one id per sample (SAMPLE-01), not {identifier!r}")
    types = values.split_list(read.text("sample_type"))
    material = None
    if not types:
        read.problems.append("sample_type: empty (SAMPLE-02 is required)")
    elif len(types) > 1:
        read.problems.append(
            f"sample_type: one sample type per sample (SAMPLE-02), not {read.text('sample_type')!r}"
        )
    else:
        material = read.term("sample_type", "material_type")
    temperature = read.term("storage_temperature", "storage_temperature")
    created = read.parse("creation_date", values.partial_date)
    site = {c: read.text(c) or None for c in SITE_COLUMNS}
    if any(site.values()) and not (
        site["anatomical_site_ontology"] and site["anatomical_site_version"]
    ):
        read.problems.append(
            "anatomical site: ontology and version are required when any anatomical site"
            " column is given (SAMPLE-05-01/02)"
        )
    diagnoses = read.diagnoses("diagnosis")
    conditions = read.terms("use_access_conditions", "use_access_condition")
    source = read.term("sample_source", "sample_source")
    if len(read.problems) > problems_before or material is None:
        return None
    return SampleFacts(
        identifier,
        material,
        temperature,
        created if isinstance(created, str) else None,
        site,
        diagnoses,
        conditions,
        source,
    )
