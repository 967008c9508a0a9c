"""The NCI Imaging Data Commons as the distribution of ``benchmarks/corpus.py``: real patients,
with their real studies, series, instance counts and dirty header values.

Why: a corpus drawn from made-up tables has made-up fan-out and made-up dirt. The index of
the Imaging Data Commons (IDC), shipped as a parquet file in the PyPI package
``idc-index-data`` (v25: 1,044,191 series of 86,451 patients in 160 public collections), says
how real archives look: patients -> studies -> series -> instances, and the values their
headers hold, blanks, odd spellings and NUL bytes included.

What: the index is read with DuckDB, only the columns used. Patients (``collection_id`` +
``PatientID``) are drawn uniformly, seeded, without replacement, and each brings every series
of theirs in a modality that corpus.py has a template for, grouped into their real studies
(ordered by StudyDate, series by SeriesNumber), with their real instance counts; the last
series is cut so the corpus has exactly N files. These values of each series are written as
the index has them: Modality, BodyPartExamined (absent where the index has none: ~19% of the
rows drawn from, 45% of the whole index), Manufacturer (empty where none), ManufacturerModelName,
SeriesDescription (NUL bytes and other control characters kept), SeriesNumber, StudyDescription,
PatientAge (whatever the index holds: ``066Y``, ``042y``, ``90``, ``N-A``; absent where none),
PatientSex (``F``, ``M``, ``O``, ``U``, ``0000``, ...; empty where none), StudyDate and
SeriesDate (the index stores DA as ``YYYY-MM-DD``; they are written back as ``YYYYMMDD``).
Non-ASCII values get the character set they need (ISO_IR 100, else ISO_IR 192). Everything
else is fresh and never the index's: UIDs (consistent within patient, study and series),
PatientID (``IDC-<seed>-<n>``), name, birth date (empty), accession number, times, weight,
the acquisition values of :func:`corpus.describe_series`, and the pixels. The SOP class is the
template's (a CT Secondary Capture row is written as a CT Image).

Left out, and counted in :meth:`Census.line`: rows of modalities without a template (SR, SEG,
SM, MG, RTSTRUCT, ...: 0.6 M rows, 1.2 M instances in v25) and CT Raw Data Storage series
(projection data, not images: 399 series holding 8 M "instances", up to 91,980 in one). With
those out the largest series has 4,995 instances (a dynamic PET), so counts are not capped.

Dirty rows are drawn as often as the data has them (one patient of 49,291 holds all 240 NUL
SeriesDescriptions). ``dirty_share`` (``--dirty-share``), for tests and stress runs, fills that
share of the patient draws with one dirty series each instead, written as a patient of its
own with one study; the kinds (:data:`DIRT`) are taken in turn, so each appears. The default 0
samples the data as it is.

Determinism: the same index version, templates and seed give the same corpus.
"""

from __future__ import annotations

import itertools
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import corpus
from corpus import SeriesJob, SeriesPlan, StudyPlan, Template

MISSING = (
    "the IDC distribution reads the NCI Imaging Data Commons index: "
    "pip install idc-index-data (or use --distribution synthetic)"
)
#: SOP classes of the index that are not images, left out whatever their modality.
NOT_IMAGES: dict[str, str] = {"1.2.840.10008.5.1.4.1.1.66": "Raw Data Storage"}
#: The index's columns read, in :class:`SeriesRow` order.
COLUMNS: tuple[str, ...] = (
    "collection_id",
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "instanceCount",
    "PatientAge",
    "PatientSex",
    "StudyDate",
    "StudyDescription",
    "BodyPartExamined",
    "Manufacturer",
    "ManufacturerModelName",
    "SeriesDate",
    "SeriesDescription",
    "SeriesNumber",
)
#: A DICOM AS value: three digits and D, W, M or Y.
AGE_STRING = re.compile(r"[0-9]{3}[DWMY]")
SEXES = ("M", "F", "O")
#: Where the index has no StudyDate (3 rows in v25): the day in folder names and content dates.
FALLBACK_DAY = date(2000, 1, 1)
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


class IndexMissing(RuntimeError):
    """idc-index-data (or DuckDB) is not installed."""


