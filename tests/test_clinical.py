"""Clinical e-forms: REDCap data dictionaries, FHIR Questionnaires, checked records."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from imaging_biobank.cli import app
from imaging_biobank.clinical import branching
from imaging_biobank.clinical.dictionary import DictionaryError, parse_choices, read_dictionary
from imaging_biobank.clinical.questionnaire import questionnaire
from imaging_biobank.clinical.records import ExportColumnsError, read_export
from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.vocab import catalog
from imaging_biobank.vocab.codes import (
    CodeError,
    check_atc,
    check_icd10,
    check_loinc,
    check_snomed,
    check_ucum,
    verhoeff_valid,
)
from tests.conftest import NB_IMAGING, ROOT, STS_001, table_contents

FORMS = ROOT / "examples" / "forms"
NB_CLINICAL = "bbmri-eric:ID:ES_PRIMAGE:collection:NB_CLINICAL"
DIPG_CLINICAL = "bbmri-eric:ID:ES_PRIMAGE:collection:DIPG_CLINICAL"
CLINICAL_TABLES = ["e_form", "e_form_field", "clinical_record", "clinical_value", "sample_donor"]

HEADER = (
    'Variable / Field Name,Form Name,Section Header,Field Type,Field Label,"Choices, Calculations,'
    ' OR Slider Labels",Field Note,Text Validation Type OR Show Slider Number,Text Validation Min,'
    "Text Validation Max,Identifier?,Branching Logic (Show field only if...),Required Field?,"
    "Custom Alignment,Question Number (surveys only),Matrix Group Name,Matrix Ranking?,"
    "Field Annotation\n"
)
ROWS = "".join(
    line + "\n"
    for line in (
        "record_id,baseline,,text,Record ID,,,,,,,,,,,,,",
        "initials,baseline,,text,Initials,,,,,,y,,,,,,,",
        "age,baseline,Patient,text,Age (years),,,integer,0,18,,,y,,,,,@IB-UNIT=a",
        'sex,baseline,,radio,Sex,"1, Male | 2, Female",,,,,,,y,,,,,'
        '"@IB-CHOICE=1=snomed|248153007 @IB-CHOICE=2=http://snomed.info/sct|248152002 @HIDDEN"',
        'stage,baseline,Disease,dropdown,INRG stage,"1, L1 | 2, L2 | 3, M | 4, MS",,,,,,,,,,,,',
        'sites,baseline,,checkbox,Metastatic sites,"1, Bone marrow | 2, Bone | 3, Liver,'
        " spleen or skin\",,,,,,[stage] = '3' OR [stage] = '4',,,,,,",
        "ldh,baseline,,text,LDH,,U/L,number,0,20000,,,,,,,,@IB-CODE=loinc|2532-0 @IB-UNIT=U/L",
        "relapse,baseline,,yesno,Relapse,,,,,,,,y,,,,,",
        "relapse_date,baseline,,text,Date of relapse,,,date_ymd,2000-01-01,today,,"
        "[relapse] = '1',y,,,,,",
        "relapse_site,baseline,,text,Site of relapse,,,,,,,"
        '"[relapse]=\'1\' and [sites(1)] = ""1""",,,,,,',
        "diagnosis,baseline,,text,Diagnosis (ICD-10),,,,,,,,,,,,,@IB-VALUESET=icd-10",
        'followup_years,baseline,,calc,Years of follow-up,"datediff([relapse_date],'
        " 'today', 'y')\",,,,,,,,,,,,",
        "info,baseline,,descriptive,<b>Thank you</b>,,,,,,,,,,,,,",
        'late_effects,baseline,,notes,Late effects,,,,,,,"datediff([relapse_date],'
        " 'today', 'y') > 1\",,,,,,",
    )
)
DICTIONARY = (HEADER + ROWS).encode()

EXPORT_HEADER = [
    "record_id",
    "initials",
    "age",
    "sex",
    "stage",
    "sites___1",
    "sites___2",
    "sites___3",
    "ldh",
    "relapse",
    "relapse_date",
    "relapse_site",
    "diagnosis",
    "followup_years",
    "late_effects",
    "baseline_complete",
]
GOOD_1 = ["P-1", "AB", "4", "1", "3", "1", "0", "1", "1200", "1", "2021-05-01", "marrow", "C74.9"]
GOOD_1 += ["2.5", "", "2"]
GOOD_5 = ["P-5", "CD", "2", "2", "1", "0", "0", "0", "350.5", "0", "", "", "C74.9", "", "", "1"]


def export(*rows: list[str], header: list[str] = EXPORT_HEADER) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def with_cells(row: list[str], **cells: str) -> list[str]:
    changed = list(row)
    for name, value in cells.items():
        changed[EXPORT_HEADER.index(name)] = value
    return changed


