"""``imaging-biobank query``: cohort counts (and, for data managers, a manifest)."""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated

import typer

from imaging_biobank.cli import app
from imaging_biobank.cli.common import (
    DbOption,
    JsonOption,
    JsonQueryOption,
    console,
    fail,
    open_database,
    plain,
    read_query,
)


@app.command()
def query(
    text: Annotated[
        str | None,
        typer.Argument(
            help='The query, e.g. "modality = CT and slice_thickness <= 3 and diagnosis in C74".',
            show_default=False,
        ),
    ] = None,
    json_query: JsonQueryOption = None,
    role: Annotated[
        str,
        typer.Option(
            "--role", help="researcher (small counts obfuscated) or data_manager (exact)."
        ),
    ] = "researcher",
    purpose: Annotated[
        list[str] | None,
        typer.Option(
            "--purpose",
            help="What the use is (commercial, genetic, outside_eu, collaboration, ...):"
            " donors and samples whose consent rules it out are left out.",
        ),
    ] = None,
    by: Annotated[
        list[str] | None, typer.Option("--by", help="Also count donors by sex, age or modality.")
    ] = None,
    manifest_format: Annotated[
        str | None,
        typer.Option(
            "--manifest", help="Print the matching series as csv or json (data managers)."
        ),
    ] = None,
    keys: Annotated[bool, typer.Option("--keys", help="List the query keys and exit.")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cohort query across images, samples, donors and diagnoses: counts of donors, samples,
    studies, series and instances, per collection.

    Criteria: modality, body_part, dataset_type, manufacturer, model, kernel, acquisition
    parameters as numbers (slice_thickness, kvp, echo_time, ...), study_date, age, sex,
    diagnosis (ICD-10 with its sub-codes, ORPHA), material_type, storage_temperature,
    collection, study (MIABIS study id), samples (how many), gene (HGNC), and the families
    eform.<field> (any e-form field, typed), biomarker.<gene|name> (a molecular result),
    feature.<name|code> and harmonised.<name|code> (radiomic features, raw or ComBat); quote
    a name that is not a word: biomarker."11q loss" = absent. --keys lists them all.
    Operators: = != < <= > >= in between, and / or / not, parentheses. For the researcher
    role counts of 1 to 9 show as 10 and others are rounded to tens.

    Example: [bold]imaging-biobank query "modality = CT and body_part = ABDOMEN and
    slice_thickness <= 3 and material_type = TISSUE_FROZEN and diagnosis in C74"[/]
    """
    from imaging_biobank.query.ast import to_text
    from imaging_biobank.query.engine import count, manifest
    from imaging_biobank.query.keys import KEYS, QueryKeyError

    if keys:
        for k in KEYS.values():
            unit = f" [{k.unit}]" if k.unit else ""
            console.print(plain(f"{k.name:24} {k.level:7} {k.kind}{unit}  {k.help}"))
        return
    if text is None and json_query is None:
        fail('give a query ("modality = CT") or --json-query FILE; --keys lists the keys')
    tree, declared = read_query(text, json_query, purpose)
    engine = open_database(db)
    with engine.connect() as conn:
        try:
            if manifest_format is not None:
                if manifest_format not in ("csv", "json"):
                    fail("--manifest csv or json")
                rows = manifest(conn, tree, role=role, purpose=declared)
                if manifest_format == "json":
                    print(json.dumps(rows, indent=2, default=str))
                else:
                    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else [])
                    writer.writeheader()
                    writer.writerows(rows)
                return
            result = count(conn, tree, text=to_text(tree), role=role, purpose=declared, by=by or [])
        except QueryKeyError as error:
            fail(str(error))
        except PermissionError as error:
            fail(str(error), 1)
    if as_json:
        print(json.dumps(result.as_json(), indent=2))
        return
    from rich.table import Table

    title = "Cohort" + (" (small counts obfuscated)" if result.obfuscated else "")
    table = Table("collection", "donors", "samples", "studies", "series", "instances", title=title)
    for row in result.by_collection:
        table.add_row(
            plain(row["collection"].rsplit(":", 1)[-1]),
            *(str(row[k]) for k in ("donors", "samples", "studies", "series", "instances")),
        )
    totals = result.totals.__dict__
    table.add_row(
        "all", *(str(totals[k]) for k in ("donors", "samples", "studies", "series", "instances"))
    )
    console.print(plain(result.query))
    console.print(table)
    for name, values in result.strata.items():
        console.print(
            plain(f"donors by {name}: " + ", ".join(f"{k} {v}" for k, v in values.items()))
        )
