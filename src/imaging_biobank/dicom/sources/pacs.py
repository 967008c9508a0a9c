"""PACS sources: DICOMweb (QIDO-RS to find, WADO-RS metadata to index, no pixel data moved)
and DIMSE (C-FIND to find, C-GET to retrieve; each instance becomes a record on arrival).

``--pacs http(s)://host/dicom-web`` selects DICOMweb, ``--pacs dicom://AET@host:port`` DIMSE.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlencode, urlparse

from imaging_biobank.dicom.read import lenient_pydicom, read_dataset
from imaging_biobank.dicom.record import HeaderError
from imaging_biobank.dicom.sources import Parsed, Rejected, SourceItem

PIXEL_DATA = 0x7FE00010

QIDO_PAGE = 500
# Study Root Query/Retrieve Information Model FIND and GET (PS3.4 C.6.2)
FIND, GET = "1.2.840.10008.5.1.4.1.2.2.1", "1.2.840.10008.5.1.4.1.2.2.3"
# attributes of the series level; every other filter applies to the study (C-FIND levels)
SERIES_KEYS = frozenset(
    {
        "Modality",
        "SeriesInstanceUID",
        "SeriesNumber",
        "SeriesDescription",
        "BodyPartExamined",
        "SeriesDate",
        "Manufacturer",
        "ProtocolName",
        "Laterality",
    }
)


class PacsError(ValueError):
    """The PACS cannot be used as asked (bad URL, unreachable, refused); says why."""


def parse_query(items: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` filters by DICOM keyword (``Modality=CT``, ``StudyDate=2020-2021``)."""
    from pydicom.datadict import tag_for_keyword

    filters: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise PacsError(f"--query {item!r}: expected KEY=VALUE, e.g. Modality=CT")
        if tag_for_keyword(key) is None:
            raise PacsError(f"--query {item!r}: {key!r} is not a DICOM keyword")
        filters[key] = value.strip()
    return filters


def pacs_source(
    url: str, filters: dict[str, str], aet: str, headers: bool = False
) -> Iterator[SourceItem]:
    """The records a PACS holds for ``filters`` (``headers``: with their header bytes)."""
    scheme = urlparse(url).scheme
    if scheme in ("http", "https"):
        return dicomweb_source(url, filters, headers)
    if scheme == "dicom":
        return dimse_source(url, filters, aet, headers)
    raise PacsError(f"--pacs {url!r}: use http(s)://host/dicom-web or dicom://AET@host:port")


def _first(item: dict[str, Any], tag: str) -> str | None:
    values = item.get(tag, {}).get("Value") or []
    return str(values[0]) if values else None


# --- DICOMweb ---------------------------------------------------------------------------