BAD_RANGE = with_cells(GOOD_1, record_id="P-2", age="30")
BAD_CHOICE = with_cells(GOOD_1, record_id="P-3", sex="3")
BAD_BRANCHING = with_cells(GOOD_5, record_id="P-4", relapse_date="2020-01-01")
RECORDS = export(GOOD_1, BAD_RANGE, BAD_CHOICE, BAD_BRANCHING, GOOD_5)


def invoke(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def url_of(engine: Engine) -> str:
    return str(engine.url.render_as_string(hide_password=False))


def query(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


# --- the data dictionary ----------------------------------------------------------------


def test_choices_are_code_label_pairs_and_labels_keep_their_commas() -> None:
    choices, errors = parse_choices("1, Yes | 0, No | 3, Liver, spleen or skin | 4s, Stage 4S")
    assert [(c.code, c.label) for c in choices] == [
        ("1", "Yes"),
        ("0", "No"),
        ("3", "Liver, spleen or skin"),
        ("4s", "Stage 4S"),
    ]
    assert errors == []
    _, errors = parse_choices("1, Yes | No | 1, Again")
    assert len(errors) == 2 and "'No' has no code" in errors[0] and "twice" in errors[1]


def test_a_dictionary_gives_typed_fields_with_their_bindings() -> None:
    dictionary = read_dictionary(DICTIONARY)
    [form] = dictionary.forms
    assert dictionary.record_id_field == "record_id" and len(dictionary.sha256) == 64
    fields = {f.name: f for f in form.fields}
    assert fields["initials"].identifier and fields["age"].required
    assert (fields["age"].validation, fields["age"].minimum, fields["age"].maximum) == (
        "integer",
        "0",
        "18",
    )
    assert fields["age"].unit == "a" and fields["age"].section_header == "Patient"
    sex = fields["sex"]
    assert [(c.code, c.coding.code if c.coding else None) for c in sex.choices] == [
        ("1", "248153007"),
        ("2", "248152002"),
    ]
    assert fields["ldh"].code is not None and fields["ldh"].code.system == "http://loinc.org"
    assert fields["diagnosis"].value_set == "icd-10"
    assert fields["followup_years"].calculation.startswith("datediff(")
    assert isinstance(fields["sites"].condition, branching.Junction)
    assert fields["relapse_site"].condition is not None
    assert fields["late_effects"].condition is None
    assert fields["late_effects"].branching_logic.startswith("datediff(")
    [notice] = dictionary.notices
    assert notice.field == "late_effects" and "function datediff() is not evaluated" in (
        notice.message
    )


def test_api_keys_are_accepted_as_headers() -> None:
    dictionary = read_dictionary((FORMS / "dipg.csv").read_bytes())
    assert [f.name for f in dictionary.forms] == ["dipg_clinical"]
    assert dictionary.forms[0].field("radiotherapy_dose").unit == "Gy"  # type: ignore[union-attr]


def test_unknown_headers_are_refused_naming_them_and_what_is_allowed() -> None:
    data = HEADER.replace("Field Note", "Field Notes").replace("Matrix Ranking?", "Colour")
    with pytest.raises(DictionaryError) as caught:
        read_dictionary((data + ROWS).encode())
    message = str(caught.value)
    assert "'Field Notes'" in message and "'Colour'" in message and "unknown column" in message
    assert "'Field Note' (field_note)" in message  # what is allowed
    assert all(row == 1 for row, _, _ in caught.value.problems)


def test_unknown_field_types_and_validations_are_refused_with_row_and_allowed() -> None:
    rows = ROWS.replace("ldh,baseline,,text,", "ldh,baseline,,number,").replace(
        "date_ymd,2000-01-01", "date_iso,2000-01-01"
    )
    with pytest.raises(DictionaryError) as caught:
        read_dictionary((HEADER + rows).encode())
    problems = {(row, column): message for row, column, message in caught.value.problems}
    assert "unknown field type 'number'" in problems[(8, "Field Type")]
    assert "allowed: text, notes, dropdown, radio, checkbox" in problems[(8, "Field Type")]
    column = "Text Validation Type OR Show Slider Number"
    assert "unknown validation type 'date_iso'" in problems[(10, column)]
    assert "date_dmy (a date (D-M-Y))" in problems[(10, column)]


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        ("@IB-COLOUR=red", "unknown tag '@IB-COLOUR=red'; allowed: @IB-CODE"),
        ("@IB-CODE=loinc|2532-1", "wrong LOINC check digit"),
        ("@IB-CODE=snomed|248153008", "wrong SNOMED CT check digit"),
        ("@IB-CODE=meddra|10000001", "not a code system we check"),
        ("@IB-VALUESET=icd-10", "@IB-VALUESET is for text fields without a validation type"),
        ("@IB-UNIT", "@IB-UNIT needs a value"),
        ("@IB-CHOICE=7=snomed|248153007", "names choice '7'"),
    ],
)
def test_bad_coding_tags_are_refused(annotation: str, expected: str) -> None:
    rows = ROWS.replace("@IB-CODE=loinc|2532-0 @IB-UNIT=U/L", annotation)
    if "CHOICE" in annotation:
        rows = ROWS.replace(
            "@IB-CHOICE=1=snomed|248153007 @IB-CHOICE=2=http://snomed.info/sct|248152002",
            annotation,
        )
    with pytest.raises(DictionaryError) as caught:
        read_dictionary((HEADER + rows).encode())
    assert expected in str(caught.value)
    assert all(column == "Field Annotation" for _, column, _ in caught.value.problems)


