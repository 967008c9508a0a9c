"""Real servers for the tests, started on loopback in a temporary folder and stopped after.

PostgreSQL: a private cluster made with ``initdb`` from the Debian package (installed by
``scripts/install-test-deps.sh``). As root, the cluster runs as the ``postgres`` user,
because the server refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


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
