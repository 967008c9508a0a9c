"""Write a DICOM corpus: N new files with real-world headers and 16x16 pixel data.

Why: ingestion benchmarks must run on files the ingester has never seen, in numbers (10^4 to
10^6) and with the shape of a real archive (patients -> studies -> series -> instances, several
modalities, dirty attribute values), not on the same few test files over and over.

What: every series is built from a *real* DICOM file used as a template (pydicom's bundled test
files, the optional pydicom-data files, and the real patient in ``shared/data/sts_001`` when it is
there), keeping its complete header (private tags, sequences, the PET radiopharmaceutical
sequence) and SOP class. Every file gets fresh UIDs, a new patient identity, dates and
descriptive values (drawn, or real ones from the IDC index), plausible acquisition values, and
16x16 uncompressed pixel data in Explicit VR Little Endian, so files are small and
`pydicom.dcmread(path).pixel_array` works for all of them.

Determinism: UIDs are name-based (RFC 4122 UUIDv5 under ``2.25``) derived from the seed and the
file's place in the corpus, and all random draws come from seeded generators that do not depend on
the worker a series lands on, so the same seed gives byte-identical files for any ``--workers``.
A different seed gives different UIDs and patients (the seed is part of every PatientID). The
corpus of a seed also depends on which templates are installed (pydicom-data, sts_001).

Speed: the series are split among worker processes; each builds a series header once from its
template and encodes the files with :class:`SplicedWriter` (pydicom's element writer, constant
elements encoded once per series; the first file of every series is checked byte for byte against
``pydicom.dcmwrite``). Encoding runs at ~2,500 files/s per core; on a 2-core VM 10^5 files took
30 s, bounded by the file system's cost of creating files rather than by the encoding. The IDC
distribution, same VM, 2 workers: 10^5 files in 38 s (2,650 files/s), 10^6 in 9.7 min (1,716
files/s, 3.6 GB, while other jobs shared the VM).

Distributions (``--distribution``):

- ``idc``, the command's default: real patients of the NCI Imaging Data Commons index (PyPI
  ``idc-index-data``), each with their real studies, series, instance counts and header values,
  dirty ones included (``benchmarks/idc.py`` says what is taken from the index and what is left
  out, and how ``--dirty-share`` over-represents dirty series for tests). It prints what it drew
  from, what it left out, and the dirty values it wrote. Planning reads the index in ~1 s.
- ``synthetic``: :func:`describe_series` draws a plain :class:`SeriesPlan` (modality, template,
  number of instances, attribute overrides) from an RNG and :func:`plan_corpus` lays the series
  out under made-up patients; another sampler with the same signature can be passed to
  :func:`make_corpus`. It is :func:`make_corpus`'s default (``planner=None``).

Run::

    python benchmarks/corpus.py 100000 /tmp/corpus --seed 1 --workers 2 --layout nested
    python benchmarks/corpus.py 5000 /tmp/dirty --dirty-share 1   # one dirty series per patient
    python benchmarks/corpus.py 100000 /tmp/corpus --distribution synthetic

or ``from corpus import make_corpus`` (and ``from idc import IdcDistribution``, passed as
``planner=IdcDistribution()``) with ``benchmarks/`` on ``sys.path``.
"""

from __future__ import annotations

import argparse
import copy
import math
import multiprocessing
import random
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom import config as pydicom_config
from pydicom.charset import default_encoding
from pydicom.data import get_testdata_file
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID, ExplicitVRLittleEndian

ROOT = Path(__file__).resolve().parents[1]
#: The real patient (CT, MR T1, PET of one soft-tissue-sarcoma case) beside the checkout.
DEFAULT_STS_ROOT = ROOT / "examples" / "data" / "sts_001"

#: Pixel matrix of every generated image: big enough to be an image, small enough to be free.
MATRIX = 16
#: Namespace of the name-based UUIDs behind every generated UID (a fixed, arbitrary UUID).
UID_NAMESPACE = uuid.UUID("7d0f4c52-9a3e-5b8e-9c41-3f2b8d6a1e07")
#: File meta Implementation Class UID/Version Name: ours, so bytes don't move with pydicom's.
IMPLEMENTATION_UID = UID(f"2.25.{UID_NAMESPACE.int}")
IMPLEMENTATION_VERSION = "IBB_CORPUS_1"

#: Bundled test files used as templates: (file name, where it comes from). Files that are not
#: installed are skipped; the pydicom-data ones (package ``data_store``) are optional.
TESTDATA_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("CT_small.dcm", "pydicom"),  # GE CT, ~180 private tags
    ("693_J2KI.dcm", "pydicom"),  # CT, JPEG 2000 (lossy) template
    ("MR_small.dcm", "pydicom"),  # Toshiba MR
    ("MR2_J2KR.dcm", "pydicom-data"),  # Philips MR, oblique, JPEG 2000 lossless
    ("examples_jpeg2k.dcm", "pydicom"),  # GE LOGIQ ultrasound, YBR_RCT colour
    ("OBXXXX1A.dcm", "pydicom-data"),  # Philips CX50 ultrasound, PALETTE COLOR, private SQ
    ("RG1_J2KR.dcm", "pydicom-data"),  # Philips CR, MONOCHROME1
    ("RG3_J2KR.dcm", "pydicom-data"),  # Fuji CR
    ("JPEG2000.dcm", "pydicom"),  # GE Millennium NM, stored as Secondary Capture
)
#: Slices of the real patient used as templates, relative to the sts_001 folder.
STS_TEMPLATES: tuple[str, ...] = (
    "CT/image/000000.dcm",
    "MR_T1/image/000000.dcm",
    "PET/image/000000.dcm",
)

