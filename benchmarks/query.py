"""Cohort query speed on a database of 10^6 instances: SQLite and PostgreSQL against DuckDB,
on the same rows, with the same SQL, in one run.

Why: issue 7 asks that a series-level cohort filter with a numeric acquisition parameter
(``modality = CT and body_part = ABDOMEN and slice_thickness <= 3``) answers with p95 at most
50 ms on SQLite and on PostgreSQL, that facet counts take at most 100 ms, and that opening the
database and answering the first query takes at most 1 s and 150 MB.

The data: a database made by ``imaging-biobank init`` and ``register examples/primage.yaml``,
then filled with bulk SQL inserts (rows as the writers store them: vocabulary ids resolved the
way ingest and the sample importer resolve them, derived collection descriptors recomputed by
``catalogue.descriptors``). ``--instances`` instances (default 10^6) spread over one donor
per 50 instances (20,000 donors), 1-5 imaging studies each, 1-8 series per study (CT with a
localizer, thin and thick axial series and a dose report; MR sequences; PET with its CT; US;
CR/DX; segmentations), body parts by modality and cohort (some empty, some verbatim
non-standard values such as ``ABD``), slice thickness, kVp, field strengths, manufacturers
and models (one ``modality_information`` row per device), reconstruction kernels; samples of
the neuroblastoma donors (frozen and FFPE tissue, plasma, serum, blood, DNA, with storage
temperatures), ICD-10 diagnoses on events and samples, a few donors without commercial-use
consent. Instance counts per series keep each series type's shape (axial CT >> localizer) and
are scaled so that they add up to ``--instances``. Seeded: the same rows every run.

It is built once and cached under ``--work`` (default /tmp/ib-bench-query): the SQLite file,
the rows as CSV, the DuckDB file. On every run the SQLite file is brought to the current
schema with ``imaging-biobank init`` (so new indexes are built on it). PostgreSQL: a private
cluster started here on loopback (tests/servers.py; Debian's server binaries) or ``--pg URL``
(an empty database, or one this benchmark loaded before); it gets ``init``, ``register`` and
the same rows by COPY, then VACUUM ANALYZE (what autovacuum does after a bulk load; done
here so that it does not run during the timings). SQLite is not
ANALYZEd: nothing in the application does that, so its planner runs as a user's would.

Baseline: DuckDB (in process, columnar, no indexes) holding a copy of every table. The
statements are the engine's own: the benchmark hands ``count()`` and ``facets()`` a small
connection whose ``execute`` compiles each Core statement for PostgreSQL with literal values
and runs it in DuckDB, so the three backends answer exactly the same queries, vocabulary
look-ups included.

Measured, per query and backend: p50 and p95 of the wall-clock time over ``--repeat`` runs
(default 50, after 2 warm-up runs) of the whole library call on an open connection, and the
ratio to DuckDB's p50/p95; beside them the mean CPU time per run of the process that did the
work (this process for SQLite and DuckDB, the server's backend process for PostgreSQL), which
other work on a shared machine hardly changes, and the load average around each backend's
timings. SQLite is timed before the PostgreSQL server starts, so they do not compete.
Then, in a fresh subprocess each (so imports, vocabulary loading and connecting are
paid): the wall time and peak RSS (``wait4`` maximum resident set of that child) of
``imaging-biobank query "<issue example>" --db URL --json`` as a user runs it, and of the
same answer through the library (``python -c``: import, make_engine, count); for DuckDB the
child imports duckdb, opens the file and runs the same statements.

    .venv/bin/python benchmarks/query.py [--instances 1000000] [--work DIR] [--pg URL]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from sqlalchemy import Date, DateTime, Float, Integer, String, Text, text  # noqa: E402
from sqlalchemy.dialects import postgresql  # noqa: E402
from sqlalchemy.types import BigInteger, Boolean  # noqa: E402

from imaging_biobank.db._schema import metadata  # noqa: E402

CLI = [sys.executable, "-m", "imaging_biobank"]
GENERATOR = "3"  # bump when the rows change: the cache is rebuilt
SEED = 7
BIOBANK = "bbmri-eric:ID:ES_PRIMAGE:collection:"
EXAMPLE = "modality = CT and body_part = ABDOMEN and slice_thickness <= 3"
T = metadata.tables

# ---------------------------------------------------------------------------------------------
# the rows


@dataclass(frozen=True)
class SeriesKind:
    """One kind of series in a study: its modality, SOP class, how many instances (a
    triangular draw), slice thicknesses it is acquired with, and how often it is present."""

    modality: str
    sop_class: str
    instances: tuple[int, int, int]  # low, mode, high
    thickness: tuple[float, ...] = ()
    probability: float = 1.0
    repeat: tuple[int, int] = (1, 1)


CT, MR = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"
PT, US = "1.2.840.10008.5.1.4.1.1.128", "1.2.840.10008.5.1.4.1.1.6.1"
CR, DX = "1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1"
NM, SEG = "1.2.840.10008.5.1.4.1.1.20", "1.2.840.10008.5.1.4.1.1.66.4"
RTSTRUCT, DOSE_SR = "1.2.840.10008.5.1.4.1.1.481.3", "1.2.840.10008.5.1.4.1.1.88.67"

STUDY_TYPES: dict[str, list[SeriesKind]] = {
    "CT": [
        SeriesKind("CT", CT, (1, 2, 3), (2.0, 5.0)),  # localizer
        SeriesKind("CT", CT, (150, 350, 900), (0.625, 1.0, 1.25, 2.0, 2.5, 3.0), repeat=(1, 3)),
        SeriesKind("CT", CT, (40, 80, 200), (3.0, 5.0, 5.0, 7.5), probability=0.6),
        SeriesKind("SR", DOSE_SR, (1, 1, 1), probability=0.4),
        SeriesKind("SEG", SEG, (1, 1, 1), probability=0.1),
        SeriesKind("RTSTRUCT", RTSTRUCT, (1, 1, 1), probability=0.05),
    ],
    "MR": [
        SeriesKind("MR", MR, (3, 3, 3), (5.0, 8.0, 10.0)),  # localizer
        SeriesKind("MR", MR, (20, 30, 200), (1.0, 3.0, 4.0, 5.0, 6.0), repeat=(2, 6)),
        SeriesKind("SEG", SEG, (1, 1, 1), probability=0.1),
    ],
    "PT": [
        SeriesKind("PT", PT, (150, 300, 500), (2.0, 3.27, 4.0, 5.0)),
        SeriesKind("CT", CT, (150, 250, 400), (3.75, 5.0)),
        SeriesKind("CT", CT, (1, 1, 2), (2.0,)),
    ],
    "NM": [SeriesKind("NM", NM, (1, 1, 4), repeat=(1, 3))],
    "US": [SeriesKind("US", US, (5, 15, 60), repeat=(1, 2))],
    "CR": [SeriesKind("CR", CR, (1, 1, 2), repeat=(1, 3))],
    "DX": [SeriesKind("DX", DX, (1, 1, 2), repeat=(1, 2))],
}

# per cohort: share of donors, study types, body parts per study type (None: left empty),
# ages at the first study, diagnoses (ICD-10, weights)
COHORTS: dict[str, dict[str, Any]] = {
    "NB_IMAGING": {
        "share": 0.58,
        "studies": {"CT": 45, "MR": 30, "PT": 8, "NM": 7, "US": 8, "CR": 2},
        "body": {
            "CT": {"ABDOMEN": 40, "CHEST": 12, "CHESTABDPELVIS": 10, "ABDOMENPELVIS": 10,
                   "PELVIS": 5, "HEAD": 3, "ABD": 5, "Abdomen": 3, None: 12},
            "MR": {"ABDOMEN": 45, "ABDOMENPELVIS": 10, "SPINE": 10, "WHOLEBODY": 5,
                   "HEAD": 5, "ABD": 5, None: 20},
            "PT": {"WHOLEBODY": 60, "CHESTABDPELVIS": 20, None: 20},
            "NM": {"WHOLEBODY": 80, None: 20},
            "US": {"ABDOMEN": 70, "NECK": 5, None: 25},
            "CR": {"CHEST": 80, "ABDOMEN": 10, None: 10},
        },
        "age": (0.0, 9.0),
        "diagnoses": {"C74.9": 45, "C74.0": 20, "C74.1": 5, "C47.9": 10, "C48.0": 10,
                      "C38.3": 5, "D36.1": 5},
    },
    "DIPG_IMAGING": {
        "share": 0.32,
        "studies": {"MR": 85, "CT": 12, "DX": 3},
        "body": {
            "MR": {"BRAIN": 55, "HEAD": 30, "CEREBRO": 3, None: 12},
            "CT": {"HEAD": 80, "BRAIN": 5, None: 15},
            "DX": {"CHEST": 90, None: 10},
        },
        "age": (2.0, 14.0),
        "diagnoses": {"C71.7": 85, "C71.9": 8, "C71.6": 5, "D43.1": 2},
    },
    "REFERENCE_IMAGING": {
        "share": 0.10,
        "studies": {"CT": 35, "MR": 25, "CR": 15, "DX": 10, "US": 10, "PT": 5},
        "body": {
            "CT": {"CHEST": 35, "ABDOMEN": 25, "HEAD": 15, "PELVIS": 10, "LSPINE": 5,
                   "CHEST_ABD": 3, None: 7},
            "MR": {"BRAIN": 30, "KNEE": 20, "LSPINE": 20, "PELVIS": 10, "BREAST": 10, None: 10},
            "CR": {"CHEST": 70, "KNEE": 10, "PELVIS": 10, None: 10},
            "DX": {"CHEST": 80, None: 20},
            "US": {"ABDOMEN": 40, "BREAST": 20, "NECK": 20, None: 20},
            "PT": {"WHOLEBODY": 90, None: 10},
        },
        "age": (18.0, 90.0),
        "diagnoses": {"C34.1": 20, "C50.9": 15, "C18.7": 10, "C61": 10, "C25.0": 5, "C64": 5,
                      "C22.0": 5, "I63.9": 10, "J18.9": 10, "M17.1": 10},
    },
}  # fmt: skip

DEVICES = {
    "CT": [("SIEMENS", "SOMATOM Definition AS+"), ("SIEMENS", "SOMATOM Force"),
           ("GE MEDICAL SYSTEMS", "Revolution CT"), ("GE MEDICAL SYSTEMS", "LightSpeed VCT"),
           ("Philips", "iCT 256"), ("TOSHIBA", "Aquilion ONE"), ("Canon Medical Systems",
           "Aquilion Prime SP")],
    "MR": [("SIEMENS", "Avanto"), ("SIEMENS", "Skyra"), ("SIEMENS", "Prisma"),
           ("GE MEDICAL SYSTEMS", "SIGNA Architect"), ("GE MEDICAL SYSTEMS", "Optima MR450w"),
           ("Philips Medical Systems", "Ingenia"), ("Philips Medical Systems", "Achieva")],
    "PT": [("SIEMENS", "Biograph mCT"), ("GE MEDICAL SYSTEMS", "Discovery MI"),
           ("Philips Medical Systems", "Vereos")],
    "NM": [("SIEMENS", "Symbia Intevo"), ("GE MEDICAL SYSTEMS", "Discovery NM/CT 670")],
    "US": [("Philips", "EPIQ 7G"), ("GE Healthcare", "LOGIQ E10"), ("SIEMENS", "ACUSON S2000")],
    "CR": [("AGFA", "CR 85-X"), ("FUJIFILM Corporation", "FCR Capsula")],
    "DX": [("Carestream Health", "DRX-Evolution"), ("SIEMENS", "Ysio Max")],
}  # fmt: skip
SOFTWARE = ["VA48A", "syngo CT VA20", "28.0", "5.6.1", "R5.7.2", "VE11C", "DV26.0_R03"]
FIELD_STRENGTH = {
    "Avanto": 1.5,
    "Skyra": 3.0,
    "Prisma": 3.0,
    "SIGNA Architect": 3.0,
    "Optima MR450w": 1.5,
    "Ingenia": 1.5,
    "Achieva": 3.0,
}
KERNELS = ["B30f", "B31f", "B45f", "Br40", "STANDARD", "SOFT", "BONE", "FC13", "FC18", "LUNG"]

SAMPLES = {  # material (as the importer resolves it), storage temperatures, weight
    "TISSUE_FROZEN": (("-80", "LN", "Liquid nitrogen vapor-phase"), 30),
    "Tissue (fresh frozen)": (("-80",), 10),
    "TISSUE_PARAFFIN_EMBEDDED": (("RT",), 25),
    "Plasma": (("-80", "-18 °C to -35 °C"), 15),
    "Serum": (("-80",), 10),
    "Blood": (("2 °C to 10°C", "-80"), 5),
    "DNA": (("-18 °C to -35 °C", "-80"), 5),
}
SEXES = {"Male": 49, "Female": 49, "Unknown": 1.5, "Undifferentiated": 0.5}
FIRST_DATE = 13149  # 2006-01-01 as days since 1970-01-01
LAST_DATE = 20088  # 2024-12-31


def pick(rng: random.Random, weights: dict[Any, float]) -> Any:
    """One key of ``weights``, drawn with those weights."""
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def iso(days: int) -> str:
    import datetime as dt

    return (dt.date(1970, 1, 1) + dt.timedelta(days=days)).isoformat()


class TermIdsOf:
    """Row ids of vocabulary terms in one database, resolved as the writers resolve them."""

    def __init__(self, conn: sqlite3.Connection):
        self.ids: dict[tuple[str, str], int] = {}
        for table in (
            "modality",
            "body_part_examined",
            "dataset_type",
            "material_type",
            "storage_temperature",
            "sex",
            "disease",
            "age_unit",
            "use_access_condition",
        ):
            rows = conn.execute(
                f"SELECT t.id, v.name, t.code FROM {table} t"
                " JOIN vocabulary v ON v.id = t.vocabulary_id"
            )
            self.ids.update({(name, code): id_ for id_, name, code in rows})

    def of(self, term: Any) -> int | None:
        return None if term is None else self.ids[(term.vocabulary, term.code)]


@dataclass
class Rows:
    """Every generated row, per table, in insertion order."""

    tables: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # per series: id, study id, donor id, SOP class, dataset type id, instances
    series: list[tuple[int, int, int, str, int | None, int]] = field(default_factory=list)

    def add(self, table: str, columns: tuple[str, ...], row: tuple[Any, ...]) -> None:
        self.columns.setdefault(table, columns)
        self.tables.setdefault(table, []).append(row)


def generate(conn: sqlite3.Connection, instances: int) -> Rows:
    """The rows of a biobank with ``instances`` instances (see the module docstring)."""
    from imaging_biobank.dicom import terms as dicom_terms
    from imaging_biobank.vocab import catalog

    rng = random.Random(SEED)
    ids = TermIdsOf(conn)
    collections = dict(conn.execute("SELECT identifier, id FROM collection"))
    cid = {
        name: collections[BIOBANK + name]
        for name in (
            "NB_IMAGING",
            "DIPG_IMAGING",
            "REFERENCE_IMAGING",
            "NB_TISSUE",
            "NB_CLINICAL",
            "DIPG_CLINICAL",
        )
    }
    resolve = catalog.resolve
    term_id = {
        (table, value): ids.of(resolve(table, value))
        for table, values in (
            ("sex", SEXES),
            ("material_type", SAMPLES),
            ("storage_temperature", {t for temps, _ in SAMPLES.values() for t in temps}),
            ("age_unit", ["Years"]),
            ("use_access_condition", ["NCU"]),
        )
        for value in values
    }
    rows = Rows()
    donors = max(20, instances // 50)
    # devices: one modality_information row per (modality, manufacturer, model, software)
    devices: dict[str, list[tuple[int, str]]] = {}
    for modality, models in DEVICES.items():
        for manufacturer, model in models:
            for software in rng.sample(SOFTWARE, 2):
                device_id = len(rows.tables.get("modality_information", [])) + 1
                fingerprint = hashlib.sha256(
                    f"{modality}|{manufacturer}|{model}|{software}".encode()
                ).hexdigest()
                rows.add(
                    "modality_information",
                    (
                        "id",
                        "fingerprint",
                        "modality_id",
                        "manufacturer",
                        "manufacturer_model_name",
                        "software_versions",
                    ),
                    (
                        device_id,
                        fingerprint,
                        ids.of(dicom_terms.modality(modality)),
                        manufacturer,
                        model,
                        software,
                    ),
                )
                devices.setdefault(modality, []).append((device_id, model))
    series_sizes: list[int] = []  # raw instance counts, scaled at the end
    series_meta: list[tuple[int, int, int, str, int | None]] = []
    study_id = series_id = sample_id = event_id = 0
    shares = {name: c["share"] for name, c in COHORTS.items()}
    for donor_id in range(1, donors + 1):
        cohort_name = pick(rng, shares)
        cohort = COHORTS[cohort_name]
        sex = pick(rng, SEXES)
        first_age = rng.uniform(*cohort["age"])
        first_day = rng.randint(FIRST_DATE, LAST_DATE - 400)
        birth_day = first_day - int(first_age * 365.25)
        rows.add(
            "sample_donor",
            ("id", "pseudonym", "sex_id", "birth_date"),
            (
                donor_id,
                hashlib.sha256(f"donor{donor_id}".encode()).hexdigest()[:32],
                term_id[("sex", sex)],
                iso(birth_day)[:7] if rng.random() < 0.7 else None,
            ),
        )
        n_studies = rng.choices([1, 2, 3, 4, 5], weights=[45, 28, 15, 8, 4])[0]
        day = first_day
        for _ in range(n_studies):
            study_id += 1
            study_type = pick(rng, cohort["studies"])
            age = (day - birth_day) / 365.25
            rows.add(
                "imaging_study",
                (
                    "id",
                    "study_instance_uid",
                    "study_date",
                    "study_description",
                    "patient_age_years",
                    "patient_weight_kg",
                ),
                (
                    study_id,
                    f"1.2.826.0.1.3680043.10.1001.1.{study_id}",
                    iso(day),
                    f"{study_type} {cohort_name.split('_')[0]}",
                    round(age, 2),
                    round(max(3.0, min(age, 18) * 3.2 + rng.gauss(10, 3)), 1),
                ),
            )
            verbatim = pick(rng, cohort["body"][study_type])
            match = dicom_terms.body_part(verbatim, None)
            body_id, flag = ids.of(match.term), match.flag
            device_id, model = rng.choice(devices[study_type])
            number = 0
            for kind in STUDY_TYPES[study_type]:
                if rng.random() > kind.probability:
                    continue
                for _ in range(rng.randint(*kind.repeat)):
                    series_id += 1
                    number += 1
                    low, mode, high = kind.instances
                    series_sizes.append(max(1, round(rng.triangular(low, high, mode))))
                    dataset_type = ids.of(dicom_terms.dataset_type(kind.sop_class))
                    series_meta.append(
                        (series_id, study_id, donor_id, kind.sop_class, dataset_type)
                    )
                    rows.add(
                        "imaging_series",
                        (
                            "id",
                            "series_instance_uid",
                            "imaging_study_id",
                            "image_collection_id",
                            "sample_donor_id",
                            "modality_id",
                            "modality_value",
                            "series_number",
                            "series_date",
                            "body_part_examined_id",
                            "body_part_examined_value",
                            "body_part_examined_flag",
                            "dataset_type_id",
                        ),
                        (
                            series_id,
                            f"1.2.826.0.1.3680043.10.1001.2.{series_id}",
                            study_id,
                            cid[cohort_name],
                            donor_id,
                            ids.of(dicom_terms.modality(kind.modality)),
                            kind.modality,
                            number,
                            iso(day),
                            body_id,
                            verbatim,
                            flag,
                            dataset_type,
                        ),
                    )
                    if kind.modality in ("SR", "SEG", "RTSTRUCT"):
                        continue
                    acquisition(rows, rng, series_id, kind, device_id, model)
            day += rng.randint(30, 420)
            if day > LAST_DATE:
                break
        diagnosis = pick(rng, cohort["diagnoses"])
        clinical = "DIPG_CLINICAL" if cohort_name == "DIPG_IMAGING" else "NB_CLINICAL"
        if rng.random() < 0.9:
            for number in range(1 if rng.random() < 0.85 else 2):
                event_id += 1
                code = diagnosis if number == 0 else pick(rng, {"C79.5": 3, "C79.3": 2, "C77.2": 1})
                rows.add(
                    "event",
                    (
                        "id",
                        "identifier",
                        "sample_donor_id",
                        "event_type",
                        "age_at_event",
                        "age_unit_id",
                        "disease_id",
                    ),
                    (
                        event_id,
                        f"EV-{event_id:07d}",
                        donor_id,
                        "diagnosis",
                        round(first_age + number * rng.uniform(0.2, 2), 1),
                        term_id[("age_unit", "Years")],
                        ids.of(resolve("disease", code)),
                    ),
                )
            if cohort_name != "REFERENCE_IMAGING":
                rows.add(
                    "collection_sample_donor",
                    ("collection_id", "sample_donor_id"),
                    (cid[clinical], donor_id),
                )
        if (cohort_name == "NB_IMAGING" and rng.random() < 0.6) or (
            cohort_name == "DIPG_IMAGING" and rng.random() < 0.15
        ):
            for _ in range(rng.choices([1, 2, 3, 4], weights=[40, 35, 15, 10])[0]):
                sample_id += 1
                material = pick(rng, {m: w for m, (_, w) in SAMPLES.items()})
                temperature = rng.choice(SAMPLES[material][0])
                rows.add(
                    "sample",
                    (
                        "id",
                        "identifier",
                        "collection_id",
                        "sample_donor_id",
                        "material_type_id",
                        "storage_temperature_id",
                        "creation_date",
                    ),
                    (
                        sample_id,
                        f"S{sample_id:08d}",
                        cid["NB_TISSUE"],
                        donor_id,
                        term_id[("material_type", material)],
                        term_id[("storage_temperature", temperature)],
                        iso(first_day + rng.randint(0, 60)),
                    ),
                )
                if rng.random() < 0.8:
                    rows.add(
                        "sample_disease",
                        ("sample_id", "disease_id"),
                        (sample_id, ids.of(resolve("disease", diagnosis))),
                    )
        if rng.random() < 0.08:
            rows.add(
                "sample_donor_use_access_condition",
                ("sample_donor_id", "use_access_condition_id"),
                (donor_id, term_id[("use_access_condition", "NCU")]),
            )
    # instance counts: each series' shape, scaled to add up to ``instances``
    scale = instances / sum(series_sizes)
    sizes = [max(1, round(n * scale)) for n in series_sizes]
    largest = sorted(range(len(sizes)), key=lambda k: -sizes[k])
    missing = instances - sum(sizes)  # the rounding error, spread over the largest series
    for k in range(abs(missing)):
        sizes[largest[k % len(largest)]] += 1 if missing > 0 else -1
    rows.series = [(*meta, size) for meta, size in zip(series_meta, sizes, strict=True)]
    return rows


ACQUISITION = (
    "slice_thickness", "slice_thickness_min", "slice_thickness_max", "spacing_between_slices",
    "pixel_spacing_row", "pixel_spacing_column", "rows", "columns", "kvp", "xray_tube_current",
    "exposure", "ctdi_vol", "magnetic_field_strength", "repetition_time", "echo_time",
    "flip_angle", "radiopharmaceutical", "radionuclide", "radionuclide_total_dose", "units",
)  # fmt: skip


def acquisition(
    rows: Rows, rng: random.Random, series_id: int, kind: SeriesKind, device: int, model: str
) -> None:
    """The acquisition (and for CT and PET the reconstruction) parameters of one series."""
    thickness = rng.choice(kind.thickness) if kind.thickness else None
    values: dict[str, Any] = {"slice_thickness": thickness}
    if thickness is not None and rng.random() < 0.03:  # varies within the series
        values["slice_thickness_min"], values["slice_thickness_max"] = thickness, thickness * 2
    if kind.modality == "CT":
        current = float(rng.randint(60, 450))
        spacing = round(rng.uniform(0.5, 0.98), 3)
        values |= {
            "kvp": rng.choice([80.0, 100.0, 120.0, 120.0, 140.0]),
            "xray_tube_current": current,
            "exposure": current * 0.5,
            "ctdi_vol": round(rng.uniform(1, 25), 2),
            "rows": 512,
            "columns": 512,
            "pixel_spacing_row": spacing,
            "pixel_spacing_column": spacing,
        }
    elif kind.modality == "MR":
        values |= {
            "magnetic_field_strength": FIELD_STRENGTH.get(model, 1.5),
            "repetition_time": float(rng.choice([500, 600, 2000, 4000, 6000, 9000])),
            "echo_time": float(rng.choice([9, 12, 80, 100, 120])),
            "flip_angle": float(rng.choice([8, 15, 90, 150])),
            "rows": 256,
            "columns": 256,
            "spacing_between_slices": thickness,
        }
    elif kind.modality == "PT":
        values |= {
            "radiopharmaceutical": "Fluorodeoxyglucose",
            "radionuclide": "18F",
            "radionuclide_total_dose": float(rng.randint(40, 370)) * 1e6,
            "units": "BQML",
            "rows": 200,
            "columns": 200,
        }
    elif kind.modality in ("CR", "DX"):
        values |= {"kvp": float(rng.choice([60, 70, 80, 110, 125])), "rows": 2500, "columns": 2048}
    else:
        values |= {"rows": 600, "columns": 800}
    acq_id = len(rows.tables.get("acquisition_parameters", [])) + 1
    rows.add(
        "acquisition_parameters",
        ("id", "imaging_series_id", "modality_information_id", *ACQUISITION),
        (acq_id, series_id, device, *(values.get(name) for name in ACQUISITION)),
    )
    if kind.modality in ("CT", "PT"):
        rec_id = len(rows.tables.get("reconstruction_parameters", [])) + 1
        rows.add(
            "reconstruction_parameters",
            (
                "id",
                "imaging_series_id",
                "convolution_kernel",
                "reconstruction_diameter",
                "reconstruction_method",
            ),
            (
                rec_id,
                series_id,
                rng.choice(KERNELS) if kind.modality == "CT" else None,
                float(rng.choice([320, 350, 380, 420, 500])),
                "OSEM 3i21s" if kind.modality == "PT" else None,
            ),
        )


# ---------------------------------------------------------------------------------------------
# the databases

ORDER = (
    "modality_information", "sample_donor", "imaging_study", "imaging_series",
    "acquisition_parameters", "reconstruction_parameters", "sample", "sample_disease", "event",
    "collection_sample_donor", "sample_donor_use_access_condition",
)  # fmt: skip
TRANSFER_SYNTAX = "1.2.840.10008.1.2.1"
FILE_SIZE = {
    CT: 526_000,
    MR: 133_000,
    PT: 81_000,
    US: 1_450_000,
    CR: 9_800_000,
    DX: 10_500_000,
    NM: 2_100_000,
    SEG: 40_000,
    RTSTRUCT: 900_000,
    DOSE_SR: 12_000,
}


def run_cli(*args: str) -> None:
    subprocess.run([*CLI, *args], check=True, capture_output=True)


def instance_rows(rows: Rows) -> Iterator[tuple[Any, ...]]:
    """The instances of every series, numbered from 1 in each."""
    instance_id = 0
    for series_id, study_id, donor_id, sop_class, dataset_type, size in rows.series:
        folder = f"/archive/{donor_id}/{study_id}/{series_id}"
        for number in range(1, size + 1):
            instance_id += 1
            yield (
                instance_id,
                f"1.2.826.0.1.3680043.10.1001.3.{instance_id}",
                series_id,
                sop_class,
                dataset_type,
                number,
                TRANSFER_SYNTAX,
                f"{folder}/{number:05d}.dcm",
                FILE_SIZE[sop_class],
            )


def build_sqlite(path: Path, instances: int) -> None:
    """A new SQLite database made by ``init`` and ``register``, filled with the rows by bulk
    inserts; foreign keys are checked at the end, and the collections' derived descriptors
    recomputed as the writers do."""
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    run_cli("init", "--db", url)
    run_cli("register", str(ROOT / "examples" / "primage.yaml"), "--db", url)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    rows = generate(conn, instances)
    sizes = {series[0]: series[-1] for series in rows.series}
    per_study: dict[int, list[int]] = {}
    for series_id, study_id, *_ in rows.series:
        per_study.setdefault(study_id, []).append(sizes[series_id])
    with conn:
        for table in ORDER:
            columns, values = rows.columns[table], rows.tables[table]
            if table == "imaging_series":
                columns = (*columns, "number_of_instances")
                values = [(*row, sizes[row[0]]) for row in values]
            elif table == "imaging_study":
                columns = (*columns, "number_of_series", "number_of_instances")
                values = [(*r, len(per_study[r[0]]), sum(per_study[r[0]])) for r in values]
            marks = ", ".join("?" * len(columns))
            conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values)
        conn.executemany(
            "INSERT INTO imaging_instance (id, sop_instance_uid, imaging_series_id, sop_class_uid,"
            " dataset_type_id, instance_number, transfer_syntax_uid, location, file_size)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            instance_rows(rows),
        )
    broken = conn.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise SystemExit(f"generated rows break foreign keys: {broken[:5]}")
    conn.close()
    derive_collections(url)


def derive_collections(url: str) -> None:
    """The collection descriptors the writers maintain: donors and instances of each image
    collection, each series' slice thickness, and the collection's body part, dataset type
    and device links (as ingest sets them), then
    ``derive_descriptors`` (sexes, diagnoses, materials, temperatures, ages) for every one."""
    from imaging_biobank.catalogue.descriptors import derive_descriptors
    from imaging_biobank.db.engine import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE collection SET number_of_donors = (SELECT count(DISTINCT sample_donor_id)"
                " FROM imaging_series s WHERE s.image_collection_id = collection.id),"
                " size = (SELECT coalesce(sum(number_of_instances), 0) FROM imaging_series s"
                " WHERE s.image_collection_id = collection.id) WHERE kind = 'image'"
            )
        )
        conn.execute(  # the series' slice thickness, kept on the series as ingest keeps it
            text(
                "UPDATE imaging_series SET slice_thickness = (SELECT a.slice_thickness"
                " FROM acquisition_parameters a WHERE a.imaging_series_id = imaging_series.id)"
            )
        )
        for link, column, query in (
            (
                "image_collection_body_part_examined",
                "body_part_examined_id",
                "SELECT DISTINCT image_collection_id, body_part_examined_id FROM imaging_series"
                " WHERE body_part_examined_id IS NOT NULL",
            ),
            (
                "image_collection_dataset_type",
                "dataset_type_id",
                "SELECT DISTINCT image_collection_id, dataset_type_id FROM imaging_series"
                " WHERE dataset_type_id IS NOT NULL",
            ),
            (
                "image_collection_modality_information",
                "modality_information_id",
                "SELECT DISTINCT s.image_collection_id, a.modality_information_id"
                " FROM acquisition_parameters a"
                " JOIN imaging_series s ON s.id = a.imaging_series_id",
            ),
        ):
            conn.execute(text(f"INSERT INTO {link} (image_collection_id, {column}) {query}"))
        for (collection_id,) in conn.execute(text("SELECT id FROM collection")).all():
            derive_descriptors(conn, collection_id)
    engine.dispose()


def csv_field(value: Any) -> str:
    """One CSV field: NULL as an unquoted empty field, text quoted (so '' stays '')."""
    if value is None:
        return ""
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    return repr(value) if isinstance(value, float) else str(value)


def export_csv(path: Path, folder: Path) -> None:
    """Every table of the SQLite database as CSV, the one copy PostgreSQL and DuckDB load."""
    folder.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    for table in metadata.sorted_tables:
        names = [c.name for c in table.columns]
        with (folder / f"{table.name}.csv").open("w", encoding="utf-8") as out:
            out.write(",".join(names) + "\n")
            cursor = conn.execute(f"SELECT {', '.join(names)} FROM {table.name}")
            while batch := cursor.fetchmany(50_000):
                out.writelines(",".join(map(csv_field, row)) + "\n" for row in batch)
    conn.close()


def load_postgres(url: str, folder: Path) -> None:
    """``init`` and ``register``, then every table replaced by the CSV rows (so ids agree
    with SQLite's), sequences moved past them, VACUUM ANALYZE."""
    import psycopg

    run_cli("init", "--db", url)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        names = [t.name for t in metadata.sorted_tables]
        conn.execute(f"TRUNCATE {', '.join(names)} CASCADE")
        for table in metadata.sorted_tables:
            columns = ", ".join(f'"{c.name}"' for c in table.columns)
            copy = f"COPY {table.name} ({columns}) FROM STDIN WITH (FORMAT csv, HEADER true)"
            with (
                (folder / f"{table.name}.csv").open("rb") as source,
                conn.cursor() as cur,
                cur.copy(copy) as pipe,
            ):
                while block := source.read(1 << 20):
                    pipe.write(block)
            if "id" in table.c and isinstance(table.c.id.type, Integer):
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'),"
                    f" greatest((SELECT max(id) FROM {table.name}), 1))"
                )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def duck_type(column: Any) -> str:
    """The DuckDB type of a column of the model."""
    kind = column.type
    for cls, name in (
        (Boolean, "BOOLEAN"),
        (BigInteger, "BIGINT"),
        (Integer, "INTEGER"),
        (Float, "DOUBLE"),
        (DateTime, "TIMESTAMP"),
        (Date, "DATE"),
        (String, "VARCHAR"),
        (Text, "VARCHAR"),
    ):
        if isinstance(kind, cls):
            return name
    return "VARCHAR"  # JSON, kept as its text