def test_min_max_and_flags_are_checked() -> None:
    rows = ROWS.replace("integer,0,18,,,y", "integer,20,18,,,yes please")
    rows = rows.replace("number,0,20000", "number,zero,20000")
    with pytest.raises(DictionaryError) as caught:
        read_dictionary((HEADER + rows).encode())
    message = str(caught.value)
    assert "max 18 is below min 20" in message and "'zero' is not a number" in message
    assert "'yes please' is not 'y' or empty" in message


# --- codes ------------------------------------------------------------------------------


def test_snomed_check_digits_hold_for_every_snomed_code_we_ship() -> None:
    codes = {t.get("snomed_code") for t in catalog.terms("body-part-examined.annex-l")}
    codes.discard("")
    assert len(codes) > 100
    assert all(verhoeff_valid(code) for code in codes)
    for code in ("248153007", "248152002", "138875005"):  # used by our forms and tests
        assert check_snomed(code) == code
    for wrong in ("248153008", "248153017", "0248153007", "12345"):
        with pytest.raises(CodeError):
            check_snomed(wrong)


def test_loinc_atc_icd10_and_ucum_checks() -> None:
    assert check_loinc("2532-0") == "2532-0" and check_loinc("2276-4") == "2276-4"
    for wrong in ("2532-1", "2532", "LDH"):
        with pytest.raises(CodeError):
            check_loinc(wrong)
    assert check_atc("l01xa01") == "L01XA01" and check_atc("L01") == "L01"
    for wrong in ("E01XA01", "L1XA01", "L01XA1"):
        with pytest.raises(CodeError):
            check_atc(wrong)
    assert check_icd10("c74.9") == "C74.9" and check_icd10("C71.7") == "C71.7"
    for wrong in ("C74.99", "Adrenal gland, unspecified", "C00-C97", "II"):
        with pytest.raises(CodeError):
            check_icd10(wrong)
    assert check_ucum("10*9/L") == "10*9/L"
    for wrong in ("mg /dL", "mmol{/L", ""):
        with pytest.raises(CodeError):
            check_ucum(wrong)


# --- branching logic --------------------------------------------------------------------


@pytest.mark.parametrize(
    "logic",
    [
        "[relapse] = '1'",
        "[a] <> ''",
        '[a] != "x" and [b] >= 5',
        "([a] = '1' OR [b] < 2.5) And [c(3)] = '1'",
        "[age]>=1 and [age]<=18",
        "'1' = [a]",
    ],
)
def test_common_branching_logic_is_parsed(logic: str) -> None:
    assert branching.parse(logic) is not None


@pytest.mark.parametrize(
    ("logic", "reason"),
    [
        ("datediff([d1], 'today', 'y') > 1", "function datediff()"),
        ("[event-name] = 'baseline_arm_1'", "smart variable"),
        ("[baseline_arm_1][relapse] = '1'", "event or instance prefixes"),
        ("[a] = '1' and", "ends too early"),
        ("[a] + 1 > 2", "expected a comparison after [a], found '+'"),
        ("(([a] = '1')", "not closed"),
    ],
)
def test_other_branching_logic_is_not_evaluated(logic: str, reason: str) -> None:
    with pytest.raises(branching.NotEvaluated, match=re.escape(reason)):
        branching.parse(logic)


def test_branching_compares_as_redcap_does() -> None:
    values = {"a": "1", "b": "", "age": "10", "name": "Bob", "c": "2|3"}

    def value_of(ref: branching.Ref) -> str:
        raw = values.get(ref.field, "")
        return raw if ref.code is None else ("1" if ref.code in raw.split("|") else "0")

    def holds(logic: str) -> bool:
        return branching.evaluate(branching.parse(logic), value_of)

    assert holds("[a] = '1.0'") and holds("[b] = ''") and not holds("[b] <> ''")
    assert holds("[age] > 9") and not holds("[age] > '9' and [age] < 10")  # numbers, not text
    assert not holds("[b] < 5") and not holds("[b] > 5")  # empty is neither
    assert holds("[c(3)] = '1' and [c(1)] = '0'") and holds("[name] = 'Bob' or [x] = '1'")
    assert not holds("[a] = '1' and ([b] <> '' or [c(1)] = '1')")


# --- FHIR Questionnaire -----------------------------------------------------------------


