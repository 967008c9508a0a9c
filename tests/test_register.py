"""Registering biobanks, collections and studies from YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from imaging_biobank.cli import app
from imaging_biobank.db.engine import make_engine, session_factory
from imaging_biobank.db.migrate import upgrade
from imaging_biobank.model import Collection, SampleTissueCollection, Study
from imaging_biobank.register import DocumentError, RegistrationConflictError, register
from tests.conftest import EXAMPLE, row_counts, table_contents

EXAMPLE_TEXT = EXAMPLE.read_text(encoding="utf-8")
NB_TISSUE = "bbmri-eric:ID:ES_PRIMAGE:collection:NB_TISSUE"


def register_text(
    engine: Engine, text: str, name: str = "primage.yaml"
) -> dict[str, dict[str, int]]:
    with session_factory(engine).begin() as session:
        return register(session, text, name).as_dict()


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_example_registers_everything(engine: Engine) -> None:
    report = register_text(engine, EXAMPLE_TEXT)
    assert report["created"] == {
        "contact_information": 2,
        "juristic_person": 1,
        "biobank": 1,
        "collection": 8,
        "study": 1,
    }
    with Session(engine) as session:
        kinds = dict(session.execute(select(Collection.identifier, Collection.kind)).all())
        assert sorted(kinds.values()) == [
            "clinical_variable",
            "clinical_variable",
            "image",
            "image",
            "image",
            "molecular_biomarker",
            "sample_tissue",
            "software_source_code",
        ]
        tissue = session.scalar(select(SampleTissueCollection).filter_by(identifier=NB_TISSUE))
        assert tissue is not None
        assert {t.code for t in tissue.material_types} == {"Tissue (Frozen)", "Tissue (FFPE)"}
        temperatures = tissue.storage_temperatures
        assert {t.code for t in temperatures} == {"-60 °C to -85 °C", "RT"}
        # stored in the MIABIS 2020 edition, mapped to the 2.0 terms the Directory knows
        assert {t.maps_to.directory_id for t in temperatures} == {
            "temperature-60to-85",
            "temperatureRoom",
        }
        study = session.scalar(select(Study))
        assert study is not None and len(study.collections) == 4
        assert study.principal_investigator is not None
        assert study.principal_investigator.identifier == "bbmri-eric:contactID:ES_PRIMAGE_PI"


def test_registering_twice_leaves_one_copy(engine: Engine) -> None:
    register_text(engine, EXAMPLE_TEXT)
    before = table_contents(engine)
    report = register_text(engine, EXAMPLE_TEXT)
    assert report["created"] == {} and report["updated"] == {}
    assert table_contents(engine) == before


def test_a_changed_value_updates_its_row(engine: Engine) -> None:
    register_text(engine, EXAMPLE_TEXT)
    counts = row_counts(engine)
    changed = EXAMPLE_TEXT.replace(
        'storage_temperatures: ["-60 °C to -85 °C", RT]', "storage_temperatures: [temperatureLN]"
    )
    changed = changed.replace("name: DIPG imaging", "name: DIPG MR imaging")
    report = register_text(engine, changed)
    assert report["updated"] == {"collection": 2}
    assert row_counts(engine)["collection"] == counts["collection"]
    with Session(engine) as session:
        tissue = session.scalar(select(SampleTissueCollection).filter_by(identifier=NB_TISSUE))
        assert tissue is not None
        assert [t.code for t in tissue.storage_temperatures] == ["Liquid nitrogen liquid-phase"]


def test_bad_storage_temperature_is_refused_with_field_line_and_allowed_values(
    engine: Engine,
) -> None:
    bad = EXAMPLE_TEXT.replace('"-60 °C to -85 °C", RT', '"minus eighty", RT')
    before = table_contents(engine)
    with pytest.raises(DocumentError) as error:
        register_text(engine, bad, "bad.yaml")
    [problem] = error.value.problems
    assert problem.field == "collections[3].storage_temperatures[0]"
    assert problem.line == line_of(bad, "minus eighty")
    message = str(problem)
    assert message.startswith(f"bad.yaml:{problem.line}: collections[3].storage_temperatures[0]:")
    assert (
        "allowed:" in message and "-60 °C to -85 °C" in message and "temperature-60to-85" in message
    )
    assert table_contents(engine) == before


@pytest.mark.parametrize(
    ("old", "new", "field", "says"),
    [
        (
            "id: bbmri-eric:ID:ES_PRIMAGE\n",
            "id: bbmri-eric:ID:ES__PRIMAGE::x\n",
            "biobank.id",
            "'::'",
        ),
        (
            "id: bbmri-eric:ID:ES_PRIMAGE:collection:DIPG_IMAGING",
            "id: bbmri-eric:ID:IT_OTHER:collection:DIPG_IMAGING",
            "collections[1].id",
            "does not start with its biobank id",
        ),
        (
            "id: bbmri-eric:contactID:ES_PRIMAGE_PI",
            "id: ES_PRIMAGE_PI",
            "contacts[1].id",
            "bbmri-eric:contactID:",
        ),
        ("    kind: sample_tissue", "    kind: tissue", "collections[3].kind", "sample_tissue"),
        (
            "    acronym: NB-CLIN",
            "    acronym: NB-CLIN\n    colour: blue",
            "collections[4].colour",
            "allowed: access",
        ),
        (
            "principal_investigator: bbmri-eric:contactID:ES_PRIMAGE_PI",
            "principal_investigator: bbmri-eric:contactID:ES_NOBODY",
            "studies[0].principal_investigator",
            "not a contact of this file",
        ),
        (
            "    age_unit: Years\n    contacts: [bbmri-eric:contactID:ES_PRIMAGE_DM]\n    access:",
            "    contacts: [bbmri-eric:contactID:ES_PRIMAGE_DM]\n    access:",
            "collections[0]",
            "age_unit",
        ),
        ("diseases: [C71.7]", "diseases: [C71.77]", "collections[1].diseases[0]", "disease"),
        (
            "    kind: image\n    acronym: NB-IMG",
            "    kind: image\n    storage_temperatures: [RT]\n    acronym: NB-IMG",
            "collections[0]",
            "only for sample_tissue",
        ),
    ],
)
def test_bad_documents_are_refused_whole(
    engine: Engine, old: str, new: str, field: str, says: str
) -> None:
    assert old in EXAMPLE_TEXT
    bad = EXAMPLE_TEXT.replace(old, new, 1)
    before = table_contents(engine)
    with pytest.raises(DocumentError) as error:
        register_text(engine, bad, "bad.yaml")
    problems = {p.field: str(p) for p in error.value.problems}
    assert field in problems, problems
    assert says in problems[field]
    assert table_contents(engine) == before


def test_every_problem_is_reported_at_once() -> None:
    from imaging_biobank.register.parse import parse_document

    bad = (
        EXAMPLE_TEXT.replace('"-60 °C to -85 °C", RT', '"-60 °C", RT, warm')
        .replace("[IMAGING_DATA, MEDICAL_RECORDS]", "[IMAGES]", 1)
        .replace(
            "bbmri-eric:ID:ES_PRIMAGE:collection:NB_CLINICAL\n    kind",
            "bbmri-eric:ID:ES_PRIMAGE:NB_CLINICAL\n    kind",
        )
    )
    with pytest.raises(DocumentError) as error:
        parse_document(bad, "bad.yaml")
    fields = [p.field for p in error.value.problems]
    lines = [p.line or 0 for p in error.value.problems]
    assert lines == sorted(lines)
    assert {
        "collections[0].data_categories[0]",
        "collections[3].storage_temperatures[2]",
        "collections[4].id",
    } <= set(fields)


def test_yaml_syntax_errors_name_the_line() -> None:
    from imaging_biobank.register.parse import parse_document

    with pytest.raises(DocumentError) as error:
        parse_document("biobank:\n  id: [unclosed\n  name: x\n", "broken.yaml")
    assert str(error.value).startswith("broken.yaml:3: ")
    assert "not valid YAML" in str(error.value)


def test_a_collection_cannot_change_kind(engine: Engine) -> None:
    register_text(engine, EXAMPLE_TEXT)
    before = table_contents(engine)
    changed = EXAMPLE_TEXT.replace("kind: clinical_variable", "kind: molecular_biomarker")
    with pytest.raises(RegistrationConflictError, match="cannot change kind"):
        register_text(engine, changed)
    assert table_contents(engine) == before


def test_cli_refuses_and_writes_nothing(tmp_path: Path, runner: CliRunner) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    upgrade(make_engine(url))
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE_TEXT.replace('"-60 °C to -85 °C", RT', '"minus eighty", RT'))
    before = row_counts(make_engine(url))
    result = runner.invoke(app, ["register", str(bad), "--db", url])
    assert result.exit_code == 1
    line = line_of(bad.read_text(), "minus eighty")
    assert f"{bad}:{line}: collections[3].storage_temperatures[0]" in result.output
    assert "nothing was written" in result.output
    assert row_counts(make_engine(url)) == before