@dataclass(frozen=True)
class SeriesRow:
    """One series of the index, as it stands there (``None``: the index has no value)."""

    collection_id: str
    patient_id: str
    study_uid: str
    series_uid: str
    modality: str
    instances: int
    patient_age: str | None
    patient_sex: str | None
    study_date: str | None
    study_description: str | None
    body_part: str | None
    manufacturer: str | None
    model: str | None
    series_date: str | None
    series_description: str | None
    series_number: str | None

    @property
    def patient(self) -> tuple[str, str]:
        return (self.collection_id, self.patient_id)


@dataclass(frozen=True)
class Dirt:
    """A kind of dirty value: its name and whether a row carries it (given the DICOM terms)."""

    name: str
    carried: Callable[[SeriesRow, frozenset[str]], bool]


DIRT: tuple[Dirt, ...] = (
    Dirt("NUL in SeriesDescription", lambda r, _: "\0" in (r.series_description or "")),
    Dirt(
        "PatientAge not an AS string",
        lambda r, _: r.patient_age is not None and not AGE_STRING.fullmatch(r.patient_age),
    ),
    Dirt(
        "PatientSex not M, F or O",
        lambda r, _: r.patient_sex is not None and r.patient_sex not in SEXES,
    ),
    Dirt(
        "BodyPartExamined not a DICOM term",
        lambda r, terms: r.body_part is not None and r.body_part not in terms,
    ),
    Dirt("BodyPartExamined empty", lambda r, _: r.body_part is None),
)
#: A superset of the rows carrying some dirt, to fetch them in one query.
_DIRTY_SQL = (
    "contains(SeriesDescription, chr(0))"
    " OR NOT regexp_full_match(coalesce(PatientAge, '000Y'), '[0-9]{3}[DWMY]')"
    " OR coalesce(PatientSex, 'M') NOT IN ('M', 'F', 'O')"
    " OR BodyPartExamined IS NULL"
    " OR BodyPartExamined NOT IN (SELECT code FROM body_part_terms)"
)


def index_file() -> tuple[Path, str]:
    """Where the installed index is, and the version of idc-index-data."""
    try:
        import idc_index_data
    except ImportError as error:
        raise IndexMissing(MISSING) from error
    path = idc_index_data.IDC_INDEX_PARQUET_FILEPATH
    if path is None or not Path(path).is_file():
        raise IndexMissing(f"idc-index-data is installed without its index file; {MISSING}")
    return Path(path), str(idc_index_data.__version__)


def body_part_terms() -> frozenset[str]:
    """The defined terms of BodyPartExamined (PS3.16 Annex L), from the package's vocabulary."""
    from imaging_biobank.vocab import catalog

    return frozenset(row["code"] for row in catalog.rows("body-part-examined.annex-l"))


def dicom_date(value: str | None) -> str | None:
    """The index's ``YYYY-MM-DD`` as DICOM DA ``YYYYMMDD``; anything else as it is."""
    if value is None:
        return None
    match = _ISO_DATE.fullmatch(value)
    return "".join(match.groups()) if match else value


def _years(age: str | None) -> float | None:
    """Age in years of an AS value (in any case), or None for anything else."""
    match = re.fullmatch(r"([0-9]{3})([DWMY])", (age or "").upper())
    if not match:
        return None
    per_year = {"D": 365.25, "W": 52.18, "M": 12.0, "Y": 1.0}[match.group(2)]
    return int(match.group(1)) / per_year


def _day(value: str | None) -> date | None:
    """The calendar day of an index date, if it is one."""
    match = _ISO_DATE.fullmatch(value or "")
    if not match:
        return None
    try:
        return date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


@dataclass(frozen=True)
class Census:
    """The index, and how much of it a corpus can be drawn from with the templates there are."""

    version: str
    series: int
    instances: int
    patients: int
    modalities: tuple[str, ...]  #: drawn from: those with a template
    drawn_series: int
    drawn_instances: int
    drawn_patients: int
    no_template: dict[str, tuple[int, int]]  #: modality -> (series, instances) left out
    not_images: dict[str, tuple[int, int]]  #: "CT Raw Data Storage" -> (series, instances)

    def line(self) -> str:
        """What the corpus is drawn from, and what was left out."""
        left = sorted(self.no_template.items(), key=lambda kv: -kv[1][1])
        left_series = sum(s for s, _ in self.no_template.values())
        left_instances = sum(i for _, i in self.no_template.values())
        kinds = ", ".join(f"{m} {s:,} ({i:,})" for m, (s, i) in left)
        skipped = "; ".join(
            f"{name}: {s:,} series ({i:,} instances)" for name, (s, i) in self.not_images.items()
        )
        return (
            f"IDC index {self.version}: {self.series:,} series ({self.instances:,} instances) "
            f"of {self.patients:,} patients; drawn from {self.drawn_series:,} series "
            f"({self.drawn_instances:,} instances) of {self.drawn_patients:,} patients in "
            f"{', '.join(self.modalities)}; left out, no template: {left_series:,} series "
            f"({left_instances:,} instances): {kinds}; not images: {skipped or 'none'}"
        )