#: UIDs set explicitly for every file; every other non-standard UID in a template is remapped.
_DIRECT_UIDS = frozenset(
    Tag(k)
    for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")
)
#: Elements dropped from templates: pixel-bound ones that would not match a 16x16 image, and the
#: source patient's other identities (they would tie every synthetic patient together).
_DROP_KEYWORDS = (
    "SmallestImagePixelValue",
    "LargestImagePixelValue",
    "SmallestPixelValueInSeries",
    "LargestPixelValueInSeries",
    "SmallestImagePixelValueInPlane",
    "LargestImagePixelValueInPlane",
    "IconImageSequence",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
)


# --------------------------------------------------------------------------------------------
# Plain descriptions: what the corpus looks like, decided before any file is written
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A real DICOM file reduced to a reusable header (pixel data already 16x16-shaped)."""

    name: str  #: e.g. "pydicom:CT_small.dcm" or "sts_001:PET/image/000000.dcm"
    modality: str
    sop_class_uid: str
    transfer_syntax: str  #: of the original file, for the record
    dataset: Dataset
    #: Where the template's own instance UIDs sit (paths of tags and item indexes), to remap.
    uid_paths: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class SeriesPlan:
    """What one series looks like: the single decision a distribution makes per series.

    ``overrides`` maps a DICOM keyword, or a path such as
    ``"RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose"``, to the value to set
    (``None`` deletes the element). ``per_instance`` maps a keyword to one value per instance.
    ``slice_spacing`` (mm) steps ImagePositionPatient/SliceLocation along the slice normal from
    ``slice_start``; ``None`` leaves positions alone (projection images).
    """

    modality: str
    template: str
    n_instances: int
    overrides: Mapping[str, Any] = field(default_factory=dict)
    per_instance: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    slice_spacing: float | None = None
    slice_start: float = 0.0

    def truncated(self, n: int) -> SeriesPlan:
        """The same series cut to its first ``n`` instances (the last series of a corpus)."""
        return replace(
            self,
            n_instances=n,
            per_instance={k: list(v[:n]) for k, v in self.per_instance.items()},
        )


@dataclass(frozen=True)
class PatientPlan:
    """One synthetic patient."""

    index: int
    patient_id: str
    name: str
    sex: str
    birth_date: date
    weight_kg: float
    size_m: float
    birth_date_known: bool  #: False: PatientBirthDate written empty, as de-identified data often is


@dataclass(frozen=True)
class StudyPlan:
    """One study of a patient."""

    index: int  #: within the patient, 0-based
    uid: str
    when: datetime
    accession: str
    study_id: str
    description: str


@dataclass(frozen=True)
class SeriesJob:
    """Everything a worker needs to write one series, independent of which worker runs it."""

    index: int  #: global, 0-based: seeds the series' UIDs and pixel noise
    first_file: int  #: global index of its first file, for the flat layout
    number: int  #: SeriesNumber
    when: datetime
    patient: PatientPlan
    study: StudyPlan
    plan: SeriesPlan


@dataclass(frozen=True)
class CorpusSummary:
    """What :func:`make_corpus` wrote."""

    files: int
    patients: int
    studies: int
    series: int
    modalities: dict[str, int]  #: files per modality
    bytes: int
    seconds: float
    templates: dict[str, int]  #: series per template

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds if self.seconds else float("inf")

    def line(self) -> str:
        """The one-line summary the command prints."""
        mods = ", ".join(f"{m} {n}" for m, n in sorted(self.modalities.items()))
        return (
            f"{self.files} files, {self.patients} patients, {self.studies} studies, "
            f"{self.series} series ({mods}), {self.bytes / 1e6:.1f} MB in {self.seconds:.1f} s "
            f"= {self.files_per_second:.0f} files/s"
        )


SeriesSampler = Callable[[random.Random, str, Sequence[Template]], SeriesPlan]
#: Lays out a whole corpus of exactly ``n`` files for a seed (plan_corpus with a sampler, or
#: idc.IdcDistribution): the other way to plug in a distribution, with its own fan-out.
Planner = Callable[[int, int, Mapping[str, Template]], list["SeriesJob"]]


# --------------------------------------------------------------------------------------------
# The distribution
# --------------------------------------------------------------------------------------------

#: Kinds of study, their share of studies, the modality of each series, and series per study.
STUDY_KINDS: dict[str, tuple[float, tuple[str, ...], tuple[int, int]]] = {
    "CT": (0.34, ("CT",), (1, 6)),
    "MR": (0.24, ("MR",), (2, 6)),
    "PET-CT": (0.08, ("PT", "CT"), (2, 6)),
    "CR": (0.16, ("CR",), (1, 3)),
    "US": (0.12, ("US",), (1, 3)),
    "NM": (0.06, ("NM",), (1, 3)),
}
STUDY_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "CT": ("CT CHEST W/O CONTRAST", "CT ABDOMEN PELVIS W CONTRAST", "CT HEAD W/O", "CT Thorax"),
    "MR": ("MRI BRAIN W/WO CONTRAST", "MR KNEE LEFT", "MR Pelvis", "MRI LUMBAR SPINE"),
    "PET-CT": ("PET-CT FDG WHOLE BODY", "PET/CT SKULL BASE TO THIGH", "PETCT Oncology"),
    "CR": ("XR CHEST 2 VIEWS", "CHEST PA", "XR HAND LEFT", "Knee 3 views"),
    "US": ("US ABDOMEN COMPLETE", "US THYROID", "OB ULTRASOUND", "US Renal"),
    "NM": ("NM BONE SCAN WHOLE BODY", "NM THYROID UPTAKE", "Bone scan"),
}
#: Real archives: canonical values, case variants, abbreviations, blanks and absences (None).
BODY_PARTS: dict[str, tuple[str | None, ...]] = {
    "CT": ("CHEST", "Chest", "ABDOMEN", "ABD", "ABDOMENPELVIS", "HEAD", "WHOLE BODY", "", None),
    "MR": ("HEAD", "BRAIN", "Head", "KNEE", "LSPINE", "PELVIS", "", None),
    "PT": ("WHOLE BODY", "WHOLEBODY", "Whole Body", "CHEST", "", None),
    "CR": ("CHEST", "Chest", "HAND", "KNEE", "", None),
    "US": ("ABDOMEN", "ABD", "THYROID", "", None),
    "NM": ("WHOLE BODY", "WHOLEBODY", "", None),
}
SCANNERS: dict[str, tuple[tuple[str, str], ...]] = {
    "CT": (
        ("GE MEDICAL SYSTEMS", "LightSpeed VCT"),
        ("GE MEDICAL SYSTEMS", "Discovery CT750 HD"),
        ("SIEMENS", "SOMATOM Definition AS+"),
        ("Philips", "Brilliance 64"),
        ("TOSHIBA", "Aquilion ONE"),
    ),
    "MR": (
        ("SIEMENS", "Avanto"),
        ("SIEMENS", "Skyra"),
        ("GE MEDICAL SYSTEMS", "SIGNA HDxt"),
        ("Philips Medical Systems", "Ingenia"),
    ),
    "PT": (
        ("GE MEDICAL SYSTEMS", "Discovery ST"),
        ("SIEMENS", "Biograph64"),
        ("Philips Medical Systems", "Ingenuity TF PET/CT"),
    ),
    "CR": (
        ("FUJI PHOTO FILM Co., ltd.", "XU-D1"),
        ("Agfa", "CR 85-X"),
        ("Carestream Health", "DirectView CR"),
    ),
    "US": (
        ("GE Healthcare", "LOGIQ E9"),
        ("Philips Medical Systems", "iU22"),
        ("SIEMENS", "ACUSON S2000"),
    ),
    "NM": (("GE MEDICAL SYSTEMS", "Infinia"), ("SIEMENS NM", "Symbia T2")),
}
SERIES_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "CT": ("AX 5mm STND", "Axial 1.25 Lung", "Recon 2: 3mm", "Thorax 1.0 B70f", "Body 3.0 CE"),
    "PT": ("PET WB AC", "PET AC 3D", "WB MAC", "PET NAC"),
    "CR": ("CHEST PA", "Chest AP portable", "KNEE LAT", "HAND"),
    "US": ("ABDOMEN", "Thyroid", "OB 2nd trim", "Renal"),
    "NM": ("WB ANT", "BONE SCAN", "Thyroid"),
}
#: MR protocols: description, ScanningSequence, SequenceVariant, TR, TE, TI (ms), flip angle.
MR_PROTOCOLS: tuple[
    tuple[str, str, str, tuple[float, float], tuple[float, float], float, int], ...
] = (
    ("t1_se_tra", "SE", "SP", (400.0, 700.0), (8.0, 20.0), 0.0, 90),
    ("T2 TSE AX", "SE", "SK\\SP", (2500.0, 6000.0), (80.0, 120.0), 0.0, 150),
    ("FLAIR", "SE\\IR", "SK\\SP\\MP", (8000.0, 11000.0), (100.0, 140.0), 2500.0, 150),
    ("ep2d_diff_b1000", "EP", "SK\\SP", (3000.0, 8000.0), (60.0, 100.0), 0.0, 90),
    ("T1 3D GRE", "GR", "SP\\SS", (5.0, 25.0), (2.0, 6.0), 0.0, 12),
)
SLICE_THICKNESSES = (0.625, 1.0, 1.25, 2.5, 3.0, 5.0)
INSTANCES_PER_SERIES = (20, 300)


def describe_series(
    rng: random.Random,
    modality: str,
    templates: Sequence[Template],
    *,
    n_instances: int | None = None,
) -> SeriesPlan:
    """Draw what one series of ``modality`` looks like, from the templates of that modality.

    This is the corpus' whole per-series distribution: replace it (same signature) to sample
    series from elsewhere. It only returns a plain description; nothing is built here.
    ``n_instances`` fixes the series' size instead of drawing it (idc.py gives real sizes and
    keeps the acquisition values drawn here).
    """
    template = rng.choice(templates)
    n = rng.randint(*INSTANCES_PER_SERIES) if n_instances is None else n_instances
    manufacturer, model = rng.choice(SCANNERS[modality])
    o: dict[str, Any] = {"Manufacturer": manufacturer, "ManufacturerModelName": model}
    per_instance: dict[str, list[Any]] = {}
    thickness: float = 0.0
    spacing: float | None = None

    body_part = rng.choice(BODY_PARTS[modality])
    o["BodyPartExamined"] = body_part  # None: the series has none at all, as many do

    if modality == "MR":
        name, seq, variant, tr, te, ti, flip = rng.choice(MR_PROTOCOLS)
        description = name
        o["ScanningSequence"] = seq
        o["SequenceVariant"] = variant
        o["RepetitionTime"] = round(rng.uniform(*tr), 1)
        o["EchoTime"] = round(rng.uniform(*te), 2)
        o["InversionTime"] = ti or None
        o["FlipAngle"] = flip
        o["MagneticFieldStrength"] = rng.choice((1.5, 1.5, 3.0))
        thickness = rng.choice(SLICE_THICKNESSES[1:])
        spacing = thickness * rng.choice((1.0, 1.0, 1.1, 1.2))
    else:
        description = rng.choice(SERIES_DESCRIPTIONS[modality])
        if modality == "CT":
            thickness = rng.choice(SLICE_THICKNESSES)
            spacing = thickness * rng.choice((1.0, 1.0, 0.8))  # some overlapping reconstructions
        elif modality == "PT":
            thickness = rng.choice(SLICE_THICKNESSES[3:])  # PET comes in thicker slices
            spacing = thickness

    if modality == "CT":
        o["KVP"] = rng.choice((80, 100, 120, 140))
        o["ConvolutionKernel"] = rng.choice(("STANDARD", "SOFT", "LUNG", "BONE", "B30f", "B70f"))
        exposure_ms = rng.randint(500, 1000)
        o["ExposureTime"] = exposure_ms
        currents = _tube_currents(rng, n)
        per_instance["XRayTubeCurrent"] = currents
        per_instance["Exposure"] = [max(1, round(c * exposure_ms / 1000)) for c in currents]
    if modality == "PT":
        dose = rng.uniform(150e6, 450e6)  # Bq of FDG
        o["RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose"] = f"{dose:.6g}"
        o["ActualFrameDuration"] = rng.choice((120000, 180000, 240000))
    if spacing is not None:
        o["SliceThickness"] = thickness
        o["SpacingBetweenSlices"] = round(spacing, 4)
    if rng.random() < 0.12:
        description += " " * rng.randint(1, 3)  # trailing spaces, as some scanners write them
    o["SeriesDescription"] = description
    return SeriesPlan(
        modality=modality,
        template=template.name,
        n_instances=n,
        overrides=o,
        per_instance=per_instance,
        slice_spacing=None if spacing is None else round(spacing, 4),
        slice_start=round(rng.uniform(-600.0, 100.0), 2),
    )


def _tube_currents(rng: random.Random, n: int) -> list[int]:
    """mA per slice under automatic exposure control: it follows the patient's width along z."""
    base, depth = rng.uniform(120, 350), rng.uniform(0.15, 0.45)
    phase, period = rng.uniform(0, 2 * math.pi), rng.uniform(0.5, 1.2) * n
    currents = []
    for i in range(n):
        wave = 1 + depth * math.sin(phase + 2 * math.pi * i / period)
        currents.append(max(20, min(800, round(base * wave + rng.gauss(0, 5)))))
    return currents


