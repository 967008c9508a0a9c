"""Importing molecular biomarker results (MYCN amplification, ALK mutation, 11q loss, a lab
value) into a Molecular Biomarker Collection, coded where a code exists.

The gene is coded against the shipped HGNC list (symbol or HGNC id; when no gene column is
given, the first word of the biomarker's name is tried: ``MYCN amplification`` → MYCN);
a gene symbol not in the list is kept as given, uncoded, and counted. A LOINC code is
checked by its check digit. A number needs its unit; anything else is a category.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, insert, select, update

from imaging_biobank.catalogue.descriptors import derive_descriptors
from imaging_biobank.db._schema import metadata
from imaging_biobank.db.lookup import find_collection
from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.samples import values
from imaging_biobank.samples.columns import map_headers
from imaging_biobank.samples.donors import donor_ids
from imaging_biobank.samples.importer import BATCH, Refused
from imaging_biobank.samples.table import read_table
from imaging_biobank.samples.terms import TermRows
from imaging_biobank.vocab import catalog

T = metadata.tables
# words of a reported biomarker name that say what kind of alteration it is
ALTERATIONS = (
    "amplification",
    "mutation",
    "rearrangement",
    "fusion",
    "deletion",
    "loss",
    "gain",
    "expression",
    "methylation",
    "translocation",
)
_SYMBOL = re.compile(r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*(?:orf\d+)?")


@dataclass
class BiomarkerSummary:
    collection: str
    rows: int = 0
    stored: int = 0
    unchanged: int = 0
    new_donors: int = 0
    genes_uncoded: int = 0
    refused: list[Refused] = field(default_factory=list)


@dataclass
class _Result:
    source_donor: str
    sample_id: str | None
    result_id: str | None
    biomarker: str
    gene: catalog.Term | None
    gene_symbol: str | None
    loinc: str | None
    alteration: str | None
    method: str | None
    value_number: float | None
    unit: str | None
    value_category: str | None
    value_text: str | None
    result_date: str | None


def check_result(cells: dict[str, str]) -> tuple[_Result | None, list[str]]:
    """The result a row states, or the reasons it cannot be stored."""
    problems: list[str] = []

    def text(name: str) -> str:
        return cells.get(name, "").strip()

    donor, biomarker = text("donor_id"), text("biomarker")
    if not donor:
        problems.append("donor_id: empty")
    if not biomarker:
        problems.append("biomarker: empty (what was tested)")
    gene_text = text("gene") or (biomarker.split()[0] if biomarker else "")
    gene = catalog.index("gene").find(gene_text) if gene_text else None
    symbol = gene.label if gene else (text("gene") or None)
    if text("gene") and gene is None and not _SYMBOL.fullmatch(text("gene")):
        problems.append(f"gene: {text('gene')!r} is neither an HGNC symbol nor an HGNC id")
    loinc = None
    if text("loinc"):
        try:
            loinc = values.loinc(text("loinc"))
        except ValueError as error:
            problems.append(f"loinc: {error}")
    date = None
    if text("result_date"):
        try:
            date = values.partial_date(text("result_date"))
        except ValueError as error:
            problems.append(f"result_date: {error}")
    raw, unit = text("value"), text("unit") or None
    number = values.number(raw) if raw else None
    if number is not None and unit is None:
        problems.append(f"value {raw!r} is a number: give its unit (UCUM; 1 when unitless)")
    if number is None and unit is not None and raw:
        problems.append(f"unit {unit!r} given for a value that is not a number ({raw!r})")
    variant = text("variant") or None
    if not raw and not variant:
        problems.append("no result: give value (number or category) or variant")
    words = biomarker.lower().split()
    alteration = next((a for a in ALTERATIONS if a in words), None)
    if problems:
        return None, problems
    return (
        _Result(
            donor,
            text("sample_id") or None,
            text("result_id") or None,
            biomarker,
            gene,
            symbol,
            loinc,
            alteration,
            text("method") or None,
            number,
            unit if number is not None else None,
            raw if raw and number is None else None,
            variant,
            date,
        ),
        [],
    )


def import_biomarkers(
    engine: Engine,
    path: Path,
    collection: str,
    pseudonymiser: Pseudonymiser,
    sheet: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> BiomarkerSummary:
    """Import a biomarker results file into a molecular biomarker collection."""
    table = read_table(path, sheet)
    mapping = map_headers("biomarkers", table.headers)
    with engine.connect() as conn:
        found = find_collection(conn, collection, "molecular_biomarker")
    summary = BiomarkerSummary(found.identifier, rows=len(table.rows))
    for start in range(0, len(table.rows), BATCH):
        batch = table.rows[start : start + BATCH]
        with engine.begin() as conn:
            terms = TermRows(conn)
            for row in batch:
                if row.error:
                    summary.refused.append(Refused(row.number, row.error))
                    continue
                result, problems = check_result({mapping[h]: v for h, v in row.cells.items()})
                if result is None:
                    summary.refused.append(Refused(row.number, "; ".join(problems)))
                    continue
                _write(conn, terms, found.id, pseudonymiser, result, row.number, summary)
        if progress is not None:
            progress(len(batch))
    with engine.begin() as conn:
        derive_descriptors(conn, found.id)
    return summary


def _write(
    conn: Connection,
    terms: TermRows,
    collection_id: int,
    pseudonymiser: Pseudonymiser,
    result: _Result,
    number: int,
    summary: BiomarkerSummary,
) -> None:
    pseudonym = pseudonymiser.donor(result.source_donor)
    d = T["sample_donor"]
    known = conn.execute(select(d.c.id).where(d.c.pseudonym == pseudonym)).scalar()
    sample_id = None
    if result.sample_id is not None:
        s = T["sample"]
        matches = conn.execute(
            select(s.c.id).where(
                s.c.identifier == result.sample_id,
                s.c.sample_donor_id == (known if known is not None else -1),
            )
        ).all()
        if len(matches) != 1:
            why = "is not stored for this donor" if not matches else "is ambiguous"
            summary.refused.append(
                Refused(number, f"sample_id {result.sample_id!r} {why} (import the samples first)")
            )
            return
        sample_id = int(matches[0].id)
    if known is None:
        summary.new_donors += 1
    donor_id = donor_ids(conn, [pseudonym])[pseudonym]
    if result.result_id:
        basis = f"{pseudonym}|id|{result.result_id}"
    else:
        basis = "|".join(
            [
                pseudonym,
                result.sample_id or "",
                result.biomarker.lower(),
                result.method or "",
                result.result_date or "",
            ]
        )
    if result.gene is None and result.gene_symbol:
        summary.genes_uncoded += 1
    row = {
        "identifier": pseudonymiser.token("biomarker", basis, 32),
        "collection_id": collection_id,
        "sample_donor_id": donor_id,
        "sample_id": sample_id,
        "biomarker": result.biomarker,
        "gene_id": terms.id(result.gene) if result.gene else None,
        "gene_symbol": result.gene_symbol,
        "loinc_code": result.loinc,
        "alteration": result.alteration,
        "method": result.method,
        "value_number": result.value_number,
        "unit": result.unit,
        "value_category": result.value_category,
        "value_text": result.value_text,
        "result_date": result.result_date,
    }
    m = T["molecular_biomarker_result"]
    stored = (
        conn.execute(
            select(m).where(m.c.collection_id == collection_id, m.c.identifier == row["identifier"])
        )
        .mappings()
        .first()
    )
    if stored is None:
        conn.execute(insert(m).values(**row))
        summary.stored += 1
        return
    changes = {k: v for k, v in row.items() if stored[k] != v}
    if changes:
        conn.execute(update(m).where(m.c.id == stored["id"]).values(**changes))
        summary.stored += 1
    else:
        summary.unchanged += 1