@dataclass
class WrittenValues:
    """The dirty values that went into the files: per kind, (series, files)."""

    series: int = 0
    files: int = 0
    nul_descriptions: list[int] = field(default_factory=lambda: [0, 0])
    body_part_absent: list[int] = field(default_factory=lambda: [0, 0])
    body_parts: Counter[str] = field(default_factory=Counter)  #: spelling -> series
    body_parts_not_terms: set[str] = field(default_factory=set)
    ages_as: int = 0  #: series with an AS string
    ages_other: Counter[str] = field(default_factory=Counter)
    ages_absent: int = 0
    sexes: Counter[str] = field(default_factory=Counter)  #: "" for none

    def add(self, row: SeriesRow, files: int, terms: frozenset[str]) -> None:
        self.series += 1
        self.files += files
        if "\0" in (row.series_description or ""):
            self.nul_descriptions[0] += 1
            self.nul_descriptions[1] += files
        if row.body_part is None:
            self.body_part_absent[0] += 1
            self.body_part_absent[1] += files
        else:
            self.body_parts[row.body_part] += 1
            if row.body_part not in terms:
                self.body_parts_not_terms.add(row.body_part)
        if row.patient_age is None:
            self.ages_absent += 1
        elif AGE_STRING.fullmatch(row.patient_age):
            self.ages_as += 1
        else:
            self.ages_other[row.patient_age] += 1
        self.sexes[row.patient_sex or ""] += 1

    def line(self) -> str:
        """The counts the command prints."""
        odd_parts = ", ".join(sorted(self.body_parts_not_terms)) or "none"
        odd_ages = ", ".join(f"{a!r} {n}" for a, n in self.ages_other.most_common())
        sexes = ", ".join(
            f"{s if s in SEXES else repr(s) if s else 'empty'} {n}"
            for s, n in self.sexes.most_common()
        )
        return (
            f"dirty values written (series/files): NUL in SeriesDescription "
            f"{self.nul_descriptions[0]}/{self.nul_descriptions[1]}; BodyPartExamined absent "
            f"{self.body_part_absent[0]}/{self.body_part_absent[1]}, "
            f"{len(self.body_parts)} spellings, {len(self.body_parts_not_terms)} not DICOM "
            f"terms ({odd_parts}); PatientAge AS {self.ages_as}, absent {self.ages_absent}, "
            f"other {sum(self.ages_other.values())}{f' ({odd_ages})' if odd_ages else ''}; "
            f"PatientSex {sexes}"
        )


@dataclass(frozen=True)
class Report:
    """What one planning drew: the census, the draws, the dirty values, the time it took."""

    census: Census
    #: Per patient slot of the corpus, in order: the real patient (collection_id, PatientID)
    #: drawn whole, or None for a dirty series drawn alone. Never written to the files.
    drawn: tuple[tuple[str, str] | None, ...]
    written: WrittenValues
    seconds: float

    @property
    def patients(self) -> int:
        """Real patients drawn whole."""
        return sum(1 for d in self.drawn if d is not None)

    @property
    def dirty_series(self) -> int:
        """Dirty series drawn alone (``dirty_share``)."""
        return sum(1 for d in self.drawn if d is None)