def load_duckdb(path: Path, folder: Path) -> None:
    """Every table, with the model's column types, from the CSV rows."""
    import duckdb

    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    for table in metadata.sorted_tables:
        types = {c.name: duck_type(c) for c in table.columns}
        con.execute(
            f"CREATE TABLE {table.name} (" + ", ".join(f'"{n}" {t}' for n, t in types.items()) + ")"
        )
        spec = "{" + ", ".join(f"'{n}': '{t}'" for n, t in types.items()) + "}"
        source = str(folder / f"{table.name}.csv")
        con.execute(
            f"INSERT INTO {table.name} SELECT * FROM read_csv('{source}', header = true,"
            f" columns = {spec}, quote = '\"', escape = '\"', nullstr = '',"
            " allow_quoted_nulls = false)"
        )
    con.close()


class DuckResult:
    """The part of SQLAlchemy's ``Result`` the engine uses, over rows DuckDB returned."""

    def __init__(self, rows: list[Any]):
        self.rows = rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)

    def all(self) -> list[Any]:
        return self.rows

    def one(self) -> Any:
        (row,) = self.rows
        return row

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalars(self) -> DuckResult:
        return DuckResult([row[0] for row in self.rows])


class DuckConnection:
    """A stand-in for a SQLAlchemy connection that runs each statement in DuckDB, compiled
    for PostgreSQL with its values written in (DuckDB reads PostgreSQL's SQL)."""

    def __init__(self, con: Any):
        self.con = con
        self.dialect = postgresql.dialect(paramstyle="named")
        self.statements: list[str] = []

    def sql(self, statement: Any, parameters: dict[str, Any] | None = None) -> str:
        if parameters:
            statement = statement.bindparams(**parameters)
        compiled = statement.compile(dialect=self.dialect, compile_kwargs={"literal_binds": True})
        return str(compiled)

    def execute(self, statement: Any, parameters: dict[str, Any] | None = None) -> DuckResult:
        sql = self.sql(statement, parameters)
        self.statements.append(sql)
        cursor = self.con.execute(sql)
        names = [d[0] for d in cursor.description]
        row = namedtuple("Row", names, rename=True)  # type: ignore[misc]
        return DuckResult([row(*r) for r in cursor.fetchall()])


