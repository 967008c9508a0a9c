"""``imaging-biobank export fhir``: the biobank as FHIR R4 Bundles.

One Bundle per biobank (``<OUT>/<biobank id>.json``; ``:`` becomes ``_`` in the file name)
of type ``transaction``: every entry has ``fullUrl`` ``urn:uuid:<id>`` and ``request`` ``PUT
<Type>/<id>``, so a FHIR server (Blaze, HAPI) loads the file as it is and loading it again
changes nothing. One Bundle per biobank, not one file per resource type, because only then
does every reference resolve inside the file; the file is written entry by entry (memory does
not grow with it) and one entry per line, so re-exports diff line by line. For a biobank too
big for one transaction, export its collections separately (``--collection``).

What it holds, in this order: the juristic person, the biobank and each collection as
Organizations (``fhir_catalogue``); the donors (Patient), their events (Condition,
Observation) and samples (Specimen, sample-diagnosis Observations) (``fhir_individuals``);
ImagingStudies, segmentations (BodyStructure) and imaging biomarkers (Observation)
(``fhir_imaging``); e-forms (Questionnaire), clinical values and molecular biomarker results
(Observation) (``fhir_clinical``); and last the collections' Groups, which list the Patients
and Specimens written before them.

Profiles: MIABIS on FHIR by default, bbmri.de with ``profile="bbmri-de"``. Every resource is
validated with the fhir.resources R4B model of its type and its codes are checked against
the code lists we hold before it is written; one that fails is left out and reported (where
and why), and so is anything that would point at it. A resource claims a profile only when
it holds what the profile requires (``fhir_rules``); else it is written without the claim,
and a notice says why.

Pseudonyms: given the key that made the database's pseudonyms, the Bundle says so by the
key's fingerprint (``Bundle.meta``, our ``pseudonym-key`` extension; the fingerprint names
the key without revealing it). An import with the same key then keeps the pseudonyms and
event identifiers as they are; without it, they are pseudonymised again.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, select

from imaging_biobank.clinical.questionnaire import DEFAULT_BASE
from imaging_biobank.export import fhir_terms
from imaging_biobank.export.fhir_bundle import BundleWriter, Problem
from imaging_biobank.export.fhir_catalogue import write_groups, write_organizations
from imaging_biobank.export.fhir_clinical import write_biomarkers, write_clinical
from imaging_biobank.export.fhir_context import CollectionInfo, Context, T, Terms
from imaging_biobank.export.fhir_imaging import write_imaging
from imaging_biobank.export.fhir_individuals import write_events, write_patients, write_specimens
from imaging_biobank.export.scope import export_scope

PROFILES = fhir_terms.FAMILIES


@dataclass(frozen=True)
class BundleFile:
    """One written Bundle: its file, its biobank and how many resources of each type."""

    path: Path
    biobank: str
    counts: Counter[str]

    @property
    def entries(self) -> int:
        """How many resources the Bundle holds."""
        return self.counts.total()


@dataclass
class FhirExport:
    """What an export wrote, and what it could not (each problem says where and why)."""

    profile: str
    files: list[BundleFile] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notices: list[Problem] = field(default_factory=list)


class KeyMismatchError(ValueError):
    """The key given is not the one the database's de-identification runs recorded."""


def _check_key(conn: Connection, fingerprint: str) -> None:
    """Refuse a key whose fingerprint none of the database's de-identification runs has
    (when it recorded any: then it knows which key made its pseudonyms)."""
    runs = T["deidentification_run"]
    known = set(conn.execute(select(runs.c.key_fingerprint).distinct()).scalars())
    if known and fingerprint not in known:
        raise KeyMismatchError(
            f"the key given (fingerprint {fingerprint}) is not the one this database's"
            f" pseudonyms were made with ({', '.join(sorted(known))})"
        )


def bundle_file_name(biobank: str) -> str:
    """``bbmri-eric:ID:ES_PRIMAGE`` -> ``bbmri-eric_ID_ES_PRIMAGE.json``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", biobank) + ".json"


def export_fhir(
    engine: Engine,
    out: Path,
    collections: Sequence[str] = (),
    *,
    profile: str = "miabis",
    base: str = DEFAULT_BASE,
    key_fingerprint: str | None = None,
) -> FhirExport:
    """Write one Bundle per biobank of the collections named (default: all) into the folder
    ``out``; ``key_fingerprint`` is that of the key the database's pseudonyms were made with
    (written in each Bundle's meta). Raises ``CollectionLookupError`` for an unknown
    collection, ``KeyMismatchError`` for a key the database says is not its own and
    ``ValueError`` for an unknown profile."""
    fam = fhir_terms.family(profile)
    result = FhirExport(profile)
    meta = (
        {
            "extension": [
                fhir_terms.ext(
                    fhir_terms.own("extensions", "pseudonym-key"), "valueString", key_fingerprint
                )
            ]
        }
        if key_fingerprint
        else None
    )
    with engine.connect() as conn:
        if key_fingerprint:
            _check_key(conn, key_fingerprint)
        scope = export_scope(conn, collections)
        c, b = T["collection"], T["biobank"]
        rows = (
            conn.execute(
                select(c.c.id, c.c.identifier, c.c.kind, c.c.name, c.c.biobank_id).where(
                    c.c.id.in_(scope.ids)
                )
            ).all()
            if scope.ids
            else []
        )
        biobank_ids = sorted({int(r.biobank_id) for r in rows})
        terms = Terms(conn)
        for biobank in conn.execute(
            select(b).where(b.c.id.in_(biobank_ids)).order_by(b.c.identifier)
        ):
            infos = sorted(
                (
                    CollectionInfo(int(r.id), str(r.identifier), str(r.kind), str(r.name))
                    for r in rows
                    if r.biobank_id == biobank.id
                ),
                key=lambda i: i.identifier,
            )
            path = out / bundle_file_name(str(biobank.identifier))
            country = terms.get("country", biobank.country_id)
            with BundleWriter(
                path, f"{biobank.identifier}|{profile}", result.problems, result.notices, meta
            ) as writer:
                ctx = Context(
                    conn, fam, base, writer, terms, infos, country.code if country else ""
                )
                ctx.load_members()
                write_organizations(ctx, biobank)
                write_patients(ctx)
                write_events(ctx)
                write_specimens(ctx)
                write_imaging(ctx)
                write_clinical(ctx)
                write_biomarkers(ctx)
                write_groups(ctx)
            result.files.append(BundleFile(path, str(biobank.identifier), writer.counts))
    return result
