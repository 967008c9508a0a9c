"""Test databases more than one module builds: the example biobank holding real images."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from imaging_biobank.db.engine import make_engine, session_factory
from imaging_biobank.db.migrate import upgrade
from imaging_biobank.deid.pseudonym import generate_key_file
from imaging_biobank.register import register
from tests.conftest import EXAMPLE, STS_001
from tests.test_ingest import PYDICOM_FILES, run

REFERENCE = "bbmri-eric:ID:ES_PRIMAGE:collection:REFERENCE_IMAGING"


def imaging_biobank(url: str, folder: Path) -> tuple[Engine, Path]:
    """A database at ``url`` with the example biobank registered, STS_001 (CT, MR, PET) in
    NB_IMAGING and pydicom's test files in REFERENCE_IMAGING; and its key file in
    ``folder``."""
    engine = make_engine(url)
    upgrade(engine)
    with session_factory(engine).begin() as session:
        register(session, EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE))
    key_file = generate_key_file(folder / "biobank.key")
    run(engine, key_file, STS_001)
    run(engine, key_file, PYDICOM_FILES / "test_files", collection=REFERENCE)
    return engine, key_file


def full_biobank(url: str, folder: Path) -> tuple[Engine, Path]:
    """What ``make demo`` builds, less the de-identified copies: the example biobank with
    STS_001 (CT, MR, PET and their contours, radiomic features) in NB_IMAGING, pydicom's
    test files in REFERENCE_IMAGING, the example donors, samples, events, biomarkers and the
    two e-forms with their records. The exporters' tests read it."""
    from typer.testing import CliRunner

    from imaging_biobank.cli import app as cli

    engine, key_file = imaging_biobank(url, folder)
    db = engine.url.render_as_string(hide_password=False)
    keyed = ["--db", db, "--key-file", str(key_file)]
    samples, forms, sts = EXAMPLE.parent / "samples", EXAMPLE.parent / "forms", STS_001
    steps = [
        ["import", "donors", str(samples / "donors.csv"), "-c", "NB_TISSUE", *keyed],
        ["import", "samples", str(samples / "samples.csv"), "-c", "NB_TISSUE", *keyed],
        ["import", "events", str(samples / "events.csv"), "-c", "NB_CLINICAL", *keyed],
        ["import", "biomarkers", str(samples / "biomarkers.csv"), "-c", "NB_MOLECULAR", *keyed],
        ["import", "form", str(forms / "neuroblastoma.csv"), "-c", "NB_CLINICAL", "--db", db],
        [
            "import",
            "records",
            str(forms / "neuroblastoma_records.csv"),
            "-c",
            "NB_CLINICAL",
            *keyed,
        ],
        ["import", "form", str(forms / "dipg.csv"), "-c", "DIPG_CLINICAL", "--db", db],
        ["import", "records", str(forms / "dipg_records.csv"), "-c", "DIPG_CLINICAL", *keyed],
        [
            "import",
            "segmentation",
            str(sts / "CT/mask"),
            str(sts / "MR_T1/mask"),
            str(sts / "PET/mask"),
            "--db",
            db,
        ],
        [
            "analyse",
            "radiomics",
            "-c",
            "NB_IMAGING",
            "--config",
            str(EXAMPLE.parent / "radiomics.yaml"),
            "--db",
            db,
        ],
    ]
    runner = CliRunner()
    for args in steps:
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, f"{' '.join(args)}\n{result.output}"
    return engine, key_file
