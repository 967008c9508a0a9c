"""Create or upgrade a database to the current schema and vocabularies (Alembic)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from imaging_biobank.db import revision

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True)
class UpgradeResult:
    """What ``upgrade`` did: the revision before (None for a new database) and after."""

    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return revision.current_revision(conn)


def upgrade(engine: Engine) -> UpgradeResult:
    """Bring the database to the head revision, in one transaction; a no-op when current."""
    before = current_revision(engine)
    head = head_revision()
    if before != head:
        config = alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    return UpgradeResult(before, head)
