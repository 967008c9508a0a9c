"""The Orthanc test server works with real files: REST, DICOMweb (QIDO-RS, WADO-RS) and DIMSE."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import (
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from tests.conftest import STS_001, server_unavailable
from tests.servers import OrthancServer

CT_DIR = STS_001 / "CT" / "image"
SUCCESS = 0x0000
PENDING = (0xFF00, 0xFF01)


@pytest.fixture(scope="module")
def ct_files() -> list[Path]:
    files = sorted(CT_DIR.glob("*.dcm"))
    if not files:
        server_unavailable(f"no DICOM files in {CT_DIR}")
    return files


@pytest.fixture(scope="module")
def ct_headers(ct_files: list[Path]) -> list[Dataset]:
    return [pydicom.dcmread(path, stop_before_pixels=True) for path in ct_files]


@pytest.fixture(scope="module")
def loaded(orthanc: OrthancServer, ct_files: list[Path]) -> OrthancServer:
    """The server holding exactly the 59 CT instances of sts_001."""
    orthanc.clear()
    assert orthanc.upload(ct_files) == len(ct_files)
    return orthanc


def _ae(server: OrthancServer, *contexts: str) -> AE:
    ae = AE(ae_title=server.scu_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    for context in contexts:
        ae.add_requested_context(context)
    return ae


def test_upload_counts_instances(loaded: OrthancServer, ct_files: list[Path]) -> None:
    assert len(ct_files) == 59
    assert loaded.instance_count() == 59
    # stored again: accepted as already stored, nothing new
    assert loaded.upload(ct_files[:3]) == 3
    assert loaded.instance_count() == 59


def test_upload_skips_files_that_are_not_dicom(orthanc: OrthancServer, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a DICOM file")
    assert orthanc.upload([text]) == 0


def test_dicomweb_qido_and_full_series_metadata(
    loaded: OrthancServer, ct_headers: list[Dataset]
) -> None:
    client = DICOMwebClient(url=loaded.dicomweb_url)
    study_uid = ct_headers[0].StudyInstanceUID
    series_uid = ct_headers[0].SeriesInstanceUID

    series = client.search_for_series()
    assert [s["0020000E"]["Value"][0] for s in series] == [series_uid]
    assert series[0]["00080060"]["Value"] == ["CT"]
    # usable URLs (with the port: the plugin's "Host" option)
    retrieve_url = series[0]["00081190"]["Value"][0]
    assert retrieve_url == f"{loaded.dicomweb_url}/studies/{study_uid}/series/{series_uid}"
    found = client.search_for_series(study_uid, search_filters={"Modality": "CT"})
    assert len(found) == 1

    metadata = client.retrieve_series_metadata(study_uid, series_uid)
    assert len(metadata) == 59
    assert {m["00080018"]["Value"][0] for m in metadata} == {h.SOPInstanceUID for h in ct_headers}
    # not main DICOM tags: present because the plugin reads each stored file ("Full")
    for item in metadata:
        assert item["00180050"]["vr"] == "DS"  # SliceThickness
        assert item["00181210"]["vr"] == "SH"  # ConvolutionKernel
    first = next(m for m in metadata if m["00080018"]["Value"][0] == ct_headers[0].SOPInstanceUID)
    assert float(first["00180050"]["Value"][0]) == pytest.approx(
        float(ct_headers[0].SliceThickness)
    )
    assert first["00181210"]["Value"] == [str(ct_headers[0].ConvolutionKernel)]


def test_dimse_echo(orthanc: OrthancServer) -> None:
    assoc = _ae(orthanc, Verification).associate(
        "127.0.0.1", orthanc.dicom_port, ae_title=orthanc.aet
    )
    assert assoc.is_established
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    assert status.Status == SUCCESS


def _find_series(server: OrthancServer, study_uid: str) -> list[Dataset]:
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = study_uid
    query.SeriesInstanceUID = ""
    query.Modality = ""
    query.NumberOfSeriesRelatedInstances = ""
    ae = _ae(server, StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
    assert assoc.is_established
    matches = []
    try:
        for status, identifier in assoc.send_c_find(
            query, StudyRootQueryRetrieveInformationModelFind
        ):
            assert status is not None and status.Status in (*PENDING, SUCCESS)
            if status.Status in PENDING:
                matches.append(identifier)
    finally:
        assoc.release()
    return matches


def test_dimse_find_series(loaded: OrthancServer, ct_headers: list[Dataset]) -> None:
    matches = _find_series(loaded, ct_headers[0].StudyInstanceUID)
    assert [m.SeriesInstanceUID for m in matches] == [ct_headers[0].SeriesInstanceUID]
    assert matches[0].Modality == "CT"
    assert int(matches[0].NumberOfSeriesRelatedInstances) == 59


def test_dimse_rejects_unknown_calling_aet(orthanc: OrthancServer) -> None:
    """Only the SCU registered in "DicomModalities" may associate."""
    ae = _ae(orthanc, Verification, StudyRootQueryRetrieveInformationModelFind)
    ae.ae_title = "STRANGER"
    assoc = ae.associate("127.0.0.1", orthanc.dicom_port, ae_title=orthanc.aet)
    assert assoc.is_rejected


def _series_identifier(header: Dataset) -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = header.StudyInstanceUID
    query.SeriesInstanceUID = header.SeriesInstanceUID
    return query


def test_dimse_get_series(loaded: OrthancServer, ct_headers: list[Dataset]) -> None:
    received: list[Dataset] = []

    def on_store(event: Event) -> int:
        dataset = event.dataset
        dataset.file_meta = event.file_meta
        received.append(dataset)
        return SUCCESS

    ae = _ae(loaded, StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate(
        "127.0.0.1",
        loaded.dicom_port,
        ae_title=loaded.aet,
        ext_neg=[build_role(CTImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    assert assoc.is_established
    try:
        statuses = [
            status
            for status, _ in assoc.send_c_get(
                _series_identifier(ct_headers[0]), StudyRootQueryRetrieveInformationModelGet
            )
        ]
    finally:
        assoc.release()
    assert statuses[-1].Status == SUCCESS
    assert len(received) == 59
    assert {d.SOPInstanceUID for d in received} == {h.SOPInstanceUID for h in ct_headers}
    assert all(d.Modality == "CT" and "PixelData" in d for d in received)


def test_dimse_move_series_to_the_scu(loaded: OrthancServer, ct_headers: list[Dataset]) -> None:
    received: list[str] = []

    def on_store(event: Event) -> int:
        received.append(event.dataset.SOPInstanceUID)
        return SUCCESS

    scp = AE(ae_title=loaded.scu_aet)
    scp.add_supported_context(CTImageStorage)
    server = scp.start_server(
        ("127.0.0.1", loaded.scu_port),
        block=False,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    try:
        assoc = _ae(loaded, StudyRootQueryRetrieveInformationModelMove).associate(
            "127.0.0.1", loaded.dicom_port, ae_title=loaded.aet
        )
        assert assoc.is_established
        try:
            statuses = [
                status
                for status, _ in assoc.send_c_move(
                    _series_identifier(ct_headers[0]),
                    loaded.scu_aet,
                    StudyRootQueryRetrieveInformationModelMove,
                )
            ]
        finally:
            assoc.release()
    finally:
        server.shutdown()
    assert statuses[-1].Status == SUCCESS
    assert sorted(received) == sorted(h.SOPInstanceUID for h in ct_headers)
