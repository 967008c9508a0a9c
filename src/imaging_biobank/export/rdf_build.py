"""What the parts of the RDF export share while they build one graph: the connection, the
collections in scope, who the graph is for, the IRI minter, and the vocabulary terms the graph
uses, each described once (as a SKOS concept, with the standard's IRI where there is one)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final, Literal

from rdflib import RDF, Graph, URIRef
from rdflib import Literal as Lit
from sqlalchemy import Connection, select

from imaging_biobank.db._schema import metadata
from imaging_biobank.export.rdf_terms import (
    COUNTRY,
    DCTERMS,
    IB,
    SKOS,
    XSD,
    Minter,
    attributes_of,
    body_part,
    concept,
    duo,
    efo,
    modality,
    scheme,
    snomed,
)
from imaging_biobank.export.scope import Scope
from imaging_biobank.query.engine import as_seen
from imaging_biobank.vocab import catalog
from imaging_biobank.vocab.regions import ANNEX_L

T = metadata.tables
CID33: Final = "modality.cid33"
Level = Literal["full", "catalogue"]
EXACT_ROLES: Final = ("data_manager", "admin")  # roles that see exact ages
# extra columns of a vocabulary table the concept description uses
_EXTRA: Final = {
    "collection_category": ("ontology_code",),
    "country": ("alpha3",),
    "disease": ("uri", "parent_id"),
    "dataset_type": ("keyword",),
}


@lru_cache(maxsize=65536)  # acquisition parameters repeat across series
def number(value: float) -> Lit:
    """A stored number as ``xsd:decimal``: the shortest decimal that reads back as the same
    double (DICOM's DS is a decimal string), written without an exponent. Serialisers write
    ``xsd:double`` with six digits in Turtle; a decimal keeps them all. Infinities and NaN,
    which have no decimal, stay doubles."""
    if not math.isfinite(value):
        return Lit(value, datatype=XSD.double)
    text = format(Decimal(repr(value)), "f")
    return Lit(text if "." in text else text + ".0", datatype=XSD.decimal)


@dataclass(frozen=True)
class RdfOptions:
    """How a graph is built: the IRI base, whether DICOM instances are in it, and who it is
    for: ``full`` (data managers: individual-level rows, exact counts) or ``catalogue``
    (biobanks, collections, studies and the terms they use; counts as ``role`` sees them)."""

    base: str = "urn:imaging-biobank:"
    instances: bool = False
    level: Level = "full"
    role: str = "data_manager"
    step: int = 10  # obfuscation step of the researcher role's counts
    ontology: bool = True  # include the ib: ontology's triples


@dataclass(frozen=True)
class TermRow:
    """One row of a vocabulary table, with its edition's name."""

    id: int
    vocabulary: str
    code: str
    label: str
    directory_id: str | None
    maps_to_id: int | None
    extra: dict[str, Any]


@dataclass
class Builder:
    """One graph being built."""

    conn: Connection
    scope: Scope
    options: RdfOptions
    graph: Graph = field(default_factory=Graph)
    counts: dict[str, int] = field(default_factory=dict)
    _terms: dict[str, dict[int, TermRow]] = field(default_factory=dict)
    _described: set[URIRef] = field(default_factory=set)
    _schemes: set[str] = field(default_factory=set)
    _contacts: dict[int, str] | None = None
    _equipment: dict[int, URIRef] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.mint = Minter(self.options.base)
        self._kinds = {c.id: c.kind for c in self.scope.collections}

    def scope_kind(self, collection_id: int) -> str:
        """The kind of a collection of the scope."""
        return self._kinds[collection_id]

    def contact_identifier(self, contact_id: int) -> str:
        """The identifier of a contact person (their IRI's last part)."""
        if self._contacts is None:
            t = T["contact_information"]
            self._contacts = {
                int(i): str(s) for i, s in self.conn.execute(select(t.c.id, t.c.identifier))
            }
        return self._contacts[contact_id]

    def equipment(self, device_id: int) -> URIRef:
        """A piece of equipment (modality information), described once: manufacturer, model,
        software versions and modality. Serial numbers and station names are left out."""
        if device_id in self._equipment:
            return self._equipment[device_id]
        t = T["modality_information"]
        row = self.conn.execute(select(t).where(t.c.id == device_id)).one()
        iri = self.mint.item("equipment", row.fingerprint)
        self._equipment[device_id] = iri
        self.graph.add((iri, RDF.type, IB.Equipment))
        for attribute in attributes_of("modality_information"):
            self.add(iri, attribute.predicate, row._mapping[attribute.column], attribute.datatype)
        self.add(iri, IB.modality, self.term("modality", row.modality_id))
        return iri

    # --- literals ---------------------------------------------------------------------------

    def add(self, subject: URIRef, predicate: URIRef, value: Any, datatype: Any = None) -> None:
        """A triple, unless the value is missing (None or blank text)."""
        if value is None:
            return
        if isinstance(value, URIRef):
            self.graph.add((subject, predicate, value))
            return
        if isinstance(value, str):
            text = value.replace("\x00", "").strip()
            if not text:
                return
            value = text
        if isinstance(value, dt.datetime) and datatype is None:
            value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        if isinstance(value, float):
            self.graph.add((subject, predicate, number(value)))
            return
        self.graph.add((subject, predicate, Lit(value, datatype=datatype)))

    @property
    def exact(self) -> bool:
        """Whether the graph's reader may see exact individual-level values (exact ages):
        data managers and administrators."""
        return self.options.role in EXACT_ROLES

    def count(self, n: int | None) -> int | None:
        """A count as the graph's reader may see it (obfuscated for researchers)."""
        if n is None:
            return None
        return as_seen(int(n), self.options.role, self.options.step)

    def tally(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    # --- vocabulary terms ---------------------------------------------------------------

    def _rows(self, table: str) -> dict[int, TermRow]:
        if table not in self._terms:
            t, v = T[table], T["vocabulary"]
            extra = _EXTRA.get(table, ())
            query = select(
                t.c.id, v.c.name, t.c.code, t.c.label, t.c.directory_id, t.c.maps_to_id,
                *(t.c[c] for c in extra),
            ).join(v, v.c.id == t.c.vocabulary_id)  # fmt: skip
            if table == "disease":  # large: read on demand (term())
                self._terms[table] = {}
                return self._terms[table]
            self._terms[table] = {
                int(r[0]): TermRow(
                    int(r[0]), r[1], r[2], r[3], r[4], r[5], dict(zip(extra, r[6:], strict=True))
                )
                for r in self.conn.execute(query)
            }
        return self._terms[table]

    def _row(self, table: str, term_id: int) -> TermRow:
        rows = self._rows(table)
        if term_id not in rows and table == "disease":
            t, v = T["disease"], T["vocabulary"]
            r = self.conn.execute(
                select(
                    t.c.id,
                    v.c.name,
                    t.c.code,
                    t.c.label,
                    t.c.directory_id,
                    t.c.maps_to_id,
                    t.c.uri,
                    t.c.parent_id,
                )
                .join(v, v.c.id == t.c.vocabulary_id)
                .where(t.c.id == term_id)
            ).one()
            rows[term_id] = TermRow(
                int(r[0]), r[1], r[2], r[3], r[4], r[5], {"uri": r[6], "parent_id": r[7]}
            )
        return rows[term_id]

    def _counterpart(self, table: str, row: TermRow, vocabulary: str) -> TermRow | None:
        """The term of ``vocabulary`` that ``row`` maps to, or that maps to ``row``."""
        if row.vocabulary == vocabulary:
            return row
        rows = self._rows(table)
        target = rows.get(row.maps_to_id) if row.maps_to_id is not None else None
        if target is not None and target.vocabulary == vocabulary:
            return target
        for other in rows.values():
            if other.vocabulary == vocabulary and other.maps_to_id == row.id:
                return other
        return None

    def term(self, table: str, term_id: int | None) -> URIRef | None:
        """The IRI of a vocabulary term the graph uses (described in the graph once)."""
        if term_id is None:
            return None
        row = self._row(table, int(term_id))
        if table == "body_part_examined":
            annex = self._counterpart(table, row, ANNEX_L)
            if annex is not None:
                return self.body_part(annex.code)
        if table == "modality":
            row = self._counterpart(table, row, CID33) or row
            iri = modality(row.code)
        elif table == "dataset_type":
            iri = self.mint.uid(row.code)
        elif table == "disease":
            uri = row.extra.get("uri")
            iri = URIRef(uri) if uri else concept(row.vocabulary, row.code)
        elif table == "use_access_condition":
            iri = duo(row.code) or concept(row.vocabulary, row.code)
        else:
            iri = concept(row.vocabulary, row.code)
        if iri not in self._described:
            self._described.add(iri)
            self._describe(table, row, iri)
        return iri

    def _describe(self, table: str, row: TermRow, iri: URIRef) -> None:
        g = self.graph
        g.add((iri, RDF.type, SKOS.Concept))
        self.add(iri, SKOS.notation, row.code)
        self.add(iri, SKOS.prefLabel, row.label)
        self.add(iri, IB.directoryId, row.directory_id)
        self.add(iri, SKOS.inScheme, self.scheme(row.vocabulary))
        if table == "collection_category":
            self.add(iri, SKOS.exactMatch, efo(row.extra.get("ontology_code") or ""))
        elif table == "country" and row.extra.get("alpha3"):
            self.add(iri, SKOS.exactMatch, URIRef(COUNTRY + row.extra["alpha3"]))
        elif table == "dataset_type":
            self.add(iri, IB.keyword, row.extra.get("keyword"))
        elif table == "disease" and row.extra.get("parent_id") is not None:
            self.add(iri, SKOS.broader, self.term("disease", row.extra["parent_id"]))

    def scheme(self, vocabulary: str) -> URIRef:
        """A vocabulary edition as a ``skos:ConceptScheme`` (edition and source)."""
        iri = scheme(vocabulary)
        if vocabulary not in self._schemes:
            self._schemes.add(vocabulary)
            self.graph.add((iri, RDF.type, SKOS.ConceptScheme))
            try:
                info = catalog.vocabulary(vocabulary)
            except KeyError:
                return iri
            self.add(iri, DCTERMS.title, vocabulary)
            self.add(iri, IB.edition, info.edition)
            self.add(iri, DCTERMS.source, info.source)
        return iri

    def country(self, term_id: int | None) -> URIRef | None:
        """A country as the EU authority's IRI (DCAT-AP's dct:spatial), else as our term."""
        if term_id is None:
            return None
        row = self._row("country", int(term_id))
        alpha3 = row.extra.get("alpha3")
        if alpha3:
            self.term("country", term_id)  # describe it, linked by skos:exactMatch
            return URIRef(COUNTRY + alpha3)
        return self.term("country", term_id)

    def body_part(self, code: str) -> URIRef:
        """An Annex L defined term, with the regions it lies within (``skos:broader``) and
        spans (``ib:covers``) as the shipped edition curates them: the hierarchy the cohort
        query engine's ``body_part`` key follows (``vocab.regions``)."""
        iri = body_part(code)
        if iri in self._described:
            return iri
        self._described.add(iri)
        try:
            found = catalog.term(ANNEX_L, code)
        except KeyError:
            self.graph.add((iri, RDF.type, SKOS.Concept))
            self.add(iri, SKOS.notation, code)
            return iri
        self.graph.add((iri, RDF.type, SKOS.Concept))
        self.add(iri, SKOS.notation, found.code)
        self.add(iri, SKOS.prefLabel, found.label)
        self.add(iri, SKOS.inScheme, self.scheme(ANNEX_L))
        if found.get("snomed_code"):
            self.add(iri, SKOS.exactMatch, snomed(found.get("snomed_code")))
        if found.get("within"):
            self.add(iri, SKOS.broader, self.body_part(found.get("within")))
        for part in found.values("covers"):
            self.add(iri, IB.covers, self.body_part(part))
        return iri