class IdcIndex:
    """The index opened with DuckDB: its census, its patients, and the rows of some of them."""

    def __init__(self, modalities: Iterable[str], path: Path | None = None) -> None:
        try:
            import duckdb
        except ImportError as error:
            raise IndexMissing(
                MISSING.replace("idc-index-data", "duckdb idc-index-data")
            ) from error
        default, self.version = index_file()
        self.path = path or default
        self.modalities = tuple(sorted(set(modalities)))
        self.terms = body_part_terms()
        self.con = duckdb.connect()
        source = str(self.path).replace("'", "''")
        self.con.execute(f"CREATE VIEW idx AS SELECT * FROM read_parquet('{source}')")
        self.con.execute(
            "CREATE TEMP TABLE body_part_terms AS SELECT unnest(?::VARCHAR[]) AS code",
            [sorted(self.terms)],
        )
        modality_list = ", ".join(_quote(m) for m in self.modalities) or "NULL"
        not_images = ", ".join(_quote(uid) for uid in NOT_IMAGES)
        self.con.execute(
            f"CREATE VIEW drawable AS SELECT {', '.join(COLUMNS)} FROM idx "
            f"WHERE Modality IN ({modality_list}) AND SOPClassUID NOT IN ({not_images}) "
            "AND instanceCount > 0"
        )
        self._not_images_sql = f"SOPClassUID IN ({not_images})"

    def close(self) -> None:
        self.con.close()

    def census(self) -> Census:
        """Series, instances and patients of the index; what is drawn from and left out."""
        series, instances, patients = self.con.execute(
            "SELECT count(*), sum(instanceCount), count(DISTINCT (collection_id, PatientID)) "
            "FROM idx"
        ).fetchone() or (0, 0, 0)
        drawn = self.con.execute(
            "SELECT count(*), sum(instanceCount), count(DISTINCT (collection_id, PatientID)) "
            "FROM drawable"
        ).fetchone() or (0, 0, 0)
        no_template: dict[str, tuple[int, int]] = {}
        not_images: dict[str, tuple[int, int]] = {}
        grouped = self.con.execute(
            f"SELECT Modality, SOPClassUID, {self._not_images_sql}, count(*), sum(instanceCount) "
            "FROM idx GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        for modality, sop_class, not_image, n_series, n_instances in grouped:
            if modality in self.modalities and not not_image:
                continue
            if not_image and modality in self.modalities:
                name = f"{modality} {NOT_IMAGES[sop_class]}"
                s, i = not_images.get(name, (0, 0))
                not_images[name] = (s + n_series, i + int(n_instances or 0))
            else:
                key = str(modality)
                s, i = no_template.get(key, (0, 0))
                no_template[key] = (s + n_series, i + int(n_instances or 0))
        return Census(
            version=self.version,
            series=int(series),
            instances=int(instances or 0),
            patients=int(patients),
            modalities=self.modalities,
            drawn_series=int(drawn[0]),
            drawn_instances=int(drawn[1] or 0),
            drawn_patients=int(drawn[2]),
            no_template=no_template,
            not_images=not_images,
        )

    def patients(self) -> list[tuple[str, str, int]]:
        """Every patient with a series to draw: (collection_id, PatientID, instances), sorted."""
        return [
            (c, p, int(n))
            for c, p, n in self.con.execute(
                "SELECT collection_id, PatientID, sum(instanceCount) FROM drawable "
                "GROUP BY ALL ORDER BY ALL"
            ).fetchall()
        ]

    def rows_of(
        self, patients: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], list[SeriesRow]]:
        """The series of ``patients``, each patient's in study and series order."""
        found: dict[tuple[str, str], list[SeriesRow]] = {key: [] for key in patients}
        if not patients:
            return found
        result = self.con.execute(
            f"SELECT {', '.join(f'd.{c}' for c in COLUMNS)} FROM drawable d JOIN "
            "(SELECT unnest(?::VARCHAR[]) AS c, unnest(?::VARCHAR[]) AS p) k "
            "ON d.collection_id = k.c AND d.PatientID = k.p "
            f"ORDER BY {_ROW_ORDER}",
            [[c for c, _ in patients], [p for _, p in patients]],
        )
        for row in _rows(result.fetchall()):
            found[row.patient].append(row)
        return found

    def dirty_rows(self) -> list[SeriesRow]:
        """Every row carrying one of the kinds of :data:`DIRT`, in a fixed order."""
        result = self.con.execute(
            f"SELECT {', '.join(COLUMNS)} FROM drawable WHERE {_DIRTY_SQL} ORDER BY {_ROW_ORDER}"
        )
        return [row for row in _rows(result.fetchall()) if any(_kinds(row, self.terms))]


#: Patients, then their studies by date, then series by number: the order series are written in.
_ROW_ORDER = (
    "collection_id, PatientID, StudyDate NULLS LAST, StudyInstanceUID, "
    "try_cast(SeriesNumber AS BIGINT) NULLS LAST, SeriesNumber, SeriesInstanceUID"
)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _rows(records: Iterable[tuple[Any, ...]]) -> Iterator[SeriesRow]:
    for record in records:
        values = list(record)
        values[5] = int(values[5])
        yield SeriesRow(*values)


