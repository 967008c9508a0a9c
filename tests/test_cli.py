"""The command line as a data manager uses it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imaging_biobank.catalogue.stats import FORMAT
from imaging_biobank.cli import app
from tests.conftest import EXAMPLE


def invoke(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_init_register_stats_show(runner: CliRunner, db_url: str) -> None:
    code, out = invoke(runner, "init", "--db", db_url)
    assert code == 0 and "Created" in out
    code, out = invoke(runner, "init", "--db", db_url)
    assert code == 0 and "nothing changed" in out
    code, out = invoke(runner, "register", str(EXAMPLE), "--db", db_url)
    assert code == 0 and "Registered" in out
    code, out = invoke(runner, "register", str(EXAMPLE), "--db", db_url)
    assert code == 0 and "already registered; nothing changed" in out
    code, out = invoke(runner, "stats", "--db", db_url, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["format"] == FORMAT
    assert data["entities"]["collection"] == 8 and data["entities"]["biobank"] == 1
    assert set(data) == {"format", "schema_revision", "entities", "collections", "vocabularies"}
    collection = data["collections"][0]
    assert set(collection) == {
        "id",
        "kind",
        "name",
        "acronym",
        "biobank",
        "donors",
        "samples",
        "imaging_studies",
        "imaging_series",
        "imaging_instances",
    }
    assert {v["name"] for v in data["vocabularies"]} >= {
        "body-part-examined.primage",
        "disease.icd-10",
    }
    code, out = invoke(runner, "stats", "--db", db_url)
    assert code == 0 and "NB_TISSUE" in out
    assert "…" not in out and "clinical" in out and "instances" in out  # fits 80 columns
    code, out = invoke(
        runner,
        "show",
        "collection",
        "bbmri-eric:ID:ES_PRIMAGE:collection:NB_TISSUE",
        "--db",
        db_url,
    )
    assert code == 0
    assert "bbmri-eric:ID:ES_PRIMAGE:collection:NB_TISSUE" in out  # no emoji for ":ID:"
    assert "Tissue (Frozen)" in out and "declared" in out and "-60 °C to -85 °C" in out


def test_unknown_collection_lists_the_known_ones(runner: CliRunner, sqlite_url: str) -> None:
    invoke(runner, "init", "--db", sqlite_url)
    invoke(runner, "register", str(EXAMPLE), "--db", sqlite_url)
    code, out = invoke(runner, "show", "collection", "NOPE", "--db", sqlite_url)
    assert code == 2 and "no collection 'NOPE'" in out and "NB_IMAGING" in out


def test_collections_answer_to_their_short_name_while_it_is_unique(
    runner: CliRunner, sqlite_url: str, tmp_path: Path
) -> None:
    invoke(runner, "init", "--db", sqlite_url)
    invoke(runner, "register", str(EXAMPLE), "--db", sqlite_url)
    code, out = invoke(runner, "show", "collection", "NB_TISSUE", "--db", sqlite_url)
    assert code == 0 and "bbmri-eric:ID:ES_PRIMAGE:collection:NB_TISSUE" in out
    for pattern in ("NB%", "NB_TISSU_", "TISSUE"):  # no wildcards, no partial names
        code, out = invoke(runner, "show", "collection", pattern, "--db", sqlite_url)
        assert code == 2 and f"no collection {pattern!r}" in out, pattern
    other = tmp_path / "other.yaml"
    other.write_text(EXAMPLE.read_text(encoding="utf-8").replace("ES_PRIMAGE", "ES_OTHER"))
    code, out = invoke(runner, "register", str(other), "--db", sqlite_url)
    assert code == 0, out
    code, out = invoke(runner, "show", "collection", "NB_TISSUE", "--db", sqlite_url)
    assert code == 2 and "more than one collection" in out
    assert "ES_OTHER:collection:NB_TISSUE" in out and "ES_PRIMAGE:collection:NB_TISSUE" in out


def test_commands_on_a_missing_database_say_how_to_create_it(
    runner: CliRunner, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    for args in (["stats"], ["register", str(EXAMPLE)], ["show", "collection", "x"]):
        code, out = invoke(runner, *args, "--db", url)
        assert code == 2 and "imaging-biobank init" in out
    assert not (tmp_path / "none.db").exists()


def test_database_url_from_the_environment(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("IMAGING_BIOBANK_DB", url)
    code, _ = invoke(runner, "init")
    assert code == 0 and (tmp_path / "env.db").exists()


def test_bad_database_url(runner: CliRunner) -> None:
    code, out = invoke(runner, "init", "--db", "nosuchdb://x")
    assert code == 2 and "not a database URL" in out


def test_schema_outputs(runner: CliRunner) -> None:
    code, out = invoke(runner, "schema", "--mermaid")
    assert code == 0 and out.startswith("erDiagram\n")
    assert "imaging_series ||--o{ imaging_instance" in out
    assert 'collection ||--o| image_collection : "id"' in out
    for dialect in ("sqlite", "postgresql"):
        code, out = invoke(runner, "schema", "--sql", dialect)
        assert code == 0 and "CREATE TABLE imaging_series" in out
    code, out = invoke(runner, "schema")
    assert code == 2


def test_vocab_commands(runner: CliRunner) -> None:
    code, out = invoke(runner, "vocab", "lookup", "body_part_examined", "43799004")
    assert code == 0 and "816094009" in out and "CHEST" in out
    code, out = invoke(runner, "vocab", "lookup", "storage_temperature", "--", "-80")
    assert code == 0 and "-60 °C to -85 °C" in out
    code, out = invoke(runner, "vocab", "lookup", "storage_temperature", "warm")
    assert code == 1 and "allowed:" in out
    code, out = invoke(runner, "vocab", "list")
    assert code == 0 and "body-part-examined.primage" in out
    code, out = invoke(runner, "vocab", "terms", "modality", "--search", "tomography")
    assert code == 0 and "CT" in out
    code, out = invoke(runner, "vocab", "terms", "nosuchtable")
    assert code == 2 and "body_part_examined" in out


COMMANDS = [
    ["init"],
    ["register"],
    ["stats"],
    ["schema"],
    ["show", "collection"],
    ["vocab", "list"],
    ["vocab", "terms"],
    ["vocab", "lookup"],
    ["import", "donors"],
    ["import", "samples"],
    ["import", "events"],
    ["import", "biomarkers"],
    ["linkage"],
    ["check"],
    ["harmonise", "combat"],
    ["provenance"],
    ["import", "segmentation"],
    ["import", "deep-features"],
    ["import", "curve"],
    ["import", "radiomics"],
    ["import", "report"],
    ["import", "registration"],
    ["analyse", "radiomics"],
    ["analyse", "record"],
    ["query"],
    ["serve"],
    ["token", "create"],
    ["token", "list"],
    ["token", "revoke"],
    ["audit"],
    ["export", "directory"],
    ["export", "fhir"],
    ["export", "omop"],
    ["export", "argo"],
    ["export", "rdf"],
    ["import", "fhir"],
    ["sparql"],
    ["release", "create"],
    ["release", "list"],
    ["release", "show"],
    ["release", "manifest"],
    ["release", "diff"],
    ["release", "verify"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(runner: CliRunner, command: list[str]) -> None:
    code, out = invoke(runner, *command, "--help")
    assert code == 0
    assert "Example" in out and "imaging-biobank" in out


HEAVY = ("imaging_biobank.model", "sqlalchemy.orm", "alembic", "pydantic")


def loaded_after(args: list[str]) -> list[str]:
    probe = (
        "import sys\nfrom imaging_biobank.cli import app\n"
        f"try:\n    app({args!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})), file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return eval(out.stderr.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_help_and_stats_start_without_the_orm(sqlite_url: str, runner: CliRunner) -> None:
    """Start-up time: `--help` and `stats` must not import the ORM, the model, Alembic or
    pydantic (which Typer 0.26+ would load for every option)."""
    assert loaded_after(["--help"]) == []
    invoke(runner, "init", "--db", sqlite_url)
    assert loaded_after(["stats", "--db", sqlite_url]) == []
