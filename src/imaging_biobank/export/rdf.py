"""The biobank as RDF: the catalogue (biobanks as ``dcat:Catalog``, collections as
``dcat:Dataset`` with their MIABIS attributes and derived descriptors, MIABIS studies) and the
imaging metadata (DICOM studies, series with modality, body part, dataset type, equipment and
acquisition parameters; donors by pseudonym, samples, diagnoses, segmentations and imaging
biomarkers; instances on request), written as Turtle, JSON-LD or N-Triples.

IRIs are stable (``rdf_terms``): two exports of the same database are isomorphic graphs. The
vocabularies are the standards' own where they have IRIs: DICOM attributes (``dicom:``), DICOM
Controlled Terminology (``dcm:CT``), SNOMED CT (``sct:``, body parts), ICD-10 (``icd:``),
Orphanet, EFO, DUO, DCAT, Dublin Core, SKOS, PROV, vCard, schema.org; ``ib:`` for the model's
own terms. A series' body part carries the Annex L hierarchy (``skos:broader``, ``ib:covers``)
so SPARQL can ask for a region as the cohort query engine does.

No direct identifier: donors appear as their pseudonyms, birth dates as a year, DICOM UIDs as
stored (pseudonymised at ingest); no file locations, device serial numbers or station names.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from rdflib import Graph
from sqlalchemy import Connection

from imaging_biobank.export.rdf_build import Builder, RdfOptions
from imaging_biobank.export.rdf_catalogue import add_catalogue
from imaging_biobank.export.rdf_imaging import Individuals
from imaging_biobank.export.rdf_terms import DEFAULT_BASE, bind, check_base, ontology, prefixes
from imaging_biobank.export.scope import export_scope

# format name -> (rdflib serializer, media type, file suffixes)
FORMATS: Final = {
    "turtle": ("longturtle", "text/turtle", (".ttl", ".turtle")),
    "json-ld": ("json-ld", "application/ld+json", (".jsonld", ".json-ld", ".json")),
    "nt": ("nt", "application/n-triples", (".nt",)),
}


class RdfFormatError(ValueError):
    """A format (or file suffix) the export does not write; the message lists those it does."""


@dataclass
class RdfReport:
    """What an export wrote."""

    out: Path | None
    format: str
    triples: int
    counts: dict[str, int] = field(default_factory=dict)


def format_of(out: Path | None, fmt: str | None) -> str:
    """The format asked for (``turtle``, ``json-ld``, ``nt``), else the one the file's suffix
    names; Turtle when neither says."""
    if fmt:
        name = fmt.lower().replace("jsonld", "json-ld").replace("ttl", "turtle")
        if name not in FORMATS:
            raise RdfFormatError(f"--format {fmt!r}: formats: {', '.join(FORMATS)}")
        return name
    if out is None:
        return "turtle"
    suffix = out.suffix.lower()
    for name, (_, _, suffixes) in FORMATS.items():
        if suffix in suffixes:
            return name
    known = ", ".join(s for _, _, suffixes in FORMATS.values() for s in suffixes)
    raise RdfFormatError(
        f"{out.name}: the suffix {suffix or '(none)'} names no RDF format ({known});"
        " give --format turtle, json-ld or nt"
    )


def build_graph(
    conn: Connection, collections: Sequence[str] = (), options: RdfOptions | None = None
) -> tuple[Graph, dict[str, int]]:
    """The graph of the named collections (all when none is named) and what it holds.
    ``options.level`` ``catalogue`` leaves out every individual-level row (for researchers).
    Raises ``CollectionLookupError`` for an unknown collection and ``BaseError`` for a base
    no IRI can be minted under."""
    options = options or RdfOptions()
    options = replace(options, base=check_base(options.base))
    builder = Builder(conn, export_scope(conn, collections), options, bind(Graph()))
    add_catalogue(builder)
    if options.level == "full":
        Individuals(builder).add()
    if options.ontology:
        builder.graph += ontology()
    return builder.graph, builder.counts


def serialize(graph: Graph, fmt: str = "turtle") -> bytes:
    """The graph in one of the ``FORMATS``; JSON-LD compacted with the export's prefixes."""
    serializer = FORMATS[format_of(None, fmt)][0]
    if serializer == "json-ld":
        text = graph.serialize(format="json-ld", context=dict(prefixes()), auto_compact=True)
        return json.dumps(json.loads(text), indent=1, sort_keys=True).encode("utf-8")
    return graph.serialize(format=serializer, encoding="utf-8")


def export(
    conn: Connection,
    out: Path,
    collections: Sequence[str] = (),
    *,
    fmt: str | None = None,
    base: str = DEFAULT_BASE,
    instances: bool = False,
) -> RdfReport:
    """Write the named collections (all when none is named) to ``out`` as RDF, in ``fmt`` or
    the format the suffix names. Data managers' graph: individual-level rows, exact counts."""
    name = format_of(out, fmt)
    graph, counts = build_graph(conn, collections, RdfOptions(base=base, instances=instances))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(serialize(graph, name))
    return RdfReport(out, name, len(graph), counts)


__all__ = [
    "DEFAULT_BASE",
    "FORMATS",
    "RdfFormatError",
    "RdfOptions",
    "RdfReport",
    "build_graph",
    "export",
    "format_of",
    "serialize",
]
