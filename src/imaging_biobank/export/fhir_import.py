"""``imaging-biobank import fhir BUNDLE``: MIABIS on FHIR and bbmri.de Bundles into the
database, through the writers every other import uses.

Read: the biobank and its collections (Organizations, with the MIABIS on FHIR collection
Group), donors (Patient), samples (Specimen) and diagnoses and other events (Condition; the
event Observations our export writes; sample diagnoses as ``miabis-observation`` or the
bbmri.de ``SampleDiagnosis`` extension). Both URL forms of the MIABIS on FHIR code systems
and profiles are read (``https://fhir.bbmri-eric.eu/CodeSystem/...`` and
``https://fhir.bbmri-eric.eu/fhir/CodeSystem/...``), and references as ``urn:uuid:``
fullUrls, ``Type/id`` or absolute URLs. ImagingStudies, radiomic, clinical and molecular
Observations are counted, not imported: images come in through ``ingest``, e-form records
and biomarker results through their own importers.

Written: the catalogue through ``register`` (``register.writer.write_document``), donors,
samples and events through ``samples.importer.import_registry`` (so the MIABIS rules of a
CSV import apply, and re-importing changes nothing). Donor pseudonyms and event identifiers
of our own export are kept when the Bundle names this import's key by its fingerprint; any
other identifier is a source identifier and is pseudonymised with the key like every other
import. ICD-10-GM diagnoses read as their WHO ICD-10 code (noted).

A file that is no FHIR R4 Bundle (not JSON, no Bundle, a Bundle.type R4 lacks, another
FHIR release) raises ``FhirBundleError`` and nothing is stored. Every entry or element that
cannot be stored is reported once with its place in the Bundle (entry index, resource type
and id, element) and why; the rest is stored.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.export.fhir_import_bundle import EntryProblem, FhirBundleError, FhirImport
from imaging_biobank.export.fhir_import_catalogue import CatalogueImport
from imaging_biobank.export.fhir_import_individuals import IndividualsImport, KeepingPseudonymiser

__all__ = [
    "EntryProblem",
    "FhirBundleError",
    "FhirImport",
    "KeepingPseudonymiser",
    "import_fhir",
]


class _Import(CatalogueImport, IndividualsImport):
    """One import: read, classify, register the catalogue, then donors, samples, events."""


def import_fhir(engine: Engine, path: Path, pseudonymiser: Pseudonymiser) -> FhirImport:
    """Read a MIABIS on FHIR or bbmri.de Bundle into the database at ``engine``. Raises
    ``FhirBundleError`` when the file is not a Bundle; everything else that cannot be stored
    is in the result's ``problems`` (the rest is stored)."""
    job = _Import(engine, path, pseudonymiser)
    job.read()
    job.classify()
    job.catalogue()
    job.individuals()
    job.write_rows()
    for kind, stored in sorted(job.stored_entries.items()):
        job.result.stored[kind] += len(stored)
    return job.result