FAMILY_NAMES = ("SMITH", "GARCIA", "MULLER", "ROSSI", "NOWAK", "JANSEN", "SILVA", "KOWALSKI")
GIVEN_NAMES = {
    "M": ("JOHN", "MIGUEL", "LUCA", "PIOTR", "JAN"),
    "F": ("MARIA", "ANNA", "SOFIA", "EMMA", "JULIA"),
    "O": ("ALEX", "SAM", "KIM"),
}
FIRST_DAY, LAST_DAY = date(2005, 1, 1), date(2024, 12, 31)


def age_string(birth: date, on: date) -> str:
    """DICOM AS value (``"066Y"``, ``"011M"``, ``"020D"``) of someone born on ``birth``."""
    days = (on - birth).days
    if days < 31:
        return f"{days:03d}D"
    months = (on.year - birth.year) * 12 + on.month - birth.month - (on.day < birth.day)
    if months < 24:
        return f"{months:03d}M"
    return f"{months // 12:03d}Y"


def derive_uid(seed: int, *parts: object) -> str:
    """A valid, deterministic UID: ``2.25.`` and a name-based UUID of (seed, parts).

    At most 44 characters. Same inputs, same UID; anything else, another UID.
    """
    name = "/".join(str(p) for p in (seed, *parts))
    return f"2.25.{uuid.uuid5(UID_NAMESPACE, name).int}"


