"""Ingesting from a real PACS (Orthanc from Debian): DICOMweb and DIMSE give the rows that
ingesting the same files from disk gives."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from sqlalchemy import Engine, text

from imaging_biobank.db.engine import make_engine
from imaging_biobank.db.migrate import upgrade
from imaging_biobank.deid.options import DeidOptions
from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.dicom.sources.folder import expand_paths
from imaging_biobank.dicom.sources.pacs import PacsError, pacs_source, parse_query
from imaging_biobank.ingest.pipeline import IngestOptions, ingest
from imaging_biobank.register import register
from tests.conftest import EXAMPLE, NB_IMAGING, STS_001, canonical
from tests.servers import OrthancServer

# how a row says where it came from and how it was encoded: not its content
WHERE = ("location", "file_size", "transfer_syntax_uid")


def fresh_database(path: Path) -> Engine:
    from imaging_biobank.db.engine import session_factory

    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with session_factory(engine).begin() as session:
        register(session, EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE))
    return engine


def dicom_files() -> list[Path]:
    return sorted(p for p in STS_001.rglob("*.dcm"))


@pytest.fixture(scope="module")
def loaded(orthanc: OrthancServer) -> OrthancServer:
    orthanc.clear()
    assert orthanc.upload(dicom_files()) == 180
    return orthanc


def ingest_items(engine: Engine, items: object, key: Path) -> None:
    ingest(
        engine,
        NB_IMAGING,
        items,
        Pseudonymiser.from_file(key),  # type: ignore[arg-type]
        IngestOptions(workers=0),
        lambda *_: None,
    )


# a header with an over-long value is recorded as it is; pydicom's warning about it would
# only reach the terminal of whoever runs the ingest
@pytest.mark.filterwarnings("error::UserWarning")
def test_dicomweb_and_dimse_give_the_rows_of_the_files(
    loaded: OrthancServer, tmp_path: Path, key_file: Path
) -> None:
    disk = fresh_database(tmp_path / "disk.db")
    ingest_items(disk, expand_paths(dicom_files()), key_file)
    web = fresh_database(tmp_path / "web.db")
    ingest_items(web, pacs_source(loaded.dicomweb_url, {}, "IMAGINGBIOBANK"), key_file)
    dimse = fresh_database(tmp_path / "dimse.db")
    url = f"dicom://{loaded.aet}@127.0.0.1:{loaded.dicom_port}"
    ingest_items(dimse, pacs_source(url, {}, loaded.scu_aet), key_file)
    expected = canonical(disk, drop=WHERE)
    assert len(expected["imaging_instance"]) == 180
    assert canonical(web, drop=WHERE) == expected
    assert canonical(dimse, drop=WHERE) == expected
    with web.connect() as conn:
        location = conn.execute(text("SELECT min(location) FROM imaging_instance")).scalar()
    assert location.startswith(f"{loaded.dicomweb_url}/studies/")


def test_deidentify_from_a_pacs_gives_the_rows_of_the_files_deidentified(
    loaded: OrthancServer, tmp_path: Path, key_file: Path
) -> None:
    """``ingest --pacs ... --deidentify``: the records are read from the de-identified
    headers, as from files; no source UID, name or date reaches the database."""
    options = IngestOptions(workers=0, deid=DeidOptions(frozenset({"modified-dates"})))
    pseudonymiser = Pseudonymiser.from_file(key_file)

    def ingest_deidentified(engine: Engine, items: object) -> None:
        ingest(engine, NB_IMAGING, items, pseudonymiser, options, lambda *_: None)  # type: ignore[arg-type]

    disk = fresh_database(tmp_path / "disk.db")
    ingest_deidentified(disk, expand_paths(dicom_files()))
    web = fresh_database(tmp_path / "web.db")
    ingest_deidentified(web, pacs_source(loaded.dicomweb_url, {}, "IMAGINGBIOBANK", True))
    dimse = fresh_database(tmp_path / "dimse.db")
    url = f"dicom://{loaded.aet}@127.0.0.1:{loaded.dicom_port}"
    ingest_deidentified(dimse, pacs_source(url, {}, loaded.scu_aet, True))
    expected = canonical(disk, drop=WHERE)
    assert len(expected["imaging_instance"]) == 180
    assert canonical(web, drop=WHERE) == expected
    assert canonical(dimse, drop=WHERE) == expected
    source = pydicom.dcmread(dicom_files()[0], stop_before_pixels=True)
    secrets = (source.StudyInstanceUID, str(source.PatientName), source.StudyDate)
    for engine in (web, dimse):
        dump = "\n".join(engine.raw_connection().driver_connection.iterdump())  # type: ignore[union-attr]
        assert [s for s in secrets if s in dump] == []
        assert loaded.dicomweb_url not in dump  # locations are the clean paths


def test_queries_select_what_is_ingested(
    loaded: OrthancServer, tmp_path: Path, key_file: Path
) -> None:
    for url, aet in (
        (loaded.dicomweb_url, "IMAGINGBIOBANK"),
        (f"dicom://{loaded.aet}@127.0.0.1:{loaded.dicom_port}", loaded.scu_aet),
    ):
        engine = fresh_database(tmp_path / f"{aet}-{loaded.dicom_port}.db")
        ingest_items(engine, pacs_source(url, parse_query(["Modality=PT"]), aet), key_file)
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT modality_value, count(*) FROM imaging_series s JOIN"
                    " imaging_instance i ON i.imaging_series_id = s.id"
                    " GROUP BY modality_value"
                )
            ).all()
        assert [tuple(r) for r in rows] == [("PT", 59)], url


def test_bad_pacs_arguments_say_why() -> None:
    with pytest.raises(PacsError, match="KEY=VALUE"):
        parse_query(["Modality"])
    with pytest.raises(PacsError, match="not a DICOM keyword"):
        parse_query(["Modalty=CT"])
    with pytest.raises(PacsError, match="dicom://AET@host:port"):
        list(pacs_source("ftp://pacs", {}, "ME"))
    with pytest.raises(PacsError, match="cannot reach"):
        list(pacs_source("http://127.0.0.1:9/dicom-web", {}, "ME"))