def _kinds(row: SeriesRow, terms: frozenset[str]) -> list[str]:
    return [dirt.name for dirt in DIRT if dirt.carried(row, terms)]


def _charset(values: Mapping[str, Any], current: Any) -> str | None:
    """The SpecificCharacterSet ``values`` need, if the template's ``current`` one won't do."""
    texts = [v for v in values.values() if isinstance(v, str)]
    if all(t.isascii() for t in texts):
        return None
    terms = [current] if isinstance(current, str) else list(current or [])
    if "ISO_IR 192" in terms:
        return None
    try:
        for text in texts:
            text.encode("latin-1")
    except UnicodeEncodeError:
        return "ISO_IR 192"
    return None if terms == ["ISO_IR 100"] else "ISO_IR 100"


def row_values(row: SeriesRow) -> dict[str, Any]:
    """The header values a series takes from its index row (``None``: element left out).

    Type 2 elements (Manufacturer, SeriesNumber, PatientSex, StudyDate) are written empty
    where the index has no value; the others are left out.
    """
    return {
        "Manufacturer": row.manufacturer or "",
        "ManufacturerModelName": row.model,
        "BodyPartExamined": row.body_part,
        "SeriesDescription": row.series_description,
        "SeriesNumber": row.series_number or "",
        "StudyDescription": row.study_description,
        "PatientAge": row.patient_age,
        "PatientSex": row.patient_sex or "",
        "StudyDate": dicom_date(row.study_date) or "",
        "SeriesDate": dicom_date(row.series_date),
    }


@dataclass
class _Draw:
    """One patient slot: a real patient drawn whole, or one dirty series."""

    patient: tuple[str, str] | None = None
    row: SeriesRow | None = None


class IdcDistribution:
    """Lays out a corpus from IDC patients: the ``planner`` :func:`corpus.make_corpus` takes.

    After a call, :attr:`report` says what was drawn and which dirty values were written.
    """

    def __init__(self, dirty_share: float = 0.0, path: Path | None = None) -> None:
        if not 0.0 <= dirty_share <= 1.0:
            raise ValueError(f"dirty share must be between 0 and 1, not {dirty_share}")
        self.dirty_share = dirty_share
        self.path = path or index_file()[0]  # fails now, before any work, when not installed
        self.report: Report | None = None

    def __call__(self, n: int, seed: int, templates: Mapping[str, Template]) -> list[SeriesJob]:
        started = time.perf_counter()
        index = IdcIndex({t.modality for t in templates.values()}, self.path)
        try:
            census = index.census()
            patients = index.patients()
            if not patients:
                raise RuntimeError("no series of the IDC index has a modality with a template")
            rng = random.Random(seed)
            dirty = index.dirty_rows() if self.dirty_share > 0 else []
            draws = self._draw(n, rng, patients, dirty, index.terms)
            drawn = dict.fromkeys(d.patient for d in draws if d.patient is not None)
            rows = index.rows_of(list(drawn))
        finally:
            index.close()

        layout = _Layout(n, seed, rng, templates)
        for k, draw in enumerate(draws):
            if draw.row is not None:
                layout.add_patient(k, [draw.row])
            elif draw.patient is not None:
                layout.add_patient(k, rows[draw.patient])
            if layout.remaining == 0:
                draws = draws[: k + 1]
                break
        written = WrittenValues()
        for job, row in zip(layout.jobs, layout.rows, strict=True):
            written.add(row, job.plan.n_instances, index.terms)
        self.report = Report(
            census=census,
            drawn=tuple(d.patient for d in draws),
            written=written,
            seconds=time.perf_counter() - started,
        )
        return layout.jobs

    def _draw(
        self,
        n: int,
        rng: random.Random,
        patients: Sequence[tuple[str, str, int]],
        dirty: Sequence[SeriesRow],
        terms: frozenset[str],
    ) -> list[_Draw]:
        """Patient slots until they hold at least ``n`` instances."""
        pools: dict[str, list[SeriesRow]] = {}
        for row in dirty:
            for kind in _kinds(row, terms):
                pools.setdefault(kind, []).append(row)
        kinds = itertools.cycle([d.name for d in DIRT if d.name in pools])
        order: list[int] = []
        draws: list[_Draw] = []
        total = 0
        while total < n:
            if self.dirty_share > 0 and pools and rng.random() < self.dirty_share:
                row = rng.choice(pools[next(kinds)])
                draws.append(_Draw(row=row))
                total += row.instances
                continue
            if not order:  # a new pass over all patients once every one was drawn
                order = list(range(len(patients)))
                rng.shuffle(order)
                order.reverse()
            collection, patient, instances = patients[order.pop()]
            draws.append(_Draw(patient=(collection, patient)))
            total += instances
        return draws