def _draw_patient(rng: random.Random, seed: int, index: int) -> tuple[PatientPlan, date]:
    """A patient and the date of their first study (ages skew old, with some children)."""
    sex = rng.choices(("M", "F", "O"), weights=(49, 49, 2))[0]
    first = FIRST_DAY + timedelta(days=rng.randint(0, (LAST_DAY - FIRST_DAY).days))
    r = rng.random()
    if r < 0.02:
        age_days = rng.randint(0, 30)
    elif r < 0.06:
        age_days = rng.randint(31, 729)
    elif r < 0.16:
        age_days = rng.randint(2 * 365, 18 * 365)
    else:
        age_days = round(rng.triangular(18, 95, 64) * 365.25)
    years = age_days / 365.25
    weight = 3.5 + 3.2 * years if years < 18 else min(160.0, max(40.0, rng.gauss(78, 15)))
    size = 0.5 + 0.065 * years if years < 18 else rng.uniform(1.50, 1.95)
    patient = PatientPlan(
        index=index,
        patient_id=f"BENCH-{seed}-{index + 1:06d}",
        name=f"{rng.choice(FAMILY_NAMES)}^{rng.choice(GIVEN_NAMES[sex])}",
        sex=sex,
        birth_date=first - timedelta(days=age_days),
        weight_kg=round(weight, 1),
        size_m=round(min(size, 2.0), 2),
        birth_date_known=rng.random() < 0.8,
    )
    return patient, first


def plan_corpus(
    n: int,
    seed: int,
    templates: Mapping[str, Template],
    sampler: SeriesSampler = describe_series,
) -> list[SeriesJob]:
    """Lay out exactly ``n`` files as patients -> 1-3 studies -> series -> instances.

    Single-threaded and cheap (one :class:`SeriesJob` per series), so the layout depends only on
    the seed, never on how the writing is split among workers.
    """
    rng = random.Random(seed)
    by_modality: dict[str, list[Template]] = {}
    for t in templates.values():
        by_modality.setdefault(t.modality, []).append(t)
    kinds = [k for k, (_, mods, _) in STUDY_KINDS.items() if all(m in by_modality for m in mods)]
    if not kinds:
        raise RuntimeError("no templates for any kind of study")
    kind_weights = [STUDY_KINDS[k][0] for k in kinds]

    jobs: list[SeriesJob] = []
    remaining, patient_index = n, 0
    while remaining > 0:
        patient, first = _draw_patient(rng, seed, patient_index)
        n_studies = rng.randint(1, 3)
        # Follow-up studies within a few years of the first one, never after LAST_DAY.
        last = min(LAST_DAY, first + timedelta(days=rng.randint(30, 1500)))
        days = sorted(rng.randint(0, (last - first).days) for _ in range(n_studies - 1))
        for study_index, offset in enumerate([0, *days]):
            if remaining == 0:
                break
            when = first + timedelta(days=offset)
            kind = rng.choices(kinds, weights=kind_weights)[0]
            _, modalities, (lo, hi) = STUDY_KINDS[kind]
            start = datetime.combine(when, datetime.min.time()) + timedelta(
                seconds=rng.randint(7 * 3600, 18 * 3600)
            )
            study = StudyPlan(
                index=study_index,
                uid=derive_uid(seed, "study", patient_index, study_index),
                when=start,
                accession=f"A{rng.randint(10**9, 10**10 - 1)}",
                study_id=str(rng.randint(1, 99999)),
                description=rng.choice(STUDY_DESCRIPTIONS[kind]),
            )
            series_when = start
            for position in range(rng.randint(lo, hi)):
                if remaining == 0:
                    break
                # PET-CT: a CT for attenuation correction first, then PET, then either.
                if position < len(modalities):
                    modality = modalities[-1 - position]
                else:
                    modality = rng.choice(modalities)
                plan = sampler(rng, modality, by_modality[modality])
                if plan.n_instances > remaining:
                    plan = plan.truncated(remaining)
                series_when = min(
                    series_when + timedelta(seconds=rng.randint(60, 900)),
                    datetime.combine(start.date(), datetime.max.time()).replace(microsecond=0),
                )
                jobs.append(
                    SeriesJob(
                        index=len(jobs),
                        first_file=n - remaining,
                        number=position + 1,
                        when=series_when,
                        patient=patient,
                        study=study,
                        plan=plan,
                    )
                )
                remaining -= plan.n_instances
        patient_index += 1
    return jobs