def _items(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for item in resource["item"]:
        found[item["linkId"]] = item
        for child in item.get("item", []):
            found[child["linkId"]] = child
    return found


def test_a_dictionary_round_trips_to_a_fhir_questionnaire() -> None:
    dictionary = read_dictionary(DICTIONARY)
    resource = questionnaire(
        dictionary.forms[0],
        collection=NB_CLINICAL,
        sha256=dictionary.sha256,
        imported_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    )
    data = json.loads(resource.model_dump_json(exclude_none=True))
    parsed = Questionnaire.model_validate(data)  # what a partner does with the JSON
    assert parsed.status == "active" and parsed.version == dictionary.sha256
    assert parsed.url == "http://example.org/fhir/Questionnaire/nb-clinical-baseline"
    assert data["identifier"][0]["value"] == f"{NB_CLINICAL}|baseline"
    assert [i["linkId"] for i in data["item"]] == [
        "record_id",
        "initials",
        "section-1",
        "section-2",
    ]
    groups = [i for i in data["item"] if i["type"] == "group"]
    assert [g["text"] for g in groups] == ["Patient", "Disease"]
    items = _items(data)
    age = items["age"]
    assert age["type"] == "integer" and age["required"] is True
    extensions = {e["url"].rsplit("/", 1)[-1]: e for e in age["extension"]}
    assert extensions["minValue"]["valueInteger"] == 0
    assert extensions["maxValue"]["valueInteger"] == 18
    assert extensions["questionnaire-unit"]["valueCoding"]["code"] == "a"
    sex = items["sex"]
    assert sex["type"] == "choice" and sex["answerOption"][0]["valueCoding"] == {
        "system": "http://snomed.info/sct",
        "code": "248153007",
        "display": "Male",
    }
    stage = items["stage"]
    assert [o["valueCoding"]["code"] for o in stage["answerOption"]] == ["1", "2", "3", "4"]
    assert "system" not in stage["answerOption"][0]["valueCoding"]
    sites = items["sites"]
    assert sites["repeats"] is True and sites["enableBehavior"] == "any"
    assert sites["enableWhen"] == [
        {"question": "stage", "operator": "=", "answerCoding": {"code": "3", "display": "M"}},
        {"question": "stage", "operator": "=", "answerCoding": {"code": "4", "display": "MS"}},
    ]
    relapse_date = items["relapse_date"]
    assert relapse_date["type"] == "date" and relapse_date["required"] is True
    assert relapse_date["enableWhen"] == [
        {"question": "relapse", "operator": "=", "answerBoolean": True}
    ]
    assert "enableBehavior" not in relapse_date
    urls = [e["url"].rsplit("/", 1)[-1] for e in relapse_date["extension"]]
    assert "minValue" in urls and "maxValue" not in urls  # 'today' has no FHIR value
    site = items["relapse_site"]
    assert site["enableBehavior"] == "all" and site["enableWhen"][1] == {
        "question": "sites",
        "operator": "=",
        "answerCoding": {"code": "1", "display": "Bone marrow"},
    }
    assert items["relapse"]["type"] == "boolean"
    assert items["ldh"]["type"] == "decimal"
    assert items["ldh"]["code"] == [{"system": "http://loinc.org", "code": "2532-0"}]
    assert items["ldh"]["item"][0]["text"] == "U/L"  # the field note, as help
    assert items["followup_years"]["type"] == "decimal" and items["followup_years"]["readOnly"]
    assert items["info"] == {"linkId": "info", "text": "Thank you", "type": "display"}
    assert items["diagnosis"]["type"] == "choice"
    assert items["diagnosis"]["answerValueSet"] == "http://hl7.org/fhir/sid/icd-10?fhir_vs"
    late = items["late_effects"]
    assert "enableWhen" not in late and late["type"] == "text"
    assert late["extension"][0]["valueString"].startswith("datediff(")
    assert "late_effects (datediff(" in data["description"]


def test_times_date_times_sliders_and_files_make_a_valid_questionnaire() -> None:
    rows = (
        "record_id,visit,,text,Record ID,,,,,,,,,,,,,\n"
        "seen_at,visit,,text,Seen at,,,datetime_ymd,2020-01-01 08:00,now,,,,,,,,\n"
        "start,visit,,text,Start,,,time,08:00,18:30,,,,,,,,\n"
        "pain,visit,,slider,Pain,No pain | Worst,,number,,,,[start] >= '09:00',,,,,,\n"
        "later,visit,,text,Later,,,,,,,[seen_at] > '2021-01-01 10:00',,,,,,\n"
        "scan,visit,,file,Scan report,,,,,,,,,,,,,\n"
        "drug,visit,,text,Drug (ATC),,,,,,,,,,,,,@IB-VALUESET=atc\n"
    )
    dictionary = read_dictionary((HEADER + rows).encode())
    resource = questionnaire(dictionary.forms[0], collection="X", sha256=dictionary.sha256)
    data = json.loads(resource.model_dump_json(exclude_none=True))
    Questionnaire.model_validate(data)
    items = _items(data)
    assert items["seen_at"]["type"] == "dateTime" and "extension" not in items["seen_at"]
    assert [e["valueTime"] for e in items["start"]["extension"]] == ["08:00:00", "18:30:00"]
    assert items["pain"]["type"] == "integer"
    assert [e["valueInteger"] for e in items["pain"]["extension"][:2]] == [0, 100]
    assert items["pain"]["enableWhen"] == [
        {"question": "start", "operator": ">=", "answerTime": "09:00:00"}
    ]
    assert "enableWhen" not in items["later"] and "later ([seen_at]" in data["description"]
    assert items["scan"]["type"] == "attachment"
    assert items["drug"]["answerValueSet"] == "http://www.whocc.no/atc?fhir_vs"


def test_the_example_forms_make_valid_questionnaires() -> None:
    for name in ("neuroblastoma", "dipg"):
        dictionary = read_dictionary((FORMS / f"{name}.csv").read_bytes())
        assert dictionary.notices == ()
        for form in dictionary.forms:
            resource = questionnaire(form, collection=NB_CLINICAL, sha256=dictionary.sha256)
            assert Questionnaire.model_validate(json.loads(resource.model_dump_json()))


# --- records (pure) ---------------------------------------------------------------------


def test_every_bad_cell_is_reported_and_good_records_are_kept() -> None:
    forms = read_dictionary(DICTIONARY).forms
    result = read_export(RECORDS, forms, today=dt.date(2026, 1, 1))
    cells = [(c.row, c.record, c.field, c.value) for c in result.bad_cells]
    assert cells == [
        (3, "P-2", "age", "30"),
        (4, "P-3", "sex", "3"),
        (5, "P-4", "relapse_date", "2020-01-01"),
    ]
    reasons = [c.reason for c in result.bad_cells]
    assert reasons[0] == "'30' is above the maximum 18"
    assert reasons[1] == "'3' is not one of the choices: 1 (Male), 2 (Female)"
    assert reasons[2] == "hidden by its branching logic ([relapse] = '1'): must be empty"
    assert [r.record_id for r in result.records] == ["P-1", "P-5"]
    assert result.refused == 3 and result.identifier_values == 5  # refused rows too
    values = {(v.field, v.item): v for v in result.records[0].values}
    assert "initials" not in {field for field, _ in values}
    assert values[("age", 0)].number == 4 and values[("age", 0)].unit == "a"
    assert (values[("sex", 0)].code, values[("sex", 0)].system) == (
        "248153007",
        "http://snomed.info/sct",
    )
    assert [item for field, item in values if field == "sites"] == [1, 3]
    assert values[("relapse_date", 0)].date == "2021-05-01"
    assert (values[("diagnosis", 0)].code, values[("ldh", 0)].unit) == ("C74.9", "U/L")
    assert result.records[0].completion == 2


@pytest.mark.parametrize(
    ("cells", "field", "reason"),
    [
        ({"age": "4.5"}, "age", "not a whole number"),
        ({"relapse_date": "31/02/2021"}, "relapse_date", "not a date"),
        ({"relapse_date": "2031-01-01"}, "relapse_date", "above the maximum today"),
        ({"relapse": "yes"}, "relapse", "not 1 or 0"),
        ({"sites___2": "2"}, "sites___2", "a checkbox is 0 or 1"),
        ({"diagnosis": "C7.49"}, "diagnosis", "is not an ICD-10 code"),
        ({"diagnosis": "C74.5"}, "diagnosis", "not in the ICD-10 list"),
        ({"sex": ""}, "sex", "required but empty"),
        ({"stage": "1"}, "sites", "hidden by its branching logic"),
        ({"ldh": "1,200"}, "ldh", "not a number"),
        ({"baseline_complete": "5"}, "baseline_complete", "not 0, 1 or 2"),
        (
            {"relapse_site": "", "relapse": "0", "relapse_date": "", "followup_years": "x"},
            "followup_years",
            "not a number",
        ),
    ],
)
def test_cells_are_checked_by_type_range_choice_code_and_logic(
    cells: dict[str, str], field: str, reason: str
) -> None:
    forms = read_dictionary(DICTIONARY).forms
    result = read_export(export(with_cells(GOOD_1, **cells)), forms, today=dt.date(2026, 1, 1))
    assert [c.field for c in result.bad_cells] == [field]
    assert reason in result.bad_cells[0].reason and result.records == []


def test_dates_in_the_fields_order_are_stored_iso() -> None:
    rows = ROWS.replace("date_ymd,2000-01-01,today", "date_dmy,01-01-2000,today")
    forms = read_dictionary((HEADER + rows).encode()).forms
    result = read_export(export(with_cells(GOOD_1, relapse_date="01-05-2021")), forms)
    dates = [v.date for v in result.records[0].values if v.field == "relapse_date"]
    assert dates == ["2021-05-01"]


def test_columns_of_no_form_refuse_the_whole_export() -> None:
    forms = read_dictionary(DICTIONARY).forms
    header = [*EXPORT_HEADER, "weight", "sites___9"]
    with pytest.raises(ExportColumnsError) as caught:
        read_export(export([*GOOD_1, "20", "0"], header=header), forms)
    assert caught.value.columns == ["weight", "sites___9"]


def test_repeating_and_longitudinal_rows_are_records_of_their_own() -> None:
    forms = read_dictionary(DICTIONARY).forms
    header = [EXPORT_HEADER[0], "redcap_event_name", "redcap_repeat_instrument"]
    header += ["redcap_repeat_instance", *EXPORT_HEADER[1:]]
    base = [GOOD_1[0], "baseline_arm_1", "", "", *GOOD_1[1:]]
    later = [GOOD_1[0], "follow_up_arm_1", "", "", *GOOD_1[1:]]
    repeat = [GOOD_1[0], "baseline_arm_1", "baseline", "2", *GOOD_1[1:]]
    twice = list(repeat)
    result = read_export(export(base, later, repeat, twice, header=header), forms)
    assert [(r.event, r.instance) for r in result.records] == [
        ("baseline_arm_1", ""),
        ("follow_up_arm_1", ""),
        ("baseline_arm_1", "2"),
    ]
    [duplicate] = result.bad_cells
    assert duplicate.row == 5 and "the same record as row 4" in duplicate.reason


# --- records in the database ------------------------------------------------------------


@pytest.fixture
def test_form(tmp_path: Path) -> Path:
    path = tmp_path / "baseline.csv"
    path.write_bytes(DICTIONARY)
    return path


def _import_form(runner: CliRunner, url: str, path: Path, collection: str = NB_CLINICAL) -> str:
    code, out = invoke(runner, "import", "form", str(path), "--collection", collection, "--db", url)
    assert code == 0, out
    return out


def test_records_with_bad_cells_are_refused_cell_by_cell_and_the_rest_stored(
    runner: CliRunner, registered: Engine, key_file: Path, test_form: Path, tmp_path: Path
) -> None:
    url = url_of(registered)
    out = _import_form(runner, url, test_form)
    assert "baseline" in out and "new" in out
    assert "late_effects: branching logic not evaluated" in out
    records = tmp_path / "export.csv"
    records.write_bytes(RECORDS)
    report = tmp_path / "report.jsonl"
    args = ["import", "records", str(records), "-c", "NB_CLINICAL", "--db", url]
    code, out = invoke(runner, *args, "--key-file", str(key_file), "--report", str(report))
    assert code == 1, out
    assert "3 bad cell(s)" in out and "row 3, record P-2, age: '30' is above the maximum 18" in out
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [{k: line[k] for k in ("row", "record", "field", "value")} for line in lines] == [
        {"row": "3", "record": "P-2", "field": "age", "value": "30"},
        {"row": "4", "record": "P-3", "field": "sex", "value": "3"},
        {"row": "5", "record": "P-4", "field": "relapse_date", "value": "2020-01-01"},
    ]
    assert all(line["reason"] for line in lines)
    pseudonymiser = Pseudonymiser.from_file(key_file)
    stored = query(
        registered,
        "SELECT d.pseudonym, r.record_key, r.completion FROM clinical_record r"
        " JOIN sample_donor d ON d.id = r.sample_donor_id ORDER BY r.completion DESC",
    )
    assert [tuple(row) for row in stored] == [
        (pseudonymiser.donor("P-1"), pseudonymiser.token("clinical-record", "P-1||"), 2),
        (pseudonymiser.donor("P-5"), pseudonymiser.token("clinical-record", "P-5||"), 1),
    ]
    everything = str(table_contents(registered, CLINICAL_TABLES))
    for identifying in ("P-1", "P-5", "'AB'", "'CD'"):  # record ids and initials: never stored
        assert identifying not in everything
    [(identifiers,)] = query(
        registered, "SELECT count(*) FROM e_form_field WHERE identifier = :t", t=True
    )
    assert identifiers == 1
    sexes = query(
        registered,
        "SELECT v.raw, v.value_code, v.code_system FROM clinical_value v"
        " JOIN e_form_field f ON f.id = v.e_form_field_id WHERE f.name = 'sex' ORDER BY v.raw",
    )
    assert [tuple(s) for s in sexes] == [
        ("1", "248153007", "http://snomed.info/sct"),
        ("2", "248152002", "http://snomed.info/sct"),
    ]
    [(size, donors)] = query(
        registered,
        "SELECT size, number_of_donors FROM collection WHERE identifier = :i",
        i=NB_CLINICAL,
    )
    assert (size, donors) == (2, 2)


def test_reimport_changes_nothing_and_a_changed_value_replaces_the_old(
    runner: CliRunner, registered: Engine, key_file: Path, test_form: Path, tmp_path: Path
) -> None:
    url = url_of(registered)
    _import_form(runner, url, test_form)
    before_forms = table_contents(registered, ["e_form", "e_form_field"])
    out = _import_form(runner, url, test_form)
    assert "nothing changed" in out
    assert table_contents(registered, ["e_form", "e_form_field"]) == before_forms
    records = tmp_path / "export.csv"
    records.write_bytes(export(GOOD_1, GOOD_5))
    args = ["import", "records", str(records), "-c", "NB_CLINICAL", "--db", url]
    args += ["--key-file", str(key_file)]
    assert invoke(runner, *args)[0] == 0
    before = table_contents(registered, CLINICAL_TABLES)
    code, out = invoke(runner, *args)
    assert code == 0 and "records unchanged" in out
    assert table_contents(registered, CLINICAL_TABLES) == before
    records.write_bytes(
        export(with_cells(GOOD_1, ldh="990", sites___3="0", late_effects="none"), GOOD_5)
    )
    code, out = invoke(runner, *args)
    assert code == 0 and "records updated" in out
    values = query(
        registered,
        "SELECT f.name, v.item, v.value_number FROM clinical_value v"
        " JOIN e_form_field f ON f.id = v.e_form_field_id"
        " WHERE f.name IN ('ldh', 'sites', 'late_effects') ORDER BY f.name, v.item, v.value_number",
    )
    assert [tuple(v) for v in values] == [
        ("late_effects", 0, None),
        ("ldh", 0, 350.5),
        ("ldh", 0, 990.0),
        ("sites", 1, None),
    ]
    [(count,)] = query(registered, "SELECT count(*) FROM clinical_record")
    assert count == 2


def test_a_record_is_the_donor_of_the_same_dicom_patient(
    runner: CliRunner, registered: Engine, key_file: Path, tmp_path: Path
) -> None:
    url = url_of(registered)
    ct = sorted((STS_001 / "CT" / "image").rglob("*.dcm"))[0]
    ingest = ["ingest", str(ct), "-c", NB_IMAGING, "--db", url, "--key-file", str(key_file)]
    code, out = invoke(runner, *ingest, "--workers", "0")
    assert code == 0, out
    _import_form(runner, url, FORMS / "neuroblastoma.csv")
    records = FORMS / "neuroblastoma_records.csv"
    code, out = invoke(
        runner,
        "import",
        "records",
        str(records),
        "-c",
        NB_CLINICAL,
        "--db",
        url,
        "--key-file",
        str(key_file),
    )
    assert code == 0, out
    [(donor_of_images,)] = query(registered, "SELECT DISTINCT sample_donor_id FROM imaging_series")
    rows = query(
        registered,
        "SELECT DISTINCT d.id, d.pseudonym FROM clinical_record r"
        " JOIN sample_donor d ON d.id = r.sample_donor_id",
    )
    by_pseudonym = {pseudonym: id_ for id_, pseudonym in rows}
    assert by_pseudonym[Pseudonymiser.from_file(key_file).donor("STS_001")] == donor_of_images
    assert len(by_pseudonym) == 6


def test_a_donor_field_names_the_donor(
    runner: CliRunner, registered: Engine, key_file: Path, tmp_path: Path
) -> None:
    rows = ROWS + "hospital_id,baseline,,text,Hospital patient id,,,,,,,,,,,,,\n"
    dictionary = tmp_path / "baseline.csv"
    dictionary.write_bytes((HEADER + rows).encode())
    url = url_of(registered)
    _import_form(runner, url, dictionary)
    records = tmp_path / "export.csv"
    records.write_bytes(export([*GOOD_1, "STS_001"], header=[*EXPORT_HEADER, "hospital_id"]))
    args = ["import", "records", str(records), "-c", NB_CLINICAL, "--db", url]
    code, out = invoke(runner, *args, "--key-file", str(key_file), "--donor-field", "hospital_id")
    assert code == 0, out
    [(pseudonym,)] = query(
        registered,
        "SELECT d.pseudonym FROM clinical_record r JOIN sample_donor d ON d.id = r.sample_donor_id",
    )
    assert pseudonym == Pseudonymiser.from_file(key_file).donor("STS_001")
    assert "STS_001" not in str(table_contents(registered, CLINICAL_TABLES))


def test_the_example_forms_and_records_import_without_errors(
    runner: CliRunner, registered: Engine, key_file: Path, tmp_path: Path
) -> None:
    url = url_of(registered)
    for name, collection, rows, forms in (
        ("neuroblastoma", NB_CLINICAL, 6, 2),
        ("dipg", DIPG_CLINICAL, 3, 1),
    ):
        out = _import_form(runner, url, FORMS / f"{name}.csv", collection)
        assert "warning" not in out
        code, out = invoke(
            runner,
            "import",
            "records",
            str(FORMS / f"{name}_records.csv"),
            "-c",
            collection,
            "--db",
            url,
            "--key-file",
            str(key_file),
        )
        assert code == 0, out
        [(records,)] = query(
            registered,
            "SELECT count(*) FROM clinical_record r JOIN collection c ON c.id = r.collection_id"
            " WHERE c.identifier = :i",
            i=collection,
        )
        assert records == rows * forms
    code, out = invoke(runner, "forms", "list", "--db", url, "--json")
    assert code == 0
    listed = {item["form"]: item for item in json.loads(out)}
    assert set(listed) == {"nb_diagnosis", "nb_follow_up", "dipg_clinical"}
    assert listed["nb_diagnosis"]["records"] == 6 and listed["dipg_clinical"]["fields"] == 11
    output = tmp_path / "q.json"
    code, out = invoke(
        runner,
        "forms",
        "questionnaire",
        "nb_follow_up",
        "-c",
        "NB_CLINICAL",
        "--db",
        url,
        "-o",
        str(output),
    )
    assert code == 0, out
    resource = Questionnaire.model_validate(json.loads(output.read_text()))
    assert resource.item is not None and resource.date is not None
    code, out = invoke(runner, "forms", "questionnaire", "nope", "-c", "NB_CLINICAL", "--db", url)
    assert code == 2 and "nb_diagnosis" in out


def test_exports_with_foreign_columns_and_forms_that_clash_are_refused(
    runner: CliRunner, registered: Engine, key_file: Path, test_form: Path, tmp_path: Path
) -> None:
    url = url_of(registered)
    code, out = invoke(
        runner,
        "import",
        "records",
        str(test_form),
        "-c",
        NB_CLINICAL,
        "--db",
        url,
        "--key-file",
        str(key_file),
    )
    assert code == 2 and "no e-forms yet" in out
    _import_form(runner, url, test_form)
    records = tmp_path / "export.csv"
    records.write_bytes(export([*GOOD_1, "70"], header=[*EXPORT_HEADER, "weight_kg"]))
    args = ["import", "records", str(records), "-c", NB_CLINICAL, "--db", url]
    code, out = invoke(runner, *args, "--key-file", str(key_file))
    assert code == 2 and "weight_kg" in out and "nothing stored" in out
    assert query(registered, "SELECT count(*) FROM clinical_record")[0][0] == 0
    code, out = invoke(runner, *args, "--key-file", str(key_file), "-c", NB_IMAGING)
    assert code == 2 and "not a clinical variable one" in out
    other = tmp_path / "other.csv"
    other.write_bytes((HEADER + ROWS.replace("baseline", "second")).encode())
    code, out = invoke(runner, "import", "form", str(other), "-c", NB_CLINICAL, "--db", url)
    assert code == 1 and "record_id (form baseline)" in out
    bad = tmp_path / "bad.csv"
    bad.write_bytes((HEADER + ROWS.replace("radio", "likert")).encode())
    code, out = invoke(runner, "import", "form", str(bad), "-c", NB_CLINICAL, "--db", url)
    assert code == 1 and "row 5, Field Type: unknown field type 'likert'" in out


def test_a_field_with_values_cannot_be_dropped_from_its_form(
    runner: CliRunner, registered: Engine, key_file: Path, test_form: Path, tmp_path: Path
) -> None:
    url = url_of(registered)
    _import_form(runner, url, test_form)
    records = tmp_path / "export.csv"
    records.write_bytes(export(GOOD_1))
    args = ["import", "records", str(records), "-c", NB_CLINICAL, "--db", url]
    assert invoke(runner, *args, "--key-file", str(key_file))[0] == 0
    smaller = tmp_path / "smaller.csv"
    smaller.write_bytes(
        (
            HEADER
            + "".join(
                line + "\n" for line in ROWS.splitlines() if not line.startswith(("ldh,", "info,"))
            )
        ).encode()
    )
    code, out = invoke(runner, "import", "form", str(smaller), "-c", NB_CLINICAL, "--db", url)
    assert code == 1 and "baseline.ldh" in out and "baseline.info" not in out
    without_info = tmp_path / "without_info.csv"
    without_info.write_bytes(
        (
            HEADER
            + "".join(line + "\n" for line in ROWS.splitlines() if not line.startswith("info,"))
        ).encode()
    )
    out = _import_form(runner, url, without_info)
    assert "updated" in out
    assert query(registered, "SELECT count(*) FROM e_form_field WHERE name = 'info'")[0][0] == 0


@pytest.mark.parametrize(
    "command",
    [["import", "form"], ["import", "records"], ["forms", "list"], ["forms", "questionnaire"]],
    ids=" ".join,
)
def test_the_commands_have_help_with_an_example(runner: CliRunner, command: list[str]) -> None:
    code, out = invoke(runner, *command, "--help")
    assert code == 0 and "Example" in out and "imaging-biobank" in out