# ---------------------------------------------------------------------------------------------
# the queries


def queries() -> list[tuple[str, Callable[[Any], Any]]]:
    """The fixed set: (name, call on an open connection)."""
    from imaging_biobank.query.ast import parse_text
    from imaging_biobank.query.engine import count
    from imaging_biobank.query.facets import facets

    example = parse_text(EXAMPLE)
    mix = parse_text(
        "material_type = TISSUE_FROZEN and storage_temperature = -80 and diagnosis in C74"
    )
    donors = parse_text("sex = Female and age between 1 and 9")
    return [
        ("series: " + EXAMPLE, lambda c: count(c, example)),
        ("sample+diagnosis: frozen, -80, C74", lambda c: count(c, mix)),
        ("donor: sex=Female, age 1-9, by age", lambda c: count(c, donors, by=("age",))),
        ("facets: all donors", lambda c: facets(c)),
        ("facets: the series cohort", lambda c: facets(c, example)),
    ]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Timing:
    """One query on one backend: wall-clock p50 and p95 (ms), the mean CPU time (ms) that
    did the work where it can be read, and the last answer."""

    p50: float
    p95: float
    cpu: float | None
    answer: Any


def server_cpu_seconds(conn: Any) -> float | None:
    """CPU seconds used so far by the PostgreSQL backend process serving ``conn`` (read from
    /proc: a server on this machine only; its parallel workers are not counted)."""
    try:
        pid = conn.connection.dbapi_connection.info.backend_pid
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (AttributeError, OSError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timings(conn: Any, repeat: int, in_process: bool) -> dict[str, Timing]:
    """Per query: wall-clock p50 and p95 over ``repeat`` runs after two warm-up runs, the
    mean CPU time per run (this process's for in-process engines, else the server
    backend's), and the last answer (to check the backends agree). Other work on a shared
    machine lengthens wall-clock times, hardly CPU times."""
    out = {}
    for name, call in queries():
        for _ in range(2):
            answer = call(conn)
        times = []
        cpu_start = time.process_time() if in_process else server_cpu_seconds(conn)
        for _ in range(repeat):
            start = time.perf_counter()
            answer = call(conn)
            times.append((time.perf_counter() - start) * 1000)
        cpu_end = time.process_time() if in_process else server_cpu_seconds(conn)
        cpu = None
        if cpu_start is not None and cpu_end is not None:
            cpu = (cpu_end - cpu_start) * 1000 / repeat
        out[name] = Timing(percentile(times, 0.5), percentile(times, 0.95), cpu, answer)
    return out


def comparable(answer: Any) -> Any:
    """An answer as plain data (counts, by collection, strata; or the facets)."""
    return answer.as_json() if hasattr(answer, "as_json") else answer


# ---------------------------------------------------------------------------------------------
# opening the database and answering the first query, in a fresh process

LIBRARY_CHILD = """
import sys
from imaging_biobank.db.engine import make_engine
from imaging_biobank.query.ast import parse_text
from imaging_biobank.query.engine import count
engine = make_engine(sys.argv[1])
with engine.connect() as conn:
    print(count(conn, parse_text(sys.argv[2])).totals)
"""
DUCK_CHILD = """
import sys, json, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
for sql in json.loads(sys.argv[2]):
    con.execute(sql).fetchall()
"""


MEASURE_CHILD = """
import json, os, subprocess, sys, time
command = json.loads(sys.argv[1])
start = time.perf_counter()
child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
_, status, usage = os.wait4(child.pid, 0)
seconds = time.perf_counter() - start
print(json.dumps([status, seconds, usage.ru_maxrss, child.stderr.read().decode()[-2000:]]))
"""


def first_query(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB: ``wait4``'s maximum resident set of that child) of one
    fresh process running ``command``. A small Python process starts it: Linux counts the
    memory of the process that forked a child in the child's maximum, and this one is big."""
    measured = subprocess.run(
        [sys.executable, "-c", MEASURE_CHILD, json.dumps(command)],
        check=True,
        capture_output=True,
        text=True,
    )
    status, seconds, maxrss, error = json.loads(measured.stdout)
    if status != 0:
        raise SystemExit(f"{command[:4]} failed: {error}")
    return float(seconds), maxrss / 1024


def best_first_query(command: list[str], runs: int = 5) -> tuple[float, float]:
    """The median wall time and the largest peak RSS of ``runs`` fresh processes."""
    results = [first_query(command) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


# ---------------------------------------------------------------------------------------------


def prepare(work: Path, instances: int) -> tuple[Path, Path, Path]:
    """The cached SQLite file, CSV folder and DuckDB file, made when missing or stale."""
    work.mkdir(parents=True, exist_ok=True)
    from imaging_biobank.db.revision import HEAD_REVISION

    stamp_text = json.dumps(
        {"generator": GENERATOR, "instances": instances, "schema": HEAD_REVISION}
    )
    sqlite_path = work / f"biobank-{instances}.db"
    folder = work / f"csv-{instances}"
    duck_path = work / f"biobank-{instances}.duckdb"
    stamp = work / f"stamp-{instances}.json"
    if not stamp.exists() or stamp.read_text() != stamp_text or not duck_path.exists():
        started = time.perf_counter()
        print(f"building {instances:,} instances in {work} ...", flush=True)
        build_sqlite(sqlite_path, instances)
        print(f"  SQLite written ({time.perf_counter() - started:.0f} s)", flush=True)
        export_csv(sqlite_path, folder)
        load_duckdb(duck_path, folder)
        print(f"  CSV and DuckDB written ({time.perf_counter() - started:.0f} s)", flush=True)
        stamp.write_text(stamp_text)
    run_cli("init", "--db", f"sqlite:///{sqlite_path}")  # the current schema (new indexes)
    return sqlite_path, folder, duck_path


def sizes(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    out = {
        t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in (
            "sample_donor",
            "imaging_study",
            "imaging_series",
            "imaging_instance",
            "sample",
            "event",
        )
    }
    conn.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ib-bench-query"))
    parser.add_argument("--pg", help="a PostgreSQL URL (default: a private server started here)")
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    started = time.perf_counter()
    sqlite_path, folder, duck_path = prepare(args.work, args.instances)
    counts = sizes(sqlite_path)
    print("rows: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()), flush=True)
    run = Run(args.instances, args.repeat)
    run.duckdb(duck_path)
    run.backend("SQLite", f"sqlite:///{sqlite_path}")  # before PostgreSQL runs beside it
    server = None
    url = args.pg
    if url is None:
        from tests.servers import PostgresServer, ServerUnavailableError

        try:
            server = PostgresServer.start()
            url = server.create_database("bench")
        except (ServerUnavailableError, RuntimeError) as error:
            print(f"PostgreSQL not measured: {error}")
    try:
        if url is not None:
            loaded = time.perf_counter()
            load_postgres(url, folder)
            print(f"PostgreSQL loaded ({time.perf_counter() - loaded:.0f} s)", flush=True)
            run.backend("PostgreSQL", url)
        run.report()
        run.first_queries(duck_path)
    finally:
        if server is not None:
            server.stop()
    print(f"\n(whole run {time.perf_counter() - started:.0f} s)")


class Run:
    """The timings of one run, per backend, and their report."""

    def __init__(self, instances: int, repeat: int):
        self.instances, self.repeat = instances, repeat
        self.results: dict[str, dict[str, Timing]] = {}
        self.loads: dict[str, tuple[float, float]] = {}
        self.urls: dict[str, str] = {}
        self.first_statements: list[str] = []

    def duckdb(self, path: Path) -> None:
        """The baseline: the engine's statements run in DuckDB."""
        import duckdb

        from imaging_biobank.query.ast import parse_text
        from imaging_biobank.query.engine import count

        con = duckdb.connect(str(path), read_only=True)
        duck = DuckConnection(con)
        before = os.getloadavg()[0]
        self.results["DuckDB"] = timings(duck, self.repeat, in_process=True)
        self.loads["DuckDB"] = (before, os.getloadavg()[0])
        duck.statements.clear()
        count(duck, parse_text(EXAMPLE))
        self.first_statements = list(duck.statements)
        con.close()

    def backend(self, name: str, url: str) -> None:
        from imaging_biobank.db.engine import make_engine

        self.urls[name] = url
        engine = make_engine(url)
        before = os.getloadavg()[0]
        with engine.connect() as conn:
            self.results[name] = timings(conn, self.repeat, in_process=name == "SQLite")
        self.loads[name] = (before, os.getloadavg()[0])
        engine.dispose()

    def report(self) -> None:
        names = [name for name, _ in queries()]
        for name in names:
            answers = {
                b: json.dumps(comparable(r[name].answer), sort_keys=True)
                for b, r in self.results.items()
            }
            if len(set(answers.values())) != 1:
                print(f"!! the backends disagree on {name!r}: {answers}")
        print()
        print(
            f"Cohort queries at {self.instances:,} instances: ms over {self.repeat} runs"
            " (x DuckDB: ratio to DuckDB's p50 / p95)"
        )
        print(
            "load average (2 cores) before/after each backend's timings: "
            + ", ".join(f"{b} {x:.2f}/{y:.2f}" for b, (x, y) in self.loads.items())
        )
        header = f"{'query':40} {'backend':11} {'p50':>8} {'p95':>8} {'x DuckDB':>12} {'cpu':>7}"
        print(header)
        print("-" * len(header))
        for name in names:
            base = self.results["DuckDB"][name]
            for backend, results in self.results.items():
                t = results[name]
                ratio = "baseline"
                if backend != "DuckDB":
                    ratio = f"{t.p50 / base.p50:.2f}/{t.p95 / base.p95:.2f}"
                cpu = "-" if t.cpu is None else f"{t.cpu:.1f}"
                print(f"{name[:40]:40} {backend:11} {t.p50:8.1f} {t.p95:8.1f} {ratio:>12} {cpu:>7}")
        print(
            "cpu: mean CPU ms per run of the process doing the work (SQLite, DuckDB: this"
            " process, all threads; PostgreSQL: its backend, parallel workers not counted)"
        )

    def first_queries(self, duck_path: Path) -> None:
        print()
        print(
            "Open the database and answer the first query, fresh process (median of 5 runs;"
            " peak RSS the largest)"
        )
        rows = [
            (
                "DuckDB: python, duckdb, same SQL (baseline)",
                [
                    sys.executable,
                    "-c",
                    DUCK_CHILD,
                    str(duck_path),
                    json.dumps(self.first_statements),
                ],
            )
        ]
        for backend, url in self.urls.items():
            rows.append(
                (
                    f"{backend}: imaging-biobank query --json",
                    [*CLI, "query", EXAMPLE, "--db", url, "--json"],
                )
            )
            rows.append(
                (
                    f"{backend}: python, library count()",
                    [sys.executable, "-c", LIBRARY_CHILD, url, EXAMPLE],
                )
            )
        header = f"{'how':48} {'seconds':>8} {'peak MB':>8} {'x DuckDB':>9}"
        print(header)
        print("-" * len(header))
        base_seconds = 0.0
        for label, command in rows:
            seconds, rss = best_first_query(command)
            base_seconds = base_seconds or seconds
            print(f"{label:48} {seconds:8.3f} {rss:8.1f} {seconds / base_seconds:9.2f}")


if __name__ == "__main__":
    main()