class _Layout:
    """Series jobs of the patient slots, in order, until exactly ``n`` files are laid out."""

    def __init__(
        self, n: int, seed: int, rng: random.Random, templates: Mapping[str, Template]
    ) -> None:
        self.n, self.seed, self.rng, self.templates = n, seed, rng, templates
        self.by_modality: dict[str, list[Template]] = {}
        for t in templates.values():
            self.by_modality.setdefault(t.modality, []).append(t)
        self.jobs: list[SeriesJob] = []
        self.rows: list[SeriesRow] = []  #: the index row of each job
        self.remaining = n

    def add_patient(self, k: int, series: Sequence[SeriesRow]) -> None:
        """Lay out patient slot ``k`` (0-based): a new patient holding ``series``."""
        rng, seed = self.rng, self.seed
        patient, _ = corpus._draw_patient(rng, seed, k)  # name, weight and size: not in the index
        patient = replace(
            patient,
            patient_id=f"IDC-{seed}-{k + 1:06d}",
            sex=series[0].patient_sex or "",
            birth_date_known=False,
        )
        years = _years(series[0].patient_age)
        if years is not None:  # a weight and height that fit the real age (PET SUVs use them)
            if years < 18:
                weight, size = 3.5 + 3.2 * years, 0.5 + 0.065 * years
            else:
                weight, size = min(160.0, max(40.0, rng.gauss(78, 15))), rng.uniform(1.5, 1.95)
            patient = replace(patient, weight_kg=round(weight, 1), size_m=round(size, 2))
        studies: dict[str, list[SeriesRow]] = {}
        for row in series:
            studies.setdefault(row.study_uid, []).append(row)
        for study_index, study_rows in enumerate(studies.values()):
            first = study_rows[0]
            day = _day(first.study_date) or _day(first.series_date) or FALLBACK_DAY
            start = datetime.combine(day, datetime.min.time()) + timedelta(
                seconds=rng.randint(7 * 3600, 18 * 3600)
            )
            study = StudyPlan(
                index=study_index,
                uid=corpus.derive_uid(seed, "idc-study", k, study_index),
                when=start,
                accession=f"A{rng.randint(10**9, 10**10 - 1)}",
                study_id=str(rng.randint(1, 99999)),
                description=first.study_description or "",
            )
            clock = start
            day_end = datetime.combine(start.date(), datetime.max.time()).replace(microsecond=0)
            for position, row in enumerate(study_rows):
                if self.remaining == 0:
                    return
                plan = _series_plan(rng, row, self.templates, self.by_modality)
                if plan.n_instances > self.remaining:
                    plan = plan.truncated(self.remaining)
                clock = min(clock + timedelta(seconds=rng.randint(60, 900)), day_end)
                series_day = _day(row.series_date)
                when = datetime.combine(series_day, clock.time()) if series_day else clock
                self.jobs.append(
                    SeriesJob(
                        index=len(self.jobs),
                        first_file=self.n - self.remaining,
                        number=position + 1,
                        when=when,
                        patient=patient,
                        study=study,
                        plan=plan,
                    )
                )
                self.rows.append(row)
                self.remaining -= plan.n_instances


def _series_plan(
    rng: random.Random,
    row: SeriesRow,
    templates: Mapping[str, Template],
    by_modality: Mapping[str, Sequence[Template]],
) -> SeriesPlan:
    """A series of the row's modality and size, acquisition values drawn, the row's values set."""
    plan = corpus.describe_series(
        rng, row.modality, by_modality[row.modality], n_instances=row.instances
    )
    values = row_values(row)
    charset = _charset(values, templates[plan.template].dataset.get("SpecificCharacterSet"))
    if charset is not None:
        values["SpecificCharacterSet"] = charset
    return replace(plan, overrides={**plan.overrides, **values})
