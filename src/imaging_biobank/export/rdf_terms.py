"""The names of the RDF export: its namespaces (``data/rdf_namespaces.csv``, with where each IRI
form comes from), the IRIs of the biobank's own rows under a configurable base, and the
column-to-property mapping of the DICOM entities (``data/rdf_attributes.csv``).

IRIs do not change between exports of the same data: biobanks, collections, studies and
contacts are named by their BBMRI-ERIC ids, donors by pseudonym, samples by collection and
sample id, events by their (random) identifier, DICOM studies, series, instances and SOP
classes by their UIDs as ``urn:oid:`` IRIs (UIDs are pseudonymised at ingest), vocabulary
terms by the standard's IRI where there is one (SNOMED CT, ICD-10, DICOM) and otherwise by
vocabulary edition and code. Database ids never appear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Final
from urllib.parse import quote

from rdflib import Graph, Namespace, URIRef

from imaging_biobank.export.data_files import data_rows, data_text

# not resolvable on purpose: a deployment that publishes its graph sets a base it serves
DEFAULT_BASE: Final = "urn:imaging-biobank:"
# what a path segment may keep unescaped (RFC 3987 ipchar, less '/', '?' and '#')
_SAFE: Final = "-._~:@!$&'()*+,;="
_OID: Final = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
_BASE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]*")


@dataclass(frozen=True)
class NamespaceInfo:
    """One prefix of the export: its IRI, what it is, what we use it for, and the source."""

    prefix: str
    namespace: str
    name: str
    used_for: str
    source: str


@cache
def namespaces() -> tuple[NamespaceInfo, ...]:
    """Every namespace of the export, as ``data/rdf_namespaces.csv`` lists it."""
    return tuple(NamespaceInfo(**row) for row in data_rows("rdf_namespaces.csv"))


@cache
def prefixes() -> dict[str, str]:
    """prefix -> namespace IRI."""
    return {n.prefix: n.namespace for n in namespaces()}


def ns(prefix: str) -> Namespace:
    """The namespace of a prefix of the export."""
    return Namespace(prefixes()[prefix])


def curie(text: str) -> URIRef:
    """``dicom:SliceThickness`` as its IRI (the prefixes of the export only)."""
    prefix, _, local = text.partition(":")
    return URIRef(prefixes()[prefix] + local)


def bind(graph: Graph) -> Graph:
    """Bind the export's prefixes on ``graph`` (replacing rdflib's defaults for them)."""
    for prefix, iri in prefixes().items():
        graph.bind(prefix, Namespace(iri), override=True, replace=True)
    return graph


IB: Final = ns("ib")
IBV: Final = ns("ibv")
BP: Final = ns("bp")
DICOM: Final = ns("dicom")
DCM: Final = ns("dcm")
SCT: Final = ns("sct")
EFO: Final = ns("efo")
OBO: Final = ns("obo")
COUNTRY: Final = ns("country")
DCAT: Final = ns("dcat")
DCTERMS: Final = ns("dcterms")
SKOS: Final = ns("skos")
FOAF: Final = ns("foaf")
VCARD: Final = ns("vcard")
SCHEMA: Final = ns("schema")
PROV: Final = ns("prov")
XSD: Final = ns("xsd")


class BaseError(ValueError):
    """A base IRI the export cannot mint IRIs under; the message says what is allowed."""


def check_base(base: str) -> str:
    """``base`` if it is an absolute IRI ending in ``/``, ``#`` or ``:`` (so a kind and an
    identifier can follow), else ``BaseError``."""
    if not _BASE.fullmatch(base) or base[-1] not in "/#:":
        raise BaseError(
            f"--base {base!r}: give an absolute IRI ending in '/', '#' or ':', such as"
            f" https://biobank.example.org/rdf/ or {DEFAULT_BASE}"
        )
    return base


def segment(text: str) -> str:
    """An identifier as one IRI path segment (percent-encoded where it must be)."""
    return quote(text, safe=_SAFE)


@dataclass(frozen=True)
class Minter:
    """Mints the IRIs of the biobank's rows under one base."""

    base: str = DEFAULT_BASE

    def item(self, kind: str, *identifiers: str) -> URIRef:
        """``<base><kind>/<identifier>[/<identifier>...]``: a biobank, collection, donor, ..."""
        return URIRef(self.base + kind + "/" + "/".join(segment(i) for i in identifiers))

    def uid(self, uid: str) -> URIRef:
        """A DICOM UID as ``urn:oid:<uid>``; one that is not a valid OID (dirty data) is kept
        under the base, so it still names one thing."""
        text = uid.strip()
        if _OID.fullmatch(text):
            return URIRef("urn:oid:" + text)
        return self.item("dicom-uid", text)


def concept(vocabulary: str, code: str) -> URIRef:
    """A term of a shipped vocabulary edition that has no IRI of its own."""
    return URIRef(IBV + segment(vocabulary) + "/" + segment(code))


def scheme(vocabulary: str) -> URIRef:
    """A shipped vocabulary edition as a concept scheme."""
    return URIRef(IBV + segment(vocabulary))


def body_part(code: str) -> URIRef:
    """An Annex L Body Part Examined defined term."""
    return URIRef(BP + segment(code))


def modality(code: str) -> URIRef:
    """A modality defined term as a DICOM Controlled Terminology concept."""
    return URIRef(DCM + segment(code))


def snomed(code: str) -> URIRef:
    """A SNOMED CT concept."""
    return URIRef(SCT + segment(code))


def duo(code: str) -> URIRef | None:
    """``DUO:0000021`` as its OBO PURL; None for a code of another system."""
    prefix, sep, local = code.partition(":")
    if sep and prefix.upper() == "DUO" and local.isdigit():
        return URIRef(OBO + f"DUO_{local}")
    return None


def efo(code: str) -> URIRef | None:
    """``EFO_0001427`` as its IRI; None for anything else."""
    return URIRef(EFO + code) if re.fullmatch(r"EFO_\d+", code) else None


@dataclass(frozen=True)
class Attribute:
    """One column of the model and the property its values become."""

    table: str
    column: str
    predicate: URIRef
    datatype: URIRef | None
    dicom_tag: str


@cache
def attributes() -> tuple[Attribute, ...]:
    """The column-to-property mapping of the DICOM entities (``data/rdf_attributes.csv``)."""
    return tuple(
        Attribute(
            row["table"],
            row["column"],
            curie(row["predicate"]),
            curie(row["datatype"]) if row["datatype"] else None,
            row["dicom_tag"],
        )
        for row in data_rows("rdf_attributes.csv")
    )


@cache
def attributes_of(table: str) -> tuple[Attribute, ...]:
    """The mapped columns of one table, in file order."""
    return tuple(a for a in attributes() if a.table == table)


@cache
def ontology() -> Graph:
    """The ``ib:`` ontology (``data/rdf_ontology.ttl``): labels, MIABIS codes, DICOM tags."""
    text = data_text("rdf_ontology.ttl")
    return Graph().parse(data=text, format="turtle")