# --------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------


def _uid_paths(ds: Dataset, prefix: tuple[int, ...] = ()) -> Iterator[tuple[int, ...]]:
    """Paths to UI elements holding instance UIDs: any outside the DICOM root 1.2.840.10008."""
    for elem in ds:
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                yield from _uid_paths(item, (*prefix, int(elem.tag), i))
        elif (
            elem.VR == "UI"
            and elem.value
            and UID(str(elem.value)).is_private
            and (prefix or elem.tag not in _DIRECT_UIDS)
        ):
            yield (*prefix, int(elem.tag))


def _scale_spacing(ds: Dataset, keyword: str, factor: float) -> None:
    """Keep the field of view when the matrix shrinks to 16x16."""
    if keyword in ds and ds[keyword].VM == 2:
        ds[keyword].value = [f"{float(v) * factor:.6g}" for v in ds[keyword].value]


def prepare_template(ds: Dataset, matrix: int = MATRIX) -> Dataset:
    """Turn a real file into a reusable, uncompressed ``matrix`` x ``matrix`` header in Explicit
    VR Little Endian (16x16 by default; 512 gives files the size of real CT slices).

    Keeps every other element (private tags, sequences); drops the pixel data, anything after
    it, overlays and icons; re-encodes once so later writes need no VR look-ups.
    """
    ds = copy.deepcopy(ds)
    for tag in [e.tag for e in ds if e.tag >= 0x7FE00000 or (e.tag >> 16) & 0xFF01 == 0x6000]:
        del ds[tag]
    for keyword in _DROP_KEYWORDS:
        if keyword in ds:
            delattr(ds, keyword)
    factor = int(ds.Columns) / matrix
    _scale_spacing(ds, "PixelSpacing", factor)
    _scale_spacing(ds, "ImagerPixelSpacing", factor)
    for region in ds.get("SequenceOfUltrasoundRegions", []):
        for kw in ("RegionLocationMinX0", "RegionLocationMaxX1"):
            if kw in region:
                region[kw].value = min(matrix - 1, int(region[kw].value * matrix / ds.Columns))
        for kw in ("RegionLocationMinY0", "RegionLocationMaxY1"):
            if kw in region:
                region[kw].value = min(matrix - 1, int(region[kw].value * matrix / ds.Rows))
    ds.Rows = ds.Columns = matrix
    if "NumberOfFrames" in ds:
        ds.NumberOfFrames = 1
    if int(ds.SamplesPerPixel) == 3:
        ds.PhotometricInterpretation = "RGB"  # YBR_RCT/ICT/FULL_422 only make sense compressed
        ds.PlanarConfiguration = 0
    # One round trip through Explicit VR Little Endian resolves ambiguous and implicit VRs.
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    buffer.seek(0)
    clean = Dataset()
    clean.update(pydicom.dcmread(buffer))
    return clean


def _read_template(path: str | Path, name: str, matrix: int = MATRIX) -> Template:
    mode = pydicom_config.settings.reading_validation_mode
    # Real files carry over-long SH values and the like: read them as they are, unlogged
    # (_uid_paths visits every element, so none is left to convert later).
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            original = pydicom.dcmread(path, stop_before_pixels=True)
            ds = prepare_template(original, matrix)
            uid_paths = tuple(_uid_paths(ds))
    finally:
        pydicom_config.settings.reading_validation_mode = mode
    return Template(
        name=name,
        modality=str(ds.Modality),
        sop_class_uid=str(ds.SOPClassUID),
        transfer_syntax=str(original.file_meta.TransferSyntaxUID),
        dataset=ds,
        uid_paths=uid_paths,
    )


def load_templates(
    sts_root: Path | None = DEFAULT_STS_ROOT, matrix: int = MATRIX
) -> dict[str, Template]:
    """Read every available template once: bundled test files, then the real patient."""
    templates: dict[str, Template] = {}
    for file_name, source in TESTDATA_TEMPLATES:
        path = get_testdata_file(file_name, download=False)  # never the network
        if path is not None:
            template = _read_template(str(path), f"{source}:{file_name}", matrix)
            templates[template.name] = template
    if sts_root is not None and sts_root.is_dir():
        for relative in STS_TEMPLATES:
            if (sts_root / relative).is_file():
                template = _read_template(
                    sts_root / relative, f"{sts_root.name}:{relative}", matrix
                )
                templates[template.name] = template
    return templates


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _number_text(vr: str, value: Any) -> Any:
    """Numbers for DS/IS elements as the strings they are stored as (DS: at most 16 chars)."""
    if vr == "IS" and isinstance(value, int):
        return str(value)
    if vr == "DS" and isinstance(value, float | int):
        for digits in range(10, 0, -1):
            text = f"{value:.{digits}g}"
            if len(text) <= 16:
                return text
    return value


