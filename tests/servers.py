"""Real servers for the tests, started on loopback in a temporary folder and stopped after.

PostgreSQL: a private cluster made with ``initdb`` from the Debian package (installed by
``scripts/install-test-deps.sh``). As root, the cluster runs as the ``postgres`` user,
because the server refuses to run as root.

Orthanc: the PACS from the Debian packages ``orthanc`` and ``orthanc-dicomweb`` (installed by
the same script), run as a plain process with its own configuration, SQLite index and storage
in a temporary folder; reachable over REST, DICOMweb and DIMSE.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ServerUnavailableError(RuntimeError):
    """The server's programs are not installed here."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _postgres_bin() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    found = shutil.which("initdb")
    if candidates:
        return Path(candidates[0]).parent
    if found:
        return Path(found).resolve().parent
    raise ServerUnavailableError("PostgreSQL server programs (initdb, pg_ctl) are not installed")


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster listening on 127.0.0.1."""

    bindir: Path
    root: Path
    port: int
    user: str | None  # run the server as this OS user (when we are root)

    @classmethod
    def start(cls) -> PostgresServer:
        bindir = _postgres_bin()
        root = Path(tempfile.mkdtemp(prefix="imaging-biobank-pg-"))
        user = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise ServerUnavailableError(
                    "running as root and there is no postgres user"
                ) from None
            user = "postgres"
            shutil.chown(root, user=user)
            root.chmod(0o700)
        server = cls(bindir, root, free_port(), user)
        server._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(root / "data"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        options = (
            f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off"
        )
        server._run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(root / "data"),
                "-l",
                str(root / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        return server

    def _run(self, command: list[str]) -> None:
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(
                [
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.root / "data"),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ]
            )
        finally:
            time.sleep(0.1)
            shutil.rmtree(self.root, ignore_errors=True)


ORTHANC_DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def _orthanc_config(
    root: Path, http_port: int, dicom_port: int, aet: str, scu_aet: str, scu_port: int
) -> dict[str, Any]:
    """The configuration of a throwaway Orthanc 1.10 (keys as in /etc/orthanc/orthanc.json)."""
    return {
        "Name": "imaging-biobank-tests",
        "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "index"),  # the default SQLite index lives here
        "StorageCompression": False,
        "SaveJobs": False,
        "Plugins": [str(ORTHANC_DICOMWEB_PLUGIN)],
        "DicomWeb": {
            "Enable": True,
            "Root": "/dicom-web/",
            "EnableWado": False,
            # Without it, plugin 1.7 writes RetrieveURL and BulkDataURI without the port.
            "Host": f"127.0.0.1:{http_port}",
            # WADO-RS series/study metadata read from each stored file (all tags), not only
            # from the index (main tags). "Full" is already the plugin's default; said here
            # because tests rely on it (e.g. SliceThickness, ConvolutionKernel).
            "StudiesMetadata": "Full",
            "SeriesMetadata": "Full",
        },
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        # Orthanc 1.10 cannot bind its HTTP server to one address (it listens on all); with
        # remote access off it refuses every client but loopback.
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpThreadsCount": 8,
        "TcpNoDelay": True,
        "HttpDescribeErrors": True,
        "WebDavEnabled": False,
        "DicomServerEnabled": True,
        "DicomPort": dicom_port,
        "DicomAet": aet,
        "DicomCheckCalledAet": False,
        "DicomCheckModalityHost": False,
        # Only the registered SCU may talk DIMSE to this PACS, with explicit permissions.
        "DicomAlwaysAllowEcho": False,
        "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowFind": False,
        "DicomAlwaysAllowFindWorklist": False,
        "DicomAlwaysAllowGet": False,
        "DicomAlwaysAllowMove": False,
        "DicomModalitiesInDatabase": False,
        "DicomModalities": {
            "scu": {
                "AET": scu_aet,
                "Host": "127.0.0.1",
                "Port": scu_port,  # the C-MOVE destination when the SCU asks for itself
                "AllowEcho": True,
                "AllowFind": True,
                "AllowFindWorklist": False,
                "AllowGet": True,
                "AllowMove": True,
                "AllowStore": True,
                "AllowStorageCommitment": False,
                "AllowTranscoding": True,
            }
        },
    }


@dataclass
class OrthancServer:
    """A throwaway Orthanc PACS on 127.0.0.1 with the DICOMweb plugin."""

    root: Path
    http_port: int
    dicom_port: int
    aet: str
    scu_aet: str
    scu_port: int
    process: subprocess.Popen[bytes] | None = None
    _local: threading.local = field(default_factory=threading.local, repr=False)

    @classmethod
    def start(
        cls, aet: str = "ORTHANC", scu_aet: str = "IMAGINGBIOBANK", scu_port: int | None = None
    ) -> OrthancServer:
        binary = shutil.which("Orthanc") or shutil.which("Orthanc", path="/usr/sbin:/sbin")
        if binary is None:
            raise ServerUnavailableError("Orthanc is not installed (Debian package orthanc)")
        if not ORTHANC_DICOMWEB_PLUGIN.exists():
            raise ServerUnavailableError(
                f"the Orthanc DICOMweb plugin {ORTHANC_DICOMWEB_PLUGIN} is not installed"
                " (Debian package orthanc-dicomweb)"
            )
        root = Path(tempfile.mkdtemp(prefix="imaging-biobank-orthanc-"))
        server = cls(
            root,
            free_port(),
            free_port(),
            aet,
            scu_aet,
            scu_port if scu_port is not None else free_port(),
        )
        config = root / "config.json"
        config.write_text(
            json.dumps(
                _orthanc_config(
                    root, server.http_port, server.dicom_port, aet, scu_aet, server.scu_port
                ),
                indent=2,
            )
        )
        with (root / "orthanc.log").open("wb") as log:
            server.process = subprocess.Popen(
                [binary, str(config)],
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Orthanc 1.10 itself reads the "TcpNoDelay" option above, not this variable.
                env={**os.environ, "TCP_NODELAY": "1"},
            )
        try:
            server._wait_ready(timeout=30.0)
        except BaseException:
            server.stop()
            raise
        return server

    @property
    def url(self) -> str:
        """The REST API's base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def _session(self) -> Any:
        """A ``requests`` session per thread (sessions are not thread-safe)."""
        import requests

        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = (self.root / "orthanc.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _wait_ready(self, timeout: float) -> None:
        import requests

        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"Orthanc exited with {self.process.returncode} while starting:\n"
                    f"{self.log_tail()}"
                )
            with contextlib.suppress(requests.RequestException):  # not listening yet
                if requests.get(f"{self.url}/system", timeout=2).ok:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Orthanc did not answer on {self.url} within {timeout:.0f} s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.1)

    def _upload_one(self, path: Path) -> bool:
        response = self._session().post(f"{self.url}/instances", data=path.read_bytes())
        if response.ok:
            return response.json().get("Status") in ("Success", "AlreadyStored")
        try:
            error = response.json().get("OrthancError", "")
        except ValueError:
            error = ""
        if response.status_code == 400 and error == "Bad file format":
            return False  # not a DICOM file
        raise RuntimeError(
            f"Orthanc refused {path}: HTTP {response.status_code} {response.text[:500]}"
        )

    def upload(self, paths: Iterable[Path]) -> int:
        """Store the files in Orthanc; returns how many it accepted (non-DICOM files are not)."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            return sum(pool.map(self._upload_one, [Path(p) for p in paths]))

    def instance_count(self) -> int:
        response = self._session().get(f"{self.url}/statistics")
        response.raise_for_status()
        return int(response.json()["CountInstances"])

    def clear(self) -> None:
        """Delete every patient (and so every study, series and instance)."""
        session = self._session()
        response = session.get(f"{self.url}/patients")
        response.raise_for_status()
        for patient in response.json():
            session.delete(f"{self.url}/patients/{patient}").raise_for_status()

    def stop(self) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            session = getattr(self._local, "session", None)
            if session is not None:
                session.close()
            shutil.rmtree(self.root, ignore_errors=True)
