"""Importing donors, samples and events from a registry file into the model.

Rows are checked first (``rows.check``), then against what is stored: a donor's sex and
birth date may be filled in but never contradicted, an event date needs a birth date known
from the row, an earlier row or the database. Good rows are written in batches, one
transaction each, keyed so that importing the same file again changes nothing and an
interrupted import resumes without duplicates. Refused rows are returned with their reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, delete, insert, select, update

from imaging_biobank.catalogue.descriptors import collections_of_donors, derive_descriptors
from imaging_biobank.db._schema import metadata
from imaging_biobank.db.lookup import FoundCollection, find_collection
from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.samples import values
from imaging_biobank.samples.columns import map_headers
from imaging_biobank.samples.donors import UNKNOWN_SEX, donor_ids
from imaging_biobank.samples.rows import Checked, DonorFacts, EventFacts, SampleFacts, check
from imaging_biobank.samples.table import read_table
from imaging_biobank.samples.terms import TermRows

T = metadata.tables
BATCH = 500
KINDS = ("donors", "samples", "events")


@dataclass
class Refused:
    row: int
    reason: str


@dataclass
class ImportSummary:
    kind: str
    collection: str
    rows: int = 0
    stored: int = 0  # rows whose data are now in the database (new or changed)
    unchanged: int = 0
    new_donors: int = 0
    events: int = 0
    refused: list[Refused] = field(default_factory=list)


@dataclass
class _Donor:
    id: int
    sex: str
    birth_date: str | None


def import_registry(
    engine: Engine,
    kind: str,
    path: Path,
    collection: str,
    pseudonymiser: Pseudonymiser,
    sheet: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import a donors, samples or events file into ``collection``. Raises ``TableError``
    (nothing imported) when the file or its header cannot be used, ``LookupError`` for an
    unknown collection."""
    table = read_table(path, sheet)
    mapping = map_headers(kind, table.headers)
    with engine.connect() as conn:
        found = find_collection(conn, collection, "sample_tissue" if kind == "samples" else None)
    summary = ImportSummary(kind, found.identifier, rows=len(table.rows))
    writer = _Writer(kind, found, pseudonymiser, summary)
    for start in range(0, len(table.rows), BATCH):
        batch = table.rows[start : start + BATCH]
        with engine.begin() as conn:
            writer.begin(conn)
            for row in batch:
                if row.error:
                    summary.refused.append(Refused(row.number, row.error))
                    continue
                cells = {mapping[h]: v for h, v in row.cells.items()}
                writer.write(check(kind, row.number, cells))
        if progress is not None:
            progress(len(batch))
    with engine.begin() as conn:
        # the donors' other collections too: an event's diagnosis is every one's descriptor
        donors = [donor.id for donor in writer.donors.values()]
        for collection_id in sorted({found.id} | collections_of_donors(conn, donors)):
            derive_descriptors(conn, collection_id)
    return summary