def _element(tag: BaseTag | int, value: Any) -> DataElement:
    """A data element of the dictionary VR, unvalidated: dirty values are the point."""
    vr = dictionary_VR(tag)
    return DataElement(tag, vr, _number_text(vr, value), validation_mode=pydicom_config.IGNORE)


def _set(ds: Dataset, keyword: str, value: Any) -> None:
    """Set (or with ``None`` delete) ``keyword`` in ``ds``; paths go into existing items only."""
    if "." in keyword:
        head, rest = keyword.split(".", 1)
        name, _, index = head.partition("[")
        items = ds.get(name)
        position = int(index.rstrip("]") or 0)
        if items is not None and len(items) > position:
            _set(items[position], rest, value)
        return
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(f"not a DICOM keyword: {keyword}")
    if value is None:
        ds.pop(tag, None)
    else:
        ds[tag] = _element(tag, value)


def _set_if_present(ds: Dataset, keyword: str, value: Any) -> None:
    """Update ``keyword`` only where the template has it (keeps each IOD's own attribute set)."""
    if keyword in ds:
        _set(ds, keyword, value)


def _pixel_frames(ds: Dataset, n: int, rng: np.random.Generator) -> list[bytes]:
    """``n`` frames matching the header (its matrix): a noisy disc on a dark background."""
    bits, stored = int(ds.BitsAllocated), int(ds.BitsStored)
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    dtype = np.dtype("u1") if bits == 8 else np.dtype("<i2" if signed else "<u2")
    hi = (1 << (stored - 1)) - 1 if signed else (1 << stored) - 1
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        entries = int(ds.RedPaletteColorLookupTableDescriptor[0]) or 65536
        hi = min(hi, entries - 1)
    size = int(ds.Rows)
    yy, xx = np.mgrid[0:size, 0:size]
    centre = (size - 1) / 2
    disc = np.hypot(yy - centre, xx - centre * 0.96) < size * 0.375
    level, floor = min(hi, 1040) * 0.9, min(hi, 1040) * 0.02
    base = np.where(disc, level, floor)
    noise = rng.normal(0.0, max(1.0, level * 0.05), size=(n, size, size))
    frames = np.clip(np.rint(base + noise), 0, hi).astype(dtype)
    if int(ds.SamplesPerPixel) == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    return [frame.tobytes() for frame in frames]