def _qido_series(url: str, filters: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(study, series) UIDs of the matching series, page by page."""
    import requests

    offset = 0
    while True:
        params = {**filters, "limit": str(QIDO_PAGE), "offset": str(offset)}
        # wildcards stay as written: a percent-encoded * matches nothing on some servers
        query = urlencode(params, safe="*,")
        try:
            response = requests.get(
                f"{url.rstrip('/')}/series?{query}",
                headers={"Accept": "application/dicom+json"},
                timeout=60,
            )
        except requests.RequestException as error:
            raise PacsError(f"cannot reach {url}: {error}") from None
        if response.status_code == 204:
            return
        if not response.ok:
            raise PacsError(f"{url}: QIDO-RS answered {response.status_code} {response.reason}")
        page = response.json()
        for item in page:
            study, series = _first(item, "0020000D"), _first(item, "0020000E")
            if study and series:
                yield study, series
        if len(page) < QIDO_PAGE:
            return
        offset += QIDO_PAGE


def header_bytes(dataset: Any) -> bytes:
    """The header of a data set in memory as bytes (no file meta, Explicit VR Little
    Endian); pixel data, if any, as a two-byte marker: what a de-identifier needs to know."""
    from io import BytesIO

    from pydicom import Dataset, dcmwrite

    header = Dataset()
    for tag in list(dataset.keys()):
        if tag < PIXEL_DATA:
            header[tag] = dataset.get_item(tag)  # raw where not yet converted: as received
    if PIXEL_DATA in dataset:
        header.add_new(PIXEL_DATA, "OB", b"\0\0")
    out = BytesIO()
    with lenient_pydicom():
        dcmwrite(out, header, implicit_vr=False, little_endian=True)
    return out.getvalue()


def _parsed(dataset: Any, location: str, headers: bool) -> Parsed:
    record = read_dataset(dataset, location)
    return Parsed(record, header_bytes(dataset) if headers else None)


def dicomweb_source(
    url: str, filters: dict[str, str], headers: bool = False
) -> Iterator[SourceItem]:
    """Records from WADO-RS series metadata (headers only: no pixel data is moved)."""
    from dicomweb_client.api import DICOMwebClient
    from pydicom import Dataset

    client = DICOMwebClient(url=url)
    base = url.rstrip("/")
    for study, series in _qido_series(url, filters):
        where = f"{base}/studies/{study}/series/{series}"
        try:
            metadata = client.retrieve_series_metadata(study, series)
        except Exception as error:  # one unreachable series is reported, the rest goes on
            yield Rejected(where, f"cannot retrieve series metadata: {error}")
            continue
        for item in metadata:
            sop = _first(item, "00080018") or "?"
            location = f"{where}/instances/{sop}"
            try:
                with lenient_pydicom():  # from_json checks values as it converts them
                    dataset = Dataset.from_json(item, bulk_data_uri_handler=lambda *_: b"")
                yield _parsed(dataset, location, headers)
            except (HeaderError, ValueError, KeyError, TypeError) as error:
                yield Rejected(location, str(error))


# --- DIMSE ------------------------------------------------------------------------------


def _dimse_address(url: str) -> tuple[str, str, int]:
    parsed = urlparse(url)
    if not parsed.username or not parsed.hostname or not parsed.port:
        raise PacsError(f"--pacs {url!r}: expected dicom://AET@host:port")
    return parsed.username, parsed.hostname, parsed.port


def dimse_source(
    url: str, filters: dict[str, str], aet: str, headers: bool = False
) -> Iterator[SourceItem]:
    """Records from C-GET retrievals of the series C-FIND matches."""
    from pydicom import Dataset
    from pynetdicom import AE, StoragePresentationContexts, build_role, evt

    called, host, port = _dimse_address(url)
    received: list[SourceItem] = []

    def on_store(event: Any) -> int:
        dataset = event.dataset
        dataset.file_meta = event.file_meta
        location = (
            f"{url.rstrip('/')}/studies/{dataset.get('StudyInstanceUID', '?')}/series/"
            f"{dataset.get('SeriesInstanceUID', '?')}/instances/"
            f"{dataset.get('SOPInstanceUID', '?')}"
        )
        try:
            received.append(_parsed(dataset, location, headers))
        except (HeaderError, ValueError) as error:
            received.append(Rejected(location, str(error)))
        return 0x0000

    ae = AE(ae_title=aet)
    ae.add_requested_context(FIND)
    ae.add_requested_context(GET)
    syntaxes = [c.abstract_syntax for c in StoragePresentationContexts[: 128 - 2]]
    roles: list[Any] = []
    for syntax in syntaxes:
        if syntax is not None:  # storage classes we accept as SCP on the C-GET association
            ae.add_requested_context(syntax)
            roles.append(build_role(syntax, scp_role=True))
    assoc = ae.associate(
        host, port, ae_title=called, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    if not assoc.is_established:
        raise PacsError(
            f"{url}: association refused or {host}:{port} unreachable (is {aet} known to the PACS?)"
        )
    try:
        for study, series in _find_series(assoc, filters, Dataset):
            query = Dataset()
            query.QueryRetrieveLevel = "SERIES"
            query.StudyInstanceUID, query.SeriesInstanceUID = study, series
            for status, _ in assoc.send_c_get(query, GET):
                if status is not None and status.Status not in (0x0000, 0xFF00, 0xFF01):
                    received.append(
                        Rejected(
                            f"{url}/studies/{study}/series/{series}",
                            f"C-GET failed with status 0x{int(status.Status):04X}",
                        )
                    )
                while received:
                    yield received.pop(0)
    finally:
        assoc.release()


def _find_series(assoc: Any, filters: dict[str, str], dataset: Any) -> Iterator[tuple[str, str]]:
    """(study, series) UIDs: C-FIND at STUDY level with the study filters, then at SERIES."""

    def find(level: str, keys: dict[str, str]) -> list[Any]:
        query = dataset()
        query.QueryRetrieveLevel = level
        query.StudyInstanceUID = keys.pop("StudyInstanceUID", "")
        if level == "SERIES":
            query.SeriesInstanceUID = keys.pop("SeriesInstanceUID", "")
        for key, value in keys.items():
            setattr(query, key, value)
        matches = []
        for status, identifier in assoc.send_c_find(query, FIND):
            if status is None:
                raise PacsError("the PACS stopped answering C-FIND")
            if status.Status in (0xFF00, 0xFF01) and identifier is not None:
                matches.append(identifier)
            elif status.Status != 0x0000:
                raise PacsError(f"C-FIND failed with status 0x{int(status.Status):04X}")
        return matches

    study_keys = {k: v for k, v in filters.items() if k not in SERIES_KEYS}
    series_keys = {k: v for k, v in filters.items() if k in SERIES_KEYS}
    for study in find("STUDY", dict(study_keys)):
        uid = str(study.StudyInstanceUID)
        for series in find("SERIES", {**series_keys, "StudyInstanceUID": uid}):
            yield uid, str(series.SeriesInstanceUID)
