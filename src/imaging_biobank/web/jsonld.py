"""A collection as a schema.org ``Dataset`` (JSON-LD): what search engines and FAIR
harvesters read from its page. Built from the catalogue's own description of it (no counts:
those depend on who asks)."""

from __future__ import annotations

from typing import Any

from imaging_biobank.web.render import kind_label
from imaging_biobank.web.terms import label

ICD10 = "ICD-10"


def split_term(text: str) -> tuple[str, str]:
    """``C74.9 (Adrenal gland, unspecified)`` as (code, label); a bare code as (code, code)."""
    code, sep, rest = text.partition(" (")
    if sep and rest.endswith(")"):
        return code, rest[:-1]
    return text, text


def _descriptor(described: dict[str, Any], prefix: str) -> list[str]:
    for row in described["descriptors"]:
        if row["name"].startswith(prefix):
            return list(row["values"])
    return []


def _attribute(described: dict[str, Any], name: str) -> str | None:
    for row in described["attributes"]:
        if row["name"] == name:
            return str(row["value"])
    return None


def dataset(
    described: dict[str, Any],
    biobank: dict[str, Any] | None,
    facet_values: dict[str, list[str]],
    url: str,
    catalogue_url: str,
) -> dict[str, Any]:
    """The JSON-LD of one collection: ``described`` is ``catalogue.listing.collection``'s
    answer, ``facet_values`` its values of each facet (``query.facets.collection_facets``)."""
    modalities = facet_values.get("modality", [])
    techniques = [
        f"{m} ({label('modality', m)})" if label("modality", m) else m for m in modalities
    ]
    keywords = [kind_label(described["kind"]) + " collection"]
    keywords += [split_term(v)[1] for v in _descriptor(described, "Diseases")]
    keywords += techniques
    keywords += facet_values.get("body_part", [])
    keywords += [split_term(v)[1] for v in _descriptor(described, "Material types")]
    variables: list[dict[str, Any]] = [
        {
            "@type": "PropertyValue",
            "name": "Imaging modality",
            "value": m,
            "propertyID": "DCM:0008,0060",
        }
        for m in modalities
    ]
    variables += [
        {
            "@type": "PropertyValue",
            "name": "Body part examined",
            "value": b,
            "propertyID": "DCM:0018,0015",
        }
        for b in facet_values.get("body_part", [])
    ]
    variables += [
        {"@type": "PropertyValue", "name": "Material type", "value": split_term(v)[0]}
        for v in _descriptor(described, "Material types")
    ]
    doc: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "Dataset",
        "@id": url,
        "url": url,
        "identifier": described["id"],
        "name": described["name"],
        "description": described["description"]
        or f"{kind_label(described['kind'])} collection {described['id']}",
        "keywords": list(dict.fromkeys(k for k in keywords if k)),
    }
    if described.get("acronym"):
        doc["alternateName"] = described["acronym"]
    if techniques:
        doc["measurementTechnique"] = techniques
    if variables:
        doc["variableMeasured"] = variables
    diseases = [split_term(v) for v in _descriptor(described, "Diseases")]
    if diseases:
        doc["about"] = [
            {
                "@type": "MedicalCondition",
                "name": name,
                "code": {"@type": "MedicalCode", "code": code, "codingSystem": ICD10},
            }
            for code, name in diseases
        ]
    if biobank is not None:
        doc["includedInDataCatalog"] = {
            "@type": "DataCatalog",
            "@id": catalogue_url,
            "name": biobank["name"],
            "identifier": biobank["id"],
            **({"url": biobank["url"]} if biobank.get("url") else {}),
        }
        doc["provider"] = {"@type": "Organization", "name": biobank["juristic_person"]}
        doc["spatialCoverage"] = {
            "@type": "Place",
            "address": {"@type": "PostalAddress", "addressCountry": biobank["country"]},
        }
    access = _attribute(described, "Access")
    if access:
        doc["conditionsOfAccess"] = access
    licence = _attribute(described, "Licence")
    if licence:
        # an SPDX id (``Apache-2.0``) as its URL, anything else as written
        spdx = "://" not in licence and " " not in licence
        doc["license"] = f"https://spdx.org/licenses/{licence}" if spdx else licence
    same = _attribute(described, "URL") or _attribute(described, "Repository")
    if same:
        doc["sameAs"] = same
    return doc