def _slice_geometry(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The template's in-plane origin and slice normal (axial templates: normal is +z)."""
    iop = [float(v) for v in ds.get("ImageOrientationPatient", [1, 0, 0, 0, 1, 0])]
    normal = np.cross(iop[:3], iop[3:])
    norm = float(np.linalg.norm(normal)) or 1.0
    normal = normal / norm
    ipp = np.array([float(v) for v in ds.get("ImagePositionPatient", [0, 0, 0])])
    return ipp - normal * float(ipp @ normal), normal


def relative_path(job: SeriesJob, instance: int, layout: str, width: int) -> Path:
    """Where instance ``instance`` (0-based) of ``job`` goes under the output folder."""
    if layout == "flat":
        return Path(f"{job.first_file + instance + 1:0{width}d}.dcm")
    study = f"{job.study.index + 1:02d}_{job.study.when:%Y%m%d}"
    series = f"{job.number:03d}_{job.plan.modality}"
    return Path(job.patient.patient_id, study, series, f"{instance + 1:04d}.dcm")


def build_series(job: SeriesJob, template: Template, seed: int) -> Dataset:
    """The series-level header of ``job``: template + fresh UIDs + patient, study and plan."""
    ds = copy.deepcopy(template.dataset)
    for path in template.uid_paths:
        node: Any = ds
        for i in range(0, len(path) - 1, 2):
            node = node[path[i]].value[path[i + 1]]
        elem = node[path[-1]]
        elem.value = derive_uid(seed, "series", job.index, "uid", elem.value)

    patient, study, plan = job.patient, job.study, job.plan
    day, clock = f"{job.when:%Y%m%d}", f"{job.when:%H%M%S}"
    values: dict[str, Any] = {
        "PatientName": patient.name,
        "PatientID": patient.patient_id,
        "PatientBirthDate": f"{patient.birth_date:%Y%m%d}" if patient.birth_date_known else "",
        "PatientSex": patient.sex,
        "PatientAge": age_string(patient.birth_date, study.when.date()),
        "StudyInstanceUID": study.uid,
        "StudyDate": f"{study.when:%Y%m%d}",
        "StudyTime": f"{study.when:%H%M%S}",
        "AccessionNumber": study.accession,
        "StudyID": study.study_id,
        "StudyDescription": study.description,
        "SeriesInstanceUID": derive_uid(seed, "series", job.index),
        "SeriesNumber": job.number,
        "SeriesDate": day,
        "SeriesTime": clock,
    }
    if "FrameOfReferenceUID" in ds or plan.modality in ("CT", "MR", "PT"):
        values["FrameOfReferenceUID"] = derive_uid(seed, "series", job.index, "frame")
    if "PatientWeight" in ds or plan.modality == "PT":
        values["PatientWeight"] = patient.weight_kg
        values["PatientSize"] = patient.size_m
    for keyword, value in values.items():
        _set(ds, keyword, value)
    for keyword in ("AcquisitionDate", "ContentDate", "InstanceCreationDate"):
        _set_if_present(ds, keyword, day)
    for keyword in ("AcquisitionTime", "ContentTime", "InstanceCreationTime"):
        _set_if_present(ds, keyword, clock)
    for keyword, value in plan.overrides.items():
        _set(ds, keyword, value)
    # Consistency the plan need not know about: series size, injection before the scan.
    _set_if_present(ds, "NumberOfSlices", plan.n_instances)
    _set_if_present(ds, "ImagesInAcquisition", plan.n_instances)
    for item in ds.get("RadiopharmaceuticalInformationSequence", []):
        _set_if_present(
            item, "RadiopharmaceuticalStartTime", f"{job.when - timedelta(hours=1):%H%M%S}"
        )

    ds.file_meta = FileMetaDataset()
    ds.file_meta.FileMetaInformationVersion = b"\x00\x01"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = IMPLEMENTATION_UID
    ds.file_meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    return ds


def _encode_element(elem: DataElement, encodings: Any) -> bytes:
    """One data element in Explicit VR Little Endian, by pydicom's own element writer."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_data_element(fp, elem, encodings)
    return fp.getvalue()


def _split(
    ds: Dataset, varying: set[BaseTag], encodings: Any, skip: Iterable[int] = ()
) -> list[bytes | DataElement]:
    """``ds`` in tag order as encoded runs of constant elements around the varying elements."""
    parts: list[bytes | DataElement] = []
    run = bytearray()
    skipped = set(skip)
    for tag in sorted(ds.keys()):
        if (tag.element == 0 and tag.group > 6) or tag in skipped:
            continue  # no retired group lengths, as in pydicom's write_dataset
        if tag in varying:
            parts += [bytes(run), ds[tag]]
            run.clear()
        else:
            run += _encode_element(ds[tag], encodings)
    parts.append(bytes(run))
    return parts


class SplicedWriter:
    """Part 10 bytes of a dataset of which only a few top-level elements change between files.

    ``pydicom.dcmwrite`` encodes a dataset element by element in tag order, and in Explicit VR
    Little Endian each top-level element's bytes depend on that element alone. So the constant
    elements are encoded once per series and only the varying ones (UIDs, positions, pixels) per
    file, with pydicom's own element writer, and the pieces joined: the same bytes as
    ``dcmwrite(..., enforce_file_format=True)`` at several times the speed. The varying elements
    are mutated in place between calls to :meth:`encode`.
    """

    def __init__(self, ds: Dataset, varying: Iterable[BaseTag]) -> None:
        self._encodings = ds.get("SpecificCharacterSet", default_encoding)
        self._body = _split(ds, set(varying), self._encodings)
        meta = ds.file_meta
        for keyword in ("FileMetaInformationVersion", "MediaStorageSOPInstanceUID"):
            if keyword not in meta:
                raise ValueError(f"file meta needs {keyword}")
        self._meta = _split(meta, {Tag(0x00020003)}, default_encoding, skip=(0x00020000,))

    @staticmethod
    def _join(parts: list[bytes | DataElement], encodings: Any) -> bytes:
        return b"".join(
            part if isinstance(part, bytes) else _encode_element(part, encodings) for part in parts
        )

    def encode(self) -> bytes:
        """The file as it stands now: preamble, DICM, file meta group, data set."""
        meta = self._join(self._meta, default_encoding)
        group_length = DataElement(0x00020000, "UL", len(meta))
        return b"".join(
            (
                b"\0" * 128,
                b"DICM",
                _encode_element(group_length, default_encoding),
                meta,
                self._join(self._body, self._encodings),
            )
        )


def iter_series_files(
    job: SeriesJob, template: Template, seed: int, *, check: bool = True
) -> Iterator[bytes]:
    """Encode the files of one series, in instance order, as Part 10 bytes.

    With ``check``, the first file of the series is also written by ``pydicom.dcmwrite`` and
    must come out byte-identical to the spliced encoding (one dcmwrite per series).
    """
    ds = build_series(job, template, seed)
    plan = job.plan
    frames = _pixel_frames(ds, plan.n_instances, np.random.default_rng([seed, job.index]))
    ds[0x7FE00010] = DataElement(0x7FE00010, "OB" if int(ds.BitsAllocated) == 8 else "OW", b"")

    # Elements that change per instance: created once, their values replaced in the loop.
    dynamic = ["SOPInstanceUID", "InstanceNumber", *plan.per_instance]
    geometry = plan.slice_spacing is not None
    if geometry:
        origin, normal = _slice_geometry(ds)
        dynamic += ["ImagePositionPatient", "SliceLocation"]
    if "ImageIndex" in ds:
        dynamic.append("ImageIndex")
    for keyword in dynamic:
        tag = tag_for_keyword(keyword)
        assert tag is not None
        ds[tag] = _element(tag, "0" if dictionary_VR(tag) in ("IS", "DS") else "")
    elems = {keyword: ds[keyword] for keyword in dynamic}
    meta_uid = ds.file_meta["MediaStorageSOPInstanceUID"]
    pixel = ds[0x7FE00010]
    writer = SplicedWriter(ds, [elem.tag for elem in elems.values()] + [pixel.tag])

    for i in range(plan.n_instances):
        uid = derive_uid(seed, "series", job.index, "sop", i)
        elems["SOPInstanceUID"].value = uid
        meta_uid.value = uid
        elems["InstanceNumber"].value = str(i + 1)
        if "ImageIndex" in elems:
            elems["ImageIndex"].value = i + 1
        for keyword, values in plan.per_instance.items():
            elems[keyword].value = _number_text(elems[keyword].VR, values[i])
        if geometry:
            assert plan.slice_spacing is not None
            location = plan.slice_start + i * plan.slice_spacing
            position = origin + normal * location
            elems["ImagePositionPatient"].value = [f"{v:.4f}" for v in position]
            elems["SliceLocation"].value = f"{location:.4f}"
        pixel.value = frames[i]
        data = writer.encode()
        if i == 0 and check:
            reference = BytesIO()
            pydicom.dcmwrite(reference, ds, enforce_file_format=True)
            if reference.getvalue() != data:
                raise AssertionError(f"spliced encoding differs from dcmwrite: {job.plan}")
        yield data


# Per-process state of the pool workers, set once by _init_worker.
_WORKER: dict[str, Any] = {}


def _init_worker(
    templates: dict[str, Template], seed: int, out: Path, layout: str, width: int
) -> None:
    """Give a worker (or, with one worker, this process) the templates and where to write."""
    _WORKER.update(templates=templates, seed=seed, out=out, layout=layout, width=width)


def _write_series(job: SeriesJob) -> tuple[int, int]:
    """Write one series; returns (files, bytes)."""
    templates: dict[str, Template] = _WORKER["templates"]
    out: Path = _WORKER["out"]
    files = size = 0
    made: set[Path] = set()
    for i, data in enumerate(iter_series_files(job, templates[job.plan.template], _WORKER["seed"])):
        path = out / relative_path(job, i, _WORKER["layout"], _WORKER["width"])
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_bytes(data)
        files += 1
        size += len(data)
    return files, size


def make_corpus(
    n: int,
    out: Path,
    seed: int = 0,
    workers: int = 2,
    layout: str = "nested",
    *,
    sampler: SeriesSampler = describe_series,
    planner: Planner | None = None,
    sts_root: Path | None = DEFAULT_STS_ROOT,
    matrix: int = MATRIX,
) -> CorpusSummary:
    """Write exactly ``n`` DICOM files into ``out`` (which must be empty or absent).

    ``layout="nested"`` writes ``out/<patient>/<study>/<series>/<instance>.dcm``; ``"flat"``
    writes ``out/000001.dcm`` and on. The same ``seed`` gives the same bytes for any ``workers``.
    The corpus is laid out by ``planner`` when given (``idc.IdcDistribution()``: real IDC
    patients), else by :func:`plan_corpus` with ``sampler`` (the synthetic distribution).
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    if layout not in ("nested", "flat"):
        raise ValueError(f"layout must be 'nested' or 'flat', not {layout!r}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: a corpus goes into a fresh folder")
    started = time.perf_counter()
    templates = load_templates(sts_root, matrix)
    if planner is None:
        jobs = plan_corpus(n, seed, templates, sampler)
    else:
        jobs = planner(n, seed, templates)
        if sum(job.plan.n_instances for job in jobs) != n:
            raise AssertionError("the planner did not lay out exactly n files")
    out.mkdir(parents=True, exist_ok=True)
    width = max(6, len(str(n)))
    init_args = (templates, seed, out, layout, width)

    if workers <= 1:
        _init_worker(*init_args)
        files, size = _sum(map(_write_series, jobs))
    else:
        # Big series first, so no worker is left with a long one at the end.
        order = sorted(jobs, key=lambda j: -j.plan.n_instances)
        with multiprocessing.Pool(workers, _init_worker, init_args) as pool:
            files, size = _sum(pool.imap_unordered(_write_series, order))

    modalities: Counter[str] = Counter()
    for job in jobs:
        modalities[job.plan.modality] += job.plan.n_instances
    return CorpusSummary(
        files=files,
        patients=len({job.patient.index for job in jobs}),
        studies=len({job.study.uid for job in jobs}),
        series=len(jobs),
        modalities=dict(modalities),
        bytes=size,
        seconds=time.perf_counter() - started,
        templates=dict(Counter(job.plan.template for job in jobs)),
    )


def _sum(results: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """Total (files, bytes) of the series written."""
    files = size = 0
    for f, s in results:
        files += f
        size += s
    return files, size


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, help="number of files to write")
    parser.add_argument("out", type=Path, help="output folder (empty or absent)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes (default 0)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--layout", choices=("nested", "flat"), default="nested")
    parser.add_argument(
        "--matrix",
        type=int,
        default=MATRIX,
        help=f"rows and columns of every image (default {MATRIX}; 512 = real CT slice size)",
    )
    parser.add_argument(
        "--sts-root",
        type=Path,
        default=DEFAULT_STS_ROOT,
        help="folder of the real patient used as CT/MR/PET templates when present",
    )
    parser.add_argument(
        "--distribution",
        choices=("idc", "synthetic"),
        default="idc",
        help="idc (default): real patients, studies, series and header values from the NCI "
        "Imaging Data Commons index (pip install idc-index-data); synthetic: describe_series",
    )
    parser.add_argument(
        "--dirty-share",
        type=float,
        default=0.0,
        help="idc only: share of patient draws replaced by one dirty series each (NUL in "
        "SeriesDescription, odd PatientAge or PatientSex, odd or empty BodyPartExamined, in "
        "turn); default 0 = dirty values as often as the index has them",
    )
    args = parser.parse_args(argv)
    import idc  # beside this file; needs idc-index-data only when the IDC distribution is used

    planner: Planner | None = None
    try:
        if args.distribution == "idc":
            planner = idc.IdcDistribution(args.dirty_share)
        elif args.dirty_share:
            raise ValueError("--dirty-share needs --distribution idc")
        summary = make_corpus(
            args.n,
            args.out,
            args.seed,
            args.workers,
            args.layout,
            planner=planner,
            sts_root=args.sts_root,
            matrix=args.matrix,
        )
    except (FileExistsError, ValueError, idc.IndexMissing) as error:
        parser.error(str(error))
    print(
        f"corpus: {summary.line()} ({args.workers} workers, {args.layout}, seed {args.seed}, "
        f"{args.distribution})"
    )
    if isinstance(planner, idc.IdcDistribution) and planner.report is not None:
        report = planner.report
        print(
            f"idc: {report.patients} patients drawn whole, {report.dirty_series} dirty series "
            f"drawn alone, planned in {report.seconds:.1f} s; {report.census.line()}"
        )
        print(report.written.line())


if __name__ == "__main__":
    # Run as the module ``corpus``, the one idc.py imports, so both (and the pickled jobs the
    # workers get) share one set of classes.
    import corpus

    corpus.main()
