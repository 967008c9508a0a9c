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