class _Writer:
    def __init__(
        self,
        kind: str,
        collection: FoundCollection,
        pseudonymiser: Pseudonymiser,
        summary: ImportSummary,
    ):
        self.kind = kind
        self.collection = collection
        self.pseudonymiser = pseudonymiser
        self.summary = summary
        self.donors: dict[str, _Donor] = {}
        self.members: set[int] = set()
        self.samples_seen: dict[str, int] = {}  # sample id -> first row
        self.conn: Connection | None = None
        self.terms: TermRows | None = None

    def begin(self, conn: Connection) -> None:
        self.conn = conn
        self.terms = TermRows(conn)

    # --- checks against what is stored -------------------------------------------------

    def _donor(self, pseudonym: str) -> _Donor | None:
        if pseudonym not in self.donors:
            d, sex = T["sample_donor"], T["sex"]
            assert self.conn is not None
            row = self.conn.execute(
                select(d.c.id, sex.c.code, d.c.birth_date)
                .join(sex, sex.c.id == d.c.sex_id)
                .where(d.c.pseudonym == pseudonym)
            ).first()
            if row is None:
                return None
            self.donors[pseudonym] = _Donor(int(row.id), str(row.code), row.birth_date)
        return self.donors[pseudonym]

    def _conflicts(self, checked: Checked, stored: _Donor | None) -> list[str]:
        donor = checked.donor
        assert donor is not None
        problems = []
        if stored is not None:
            if donor.sex and stored.sex != UNKNOWN_SEX and donor.sex.code != stored.sex:
                problems.append(
                    f"sex: the donor is stored as {stored.sex}; this row says {donor.sex.code}"
                    " (one sex per donor)"
                )
            if donor.birth_date and stored.birth_date and donor.birth_date != stored.birth_date:
                problems.append(
                    f"birth_date: the donor is stored with {stored.birth_date}; this row says"
                    f" {donor.birth_date}"
                )
        birth = donor.birth_date or (stored.birth_date if stored else None)
        event = checked.event
        if event is not None and event.event_date:
            if not birth:
                problems.append(
                    "event_date needs the donor's birth date (SAMPLEDONOR-04), which is not"
                    " given in this row nor known for the donor; give birth_date or use"
                    " age_at_event"
                )
            elif values.surely_before(birth, event.event_date):
                problems.append(f"event_date {event.event_date} is before the birth date {birth}")
        sample = checked.sample
        if sample is not None:
            if birth and sample.creation_date and values.surely_before(birth, sample.creation_date):
                problems.append(
                    f"creation_date {sample.creation_date} is before the birth date {birth}"
                )
            first = self.samples_seen.get(sample.identifier)
            if first is not None:
                problems.append(f"sample_id {sample.identifier!r} is already in row {first}")
        return problems

    # --- writing -------------------------------------------------------------------------

    def write(self, checked: Checked) -> None:
        if checked.donor is None or checked.problems:
            self.summary.refused.append(Refused(checked.number, "; ".join(checked.problems)))
            return
        pseudonym = self.pseudonymiser.donor(checked.donor.source_id)
        stored = self._donor(pseudonym)
        problems = self._conflicts(checked, stored)
        if problems:
            self.summary.refused.append(Refused(checked.number, "; ".join(problems)))
            return
        changed = self._write_donor(pseudonym, checked.donor, stored)
        donor = self.donors[pseudonym]
        if checked.event is not None:
            changed |= self._write_event(donor.id, pseudonym, checked.event)
        if checked.sample is not None:
            self.samples_seen[checked.sample.identifier] = checked.number
            changed |= self._write_sample(donor.id, checked.sample)
        if changed:
            self.summary.stored += 1
        else:
            self.summary.unchanged += 1

    def _write_donor(self, pseudonym: str, facts: DonorFacts, stored: _Donor | None) -> bool:
        conn, terms = self.conn, self.terms
        assert conn is not None and terms is not None
        d = T["sample_donor"]
        changed = False
        if stored is None:
            id_ = donor_ids(conn, [pseudonym])[pseudonym]
            stored = _Donor(id_, UNKNOWN_SEX, None)
            self.donors[pseudonym] = stored
            self.summary.new_donors += 1
            changed = True
        new_values: dict[str, object] = {}
        if facts.sex is not None and facts.sex.code != stored.sex:
            new_values["sex_id"] = terms.id(facts.sex)
            stored.sex = facts.sex.code
        if facts.birth_date and not stored.birth_date:
            new_values["birth_date"] = facts.birth_date
            stored.birth_date = facts.birth_date
        if new_values:
            conn.execute(update(d).where(d.c.id == stored.id).values(**new_values))
            changed = True
        if stored.id not in self.members:
            link = T["collection_sample_donor"]
            exists = conn.execute(
                select(link.c.sample_donor_id).where(
                    link.c.collection_id == self.collection.id,
                    link.c.sample_donor_id == stored.id,
                )
            ).first()
            if exists is None:
                conn.execute(
                    insert(link).values(collection_id=self.collection.id, sample_donor_id=stored.id)
                )
                changed = True
            self.members.add(stored.id)
        if facts.dataset_types is not None:
            changed |= self._set_links(
                "sample_donor_miabis_dataset_type",
                "sample_donor_id",
                stored.id,
                "miabis_dataset_type_id",
                {terms.id(t) for t in facts.dataset_types},
            )
        if facts.conditions is not None:
            changed |= self._set_links(
                "sample_donor_use_access_condition",
                "sample_donor_id",
                stored.id,
                "use_access_condition_id",
                {terms.id(t) for t in facts.conditions},
            )
        return changed

    def _write_event(self, donor_id: int, pseudonym: str, event: EventFacts) -> bool:
        conn, terms = self.conn, self.terms
        assert conn is not None and terms is not None
        e = T["event"]
        if event.source_id:
            basis = f"{pseudonym}|id|{event.source_id}"
        else:
            what = event.event_date or f"{event.age}{event.age_unit.code if event.age_unit else ''}"
            code = event.diagnosis[0] if event.diagnosis else ""
            basis = f"{pseudonym}|{event.event_type}|{what}|{code}"
        identifier = self.pseudonymiser.token("event", basis, 32)
        row = {
            "identifier": identifier,
            "sample_donor_id": donor_id,
            "event_type": event.event_type,
            "event_date": event.event_date,
            "age_at_event": event.age,
            "age_unit_id": terms.id(event.age_unit) if event.age_unit else None,
            "disease_id": terms.disease_id(*event.diagnosis) if event.diagnosis else None,
            "description": event.description,
        }
        stored = conn.execute(select(e).where(e.c.identifier == identifier)).mappings().first()
        if stored is None:
            conn.execute(insert(e).values(**row))
            self.summary.events += 1
            return True
        changes = {k: v for k, v in row.items() if stored[k] != v}
        if changes:
            conn.execute(update(e).where(e.c.id == stored["id"]).values(**changes))
        return bool(changes)

    def _write_sample(self, donor_id: int, sample: SampleFacts) -> bool:
        conn, terms = self.conn, self.terms
        assert conn is not None and terms is not None
        s = T["sample"]
        row = {
            "identifier": sample.identifier,
            "collection_id": self.collection.id,
            "sample_donor_id": donor_id,
            "material_type_id": terms.id(sample.material_type),
            "storage_temperature_id": (
                terms.id(sample.storage_temperature) if sample.storage_temperature else None
            ),
            "creation_date": sample.creation_date,
            "sample_source_id": terms.id(sample.sample_source) if sample.sample_source else None,
            **sample.anatomical_site,
        }
        stored = (
            conn.execute(
                select(s).where(
                    s.c.collection_id == self.collection.id, s.c.identifier == sample.identifier
                )
            )
            .mappings()
            .first()
        )
        if stored is None:
            sample_id = conn.execute(insert(s).values(**row).returning(s.c.id)).scalar_one()
            changed = True
        else:
            sample_id = stored["id"]
            changes = {k: v for k, v in row.items() if stored[k] != v}
            if changes:
                conn.execute(update(s).where(s.c.id == sample_id).values(**changes))
            changed = bool(changes)
        changed |= self._set_links(
            "sample_disease",
            "sample_id",
            sample_id,
            "disease_id",
            {terms.disease_id(code, term) for code, term in sample.diagnoses},
        )
        changed |= self._set_links(
            "sample_use_access_condition",
            "sample_id",
            sample_id,
            "use_access_condition_id",
            {terms.id(t) for t in sample.conditions},
        )
        return changed

    def _set_links(
        self, name: str, owner: str, owner_id: int, target: str, wanted: set[int]
    ) -> bool:
        conn = self.conn
        assert conn is not None
        table = T[name]
        stored = set(
            conn.execute(select(table.c[target]).where(table.c[owner] == owner_id)).scalars()
        )
        if stored == wanted:
            return False
        if stored - wanted:
            conn.execute(
                delete(table).where(
                    table.c[owner] == owner_id, table.c[target].in_(stored - wanted)
                )
            )
        if wanted - stored:
            conn.execute(insert(table), [{owner: owner_id, target: t} for t in wanted - stored])
        return True
