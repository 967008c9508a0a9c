"""Build the vocabulary data files shipped in ``imaging_biobank/vocab/data``.

Generated files come from the sources named in ``VOCABULARIES`` (the BBMRI-ERIC
Directory model in ``../shared/reference``, pydicom, highdicom, pycountry); curated
files (the MIABIS lists, written from the MIABIS specification) are only hashed.
The manifest ``vocabularies.toml`` records, for every vocabulary, its table,
edition, source, licence, file, checksum and term count.

Run after changing a source or a curated file, then add a migration that loads
the changed vocabulary (see ``db/migrations/versions``):

    python tools/build_vocab.py --reference ../shared/reference
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src" / "imaging_biobank" / "vocab" / "data"
SOURCES = Path(__file__).resolve().parent / "sources"

Row = dict[str, str]


@dataclass
class Spec:
    name: str
    table: str
    edition: str
    source: str
    licence: str
    file: str
    priority: int = 0
    build: Callable[[argparse.Namespace], list[Row]] | None = None


def directory_csv(ref: Path, name: str) -> list[Row]:
    """Read one Directory EMX1 lookup (some are CR-terminated, old Mac style)."""
    text = (ref / "bbmri_directory_emx1" / name).read_text(encoding="utf-8")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return list(csv.DictReader(io.StringIO(text)))


def highdicom_regions() -> dict[str, list[object]]:
    import highdicom

    path = Path(highdicom.__file__).parent / "_standard" / "anatomic_regions.json"
    data: dict[str, list[object]] = json.loads(path.read_text())
    return data


# --- generated vocabularies --------------------------------------------------------------


def build_countries(args: argparse.Namespace) -> list[Row]:
    import pycountry

    directory = {
        r["id"]: r["name"] for r in directory_csv(args.reference, "eu_bbmri_eric_countries.csv")
    }
    rows = []
    for c in sorted(pycountry.countries, key=lambda c: c.alpha_2):
        # the Directory writes the United Kingdom as UK (its national node), ISO as GB
        directory_id = "UK" if c.alpha_2 == "GB" and "UK" in directory else c.alpha_2
        synonyms = [c.alpha_3]
        official = getattr(c, "official_name", None)
        if official and official != c.name:
            synonyms.append(official)
        if directory_id != c.alpha_2:
            synonyms.append(directory_id)
        rows.append(
            {
                "code": c.alpha_2,
                "label": c.name,
                "alpha3": c.alpha_3,
                "numeric": c.numeric,
                "directory_id": directory_id,
                "synonyms": " | ".join(synonyms),
            }
        )
    return rows


def build_duo(args: argparse.Namespace) -> list[Row]:
    """GA4GH DUO terms a consent can carry (the abstract parents left out), with what each
    rules out and the MIABIS condition it corresponds to (``sources/duo_use_access.csv``,
    our reading of both definitions)."""
    rules = {r["code"]: r for r in read_rows(SOURCES / "duo_use_access.csv")}
    rows = []
    for r in read_rows(SOURCES / "duo.csv"):
        if not r["shorthand"]:
            continue  # 'data use permission' / 'data use modifier': classes, not conditions
        rule = rules[r["id"]]  # a new DUO term needs a decision: KeyError until it has one
        maps_to = rule["maps_to"]
        rows.append(
            {
                "code": r["id"],
                "label": r["label"],
                "description": r["description"],
                "restricts": rule["restricts"],
                "maps_to": f"use-access-condition.miabis-2020:{maps_to}" if maps_to else "",
                "synonyms": r["shorthand"],
            }
        )
    missing = set(rules) - {row["code"] for row in rows}
    if missing:
        raise SystemExit(f"duo_use_access.csv names terms DUO lacks: {sorted(missing)}")
    return rows


def build_genes(args: argparse.Namespace) -> list[Row]:
    return [
        {"code": r["code"], "label": r["label"]}
        for r in read_rows(SOURCES / "hgnc_mii_cgp_panel.csv")
    ]


def build_icd10(args: argparse.Namespace) -> list[Row]:
    rows = []
    for r in directory_csv(args.reference, "eu_bbmri_eric_disease_types.csv"):
        parent = r["parentId"].removeprefix("urn:miriam:icd:") if r["parentId"] else ""
        # the id is authoritative: the file's `code` column says E10 for all of E10.0-E10.9
        code = r["id"].removeprefix("urn:miriam:icd:")
        rows.append(
            {
                "code": code,
                "label": r["label"],
                "directory_id": r["id"],
                "uri": r["uri"],
                "parent": parent,
            }
        )
    return rows


def _snomed(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1] if uri else ""


def build_body_parts_primage(args: argparse.Namespace) -> list[Row]:
    current = highdicom_regions()
    by_code: dict[str, str] = {}
    for term, (_scheme, code, _meaning, _paired) in sorted(current.items()):
        by_code.setdefault(str(code), term)
    rows = []
    for r in directory_csv(args.reference, "eu_bbmri_eric_body_parts.csv"):
        code = _snomed(r["uri"])
        target = r["label"] if r["label"] in current else by_code.get(code, "")
        rows.append(
            {
                "code": r["label"],
                "label": r["description"] or r["label"],
                "directory_id": r["id"],
                "snomed_code": code,
                "maps_to": f"body-part-examined.annex-l:{target}" if target else "",
            }
        )
    return rows


def build_body_parts_annex_l(args: argparse.Namespace) -> list[Row]:
    current = highdicom_regions()
    legacy: dict[str, set[str]] = {}
    with (SOURCES / "annex_l_dicom2fhir_0.1.25.csv").open() as f:
        for r in csv.DictReader(f):
            legacy.setdefault(r["body_part_examined"], set()).add(r["snomed_code"])
    primage = {r["label"]: r for r in directory_csv(args.reference, "eu_bbmri_eric_body_parts.csv")}
    primage_by_code = {_snomed(r["uri"]): label for label, r in primage.items()}
    spellings: dict[str, list[str]] = {}
    with (SOURCES / "body_part_spellings.csv").open() as f:
        for r in csv.DictReader(f):
            if r["spelling"] != r["body_part_examined"]:
                spellings.setdefault(r["body_part_examined"], []).append(r["spelling"])
    unknown = set(spellings) - set(current)
    if unknown:
        raise SystemExit(f"body_part_spellings.csv names terms not in Annex L: {unknown}")
    regions = body_part_regions(set(current))
    rows = []
    for term, (_scheme, code, meaning, paired) in sorted(current.items()):
        codes = set(legacy.get(term, set()))
        if term in primage:
            codes.add(_snomed(primage[term]["uri"]))
        codes.discard(str(code))
        target = term if term in primage else primage_by_code.get(str(code), "")
        rows.append(
            {
                "code": term,
                "label": str(meaning),
                "snomed_code": str(code),
                "laterality_paired": "true" if paired else "false",
                "legacy_snomed_codes": " | ".join(sorted(codes)),
                "maps_to": f"body-part-examined.primage:{target}" if target else "",
                "synonyms": " | ".join(spellings.get(term, [])),
                **regions.get(term, {"within": "", "covers": ""}),
            }
        )
    return rows


def body_part_regions(known: set[str]) -> dict[str, dict[str, str]]:
    """``body_part_regions.csv``: the region each term lies within and the regions a
    combined term covers; every code must be an Annex L term, and ``within`` must not loop."""
    regions: dict[str, dict[str, str]] = {}
    with (SOURCES / "body_part_regions.csv").open() as f:
        for r in csv.DictReader(f):
            term = r["body_part_examined"]
            named = [c.strip() for c in f"{r['within']}|{r['covers']}".split("|") if c.strip()]
            unknown = {term, *named} - known
            if unknown or term in regions:
                raise SystemExit(f"body_part_regions.csv, {term}: unknown or repeated {unknown}")
            regions[term] = {"within": r["within"], "covers": r["covers"]}
    for term in regions:
        seen, step = {term}, regions[term]["within"]
        while step:
            if step in seen:
                raise SystemExit(f"body_part_regions.csv: {term} lies within itself via {step}")
            seen.add(step)
            step = regions.get(step, {"within": ""})["within"]
    return regions


def _clean_uid(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit() or ch == ".")


def build_dataset_types_primage(args: argparse.Namespace) -> list[Row]:
    rows = []
    for r in directory_csv(args.reference, "eu_bbmri_eric_image_data_types.csv"):
        uid = _clean_uid(r["id"])
        rows.append(
            {
                "code": uid,
                "label": r["label"],
                # three Directory ids carry stray characters ("1.2.840.10008.5.?1.?4..."):
                # the Directory's id is kept for export, the clean UID is the code
                "directory_id": r["id"],
                "maps_to": f"dataset-type.pydicom:{uid}",
            }
        )
    return rows


def storage_sop_classes() -> dict[str, tuple[str, str, str, str, str]]:
    from pydicom._uid_dict import UID_dictionary

    return {
        uid: v
        for uid, v in UID_dictionary.items()
        if v[1] == "SOP Class" and "Storage" in v[0] and "Commitment" not in v[0]
    }


def build_dataset_types_pydicom(args: argparse.Namespace) -> list[Row]:
    sops = json.loads((args.reference / "dicom_standard" / "sops.json").read_text())
    iod = {s["id"]: s["ciod"] for s in sops}
    primage = {
        _clean_uid(r["id"])
        for r in directory_csv(args.reference, "eu_bbmri_eric_image_data_types.csv")
    }
    rows = []
    for uid, (name, _type, _info, retired, keyword) in sorted(storage_sop_classes().items()):
        rows.append(
            {
                "code": uid,
                "label": name,
                "keyword": keyword,
                "iod": iod.get(uid, ""),
                "retired": "true" if retired else "false",
                "maps_to": f"dataset-type.primage:{uid}" if uid in primage else "",
            }
        )
    return rows


def build_modalities_primage(args: argparse.Namespace) -> list[Row]:
    return [
        {
            "code": r["id"],
            "label": r["label"],
            "description": r["description"],
            "directory_id": r["id"],
            "maps_to": f"modality.cid33:{r['id']}",
        }
        for r in directory_csv(args.reference, "eu_bbmri_eric_imaging_modality.csv")
    ]


def build_modalities_cid33(args: argparse.Namespace) -> list[Row]:
    from pydicom.sr.codedict import codes

    groups = {29: codes.cid29, 32: codes.cid32, 33: codes.cid33, 34: getattr(codes, "cid34", None)}
    member: dict[str, list[str]] = {}
    for cid in (29, 32, 34):
        group = groups[cid]
        if group is None:
            continue
        for kw in group.dir():
            member.setdefault(getattr(group, kw).value, []).append(f"CID {cid}")
    primage = {r["id"] for r in directory_csv(args.reference, "eu_bbmri_eric_imaging_modality.csv")}
    rows = []
    for kw in sorted(codes.cid33.dir(), key=lambda k: getattr(codes.cid33, k).value):
        code = getattr(codes.cid33, kw)
        rows.append(
            {
                "code": code.value,
                "label": code.meaning,
                "context_groups": " | ".join(member.get(code.value, [])),
                "maps_to": f"modality.primage:{code.value}" if code.value in primage else "",
            }
        )
    return rows


def build_directory_simple(table_file: str) -> Callable[[argparse.Namespace], list[Row]]:
    def build(args: argparse.Namespace) -> list[Row]:
        return [
            {"code": r["id"], "label": r["label"], "description": r.get("description", "")}
            for r in directory_csv(args.reference, table_file)
        ]

    return build


# --- the manifest ------------------------------------------------------------------------

DIRECTORY = (
    "BBMRI-ERIC Directory data model, MOLGENIS EMX1 "
    "(marieke-bijlsma/BBMRI_ERIC_data_mover : data_model/, commit 3879285, 2017-10-26)"
)
MIABIS = "BBMRI-ERIC/miabis at 0aff785"

VOCABULARIES: list[Spec] = [
    Spec(
        "country.iso3166",
        "country",
        "ISO 3166-1 (Debian iso-codes, as shipped by pycountry {pycountry})",
        "pycountry {pycountry} (iso-codes); Directory national node ids from " + DIRECTORY,
        "LGPL-2.1-or-later (iso-codes data)",
        "country_iso3166.csv",
        build=build_countries,
    ),
    Spec(
        "sex.miabis",
        "sex",
        "MIABIS 2.0 (2.0-09) + Sample Donor v1.1 (SAMPLEDONOR-02)",
        MIABIS + ": drafts/MIABIS_v2_all-structured-data.md, Sample+Donor+Event/V1.1; "
        "Directory sex_types; "
        "bbmri.de and FHIR codes from MIABIS mappings/bbmri.de.md",
        "facts (cite MIABIS)",
        "miabis_sex.csv",
    ),
    Spec(
        "age-unit.miabis",
        "age_unit",
        "MIABIS 2.0 (2.0-12) + Event v1.0 (EVENT-04)",
        MIABIS + "; Directory age_units; UCUM units",
        "facts (cite MIABIS)",
        "miabis_age_unit.csv",
    ),
    Spec(
        "data-category.miabis-2.0",
        "data_category",
        "MIABIS 2.0 (2.0-13) + Directory data_types",
        MIABIS + "; " + DIRECTORY,
        "facts (cite MIABIS)",
        "miabis_data_category.csv",
    ),
    Spec(
        "collection-category.miabis-2.0",
        "collection_category",
        "MIABIS 2.0 (2.0-16/2.0-19) + Directory collection_types",
        MIABIS + "; " + DIRECTORY,
        "facts (cite MIABIS)",
        "miabis_collection_type.csv",
    ),
    Spec(
        "inclusion-criterion.miabis-2.0",
        "inclusion_criterion",
        "MIABIS 2.0 (2.0-22)",
        MIABIS + ": drafts/MIABIS_v2_all-structured-data.md",
        "facts (cite MIABIS)",
        "miabis_inclusion_criterion.csv",
    ),
    Spec(
        "material-type.miabis-2020",
        "material_type",
        "MIABIS Sample v1.1 (SAMPLE-02), 2020",
        MIABIS + ": Sample+Donor+Event/V1.1; bbmri.de codes from mappings/bbmri.de.md; "
        "maps to MIABIS 2.0 material types written by imaging-biobank",
        "facts (cite MIABIS)",
        "miabis_sample_type_2020.csv",
        priority=0,
    ),
    Spec(
        "material-type.miabis-2.0",
        "material_type",
        "MIABIS 2.0 (2.0-14), with the legacy values mapped",
        MIABIS + ": drafts/MIABIS_v2_all-structured-data.md; " + DIRECTORY,
        "facts (cite MIABIS)",
        "miabis_material_type_2_0.csv",
        priority=1,
    ),
    Spec(
        "storage-temperature.miabis-2020",
        "storage_temperature",
        "MIABIS Sample v1.1 (SAMPLE-03, 2020) = Core 3.0 (COLLECTION-15)",
        MIABIS + ": Sample+Donor+Event/V1.1, Core/V3; bbmri.de StorageTemperature code system; "
        "ranges from samply TransFAIR TemperatureConverter",
        "facts (cite MIABIS)",
        "miabis_storage_temperature_2020.csv",
        priority=0,
    ),
    Spec(
        "storage-temperature.miabis-2.0",
        "storage_temperature",
        "MIABIS 2.0 (2.0-15), SPREC 2.0",
        MIABIS
        + ": drafts/MIABIS_v2_all-structured-data.md; "
        + DIRECTORY
        + "; MIABIS on FHIR miabis-storage-temperature-cs",
        "facts (cite MIABIS)",
        "miabis_storage_temperature_2_0.csv",
        priority=1,
    ),
    Spec(
        "sample-source.miabis-2020",
        "sample_source",
        "MIABIS Sample v1.1 (SAMPLE-12)",
        MIABIS + ": Sample+Donor+Event/V1.1",
        "facts (cite MIABIS)",
        "miabis_sample_source.csv",
    ),
    Spec(
        "use-access-condition.miabis-2020",
        "use_access_condition",
        "MIABIS Sample v1.1 (SAMPLE-11)",
        MIABIS + ": Sample+Donor+Event/V1.1",
        "facts (cite MIABIS)",
        "miabis_use_access_condition.csv",
    ),
    Spec(
        "use-access-condition.duo",
        "use_access_condition",
        "GA4GH Data Use Ontology (DUO), duo.csv of EBISPOT/DUO @ 726b06e6",
        "EBISPOT/DUO: duo.csv (commit 726b06e657dadde900a518aa6bd3ed66cb622411); "
        "restrictions and MIABIS mappings: tools/sources/duo_use_access.csv (imaging-biobank)",
        "CC BY 4.0 (DUO)",
        "duo_use_access_condition.csv",
        priority=1,
        build=build_duo,
    ),
    Spec(
        "miabis-dataset-type.miabis-3.0",
        "miabis_dataset_type",
        "MIABIS Core 3.0 (COLLECTION-13) = Sample Donor v1.1 (SAMPLEDONOR-03)",
        MIABIS + ": Core/V3, all lists.md; MIABIS on FHIR miabis-collection-dataset-typeCS",
        "facts (cite MIABIS)",
        "miabis_dataset_type.csv",
    ),
    Spec(
        "disease.icd-10",
        "disease",
        "ICD-10 (WHO), as the BBMRI-ERIC Directory lists it (disease_types)",
        DIRECTORY + ": eu_bbmri_eric_disease_types.csv",
        "ICD-10 (c) WHO; list as published by BBMRI-ERIC",
        "bbmri_directory_disease_icd10.csv.gz",
        build=build_icd10,
    ),
    Spec(
        "disease.orphanet",
        "disease",
        "ORPHAcodes (Orphanet): format checked (ORPHA:<n>), nomenclature not shipped",
        "Orphanet nomenclature is not available offline here; a code is stored the first time"
        " an import uses it (label = code)",
        "facts (cite Orphanet)",
        "orphanet_disease.csv",
        priority=1,
    ),
    Spec(
        "gene.hgnc-mii-cgp",
        "gene",
        "HGNC ids and symbols of the 602 genes of MII VS MTB Panel CGP"
        " (MII IG Molekulares Tumorboard 2027.0.0-ballot.1, 2026-09-15)",
        "https://www.medizininformatik-initiative.de/fhir/ext/modul-mtb/ValueSet/"
        "mii-vs-mtb-panel-cgp (tools/sources/hgnc_mii_cgp_panel.md)",
        "HGNC data: free to use, cite genenames.org",
        "hgnc_gene_mii_cgp.csv",
        build=build_genes,
    ),
    Spec(
        "body-part-examined.annex-l",
        "body_part_examined",
        "DICOM PS3.16 Annex L Table L-1 (as shipped in highdicom {highdicom})",
        "highdicom {highdicom}: highdicom/_standard/anatomic_regions.json; "
        "earlier-edition codes accepted "
        "on read from dicom2fhir 0.1.25 (tools/sources) and the PRIMAGE list; regions each "
        "term lies within or covers curated by imaging-biobank (tools/sources/"
        "body_part_regions.csv, after SNOMED CT's anatomy)",
        "MIT (highdicom); regions: Apache-2.0 (imaging-biobank)",
        "dicom_body_part_annex_l.csv",
        priority=0,
        build=build_body_parts_annex_l,
    ),
    Spec(
        "body-part-examined.primage",
        "body_part_examined",
        "PRIMAGE DICOM-MIABIS list (116 terms) = BBMRI-ERIC Directory body_parts",
        DIRECTORY + ": eu_bbmri_eric_body_parts.csv",
        "facts (cite BBMRI-ERIC)",
        "dicom_body_part_primage.csv",
        priority=1,
        build=build_body_parts_primage,
    ),
    Spec(
        "dataset-type.pydicom",
        "dataset_type",
        "DICOM storage SOP classes (PS3.4, as shipped in pydicom {pydicom}); IODs from PS3.4 2024e",
        "pydicom {pydicom}: pydicom/_uid_dict.py; "
        "innolitics/dicom-standard standard/sops.json @ 7f4749d0",
        "MIT",
        "dicom_dataset_type_pydicom.csv",
        priority=0,
        build=build_dataset_types_pydicom,
    ),
    Spec(
        "dataset-type.primage",
        "dataset_type",
        "PRIMAGE DICOM-MIABIS list (120 SOP classes) = BBMRI-ERIC Directory image_data_types",
        DIRECTORY + ": eu_bbmri_eric_image_data_types.csv",
        "facts (cite BBMRI-ERIC)",
        "dicom_dataset_type_primage.csv",
        priority=1,
        build=build_dataset_types_primage,
    ),
    Spec(
        "modality.cid33",
        "modality",
        "DICOM CID 33 Modality (CID 29 + 32 + 34, as shipped in pydicom {pydicom})",
        "pydicom {pydicom}: pydicom.sr.codedict codes.cid33",
        "MIT",
        "dicom_modality_cid33.csv",
        priority=0,
        build=build_modalities_cid33,
    ),
    Spec(
        "modality.primage",
        "modality",
        "PRIMAGE DICOM-MIABIS list (54 terms) = BBMRI-ERIC Directory imaging_modality",
        DIRECTORY + ": eu_bbmri_eric_imaging_modality.csv",
        "facts (cite BBMRI-ERIC)",
        "dicom_modality_primage.csv",
        priority=1,
        build=build_modalities_primage,
    ),
    Spec(
        "modality.retired",
        "modality",
        "DICOM PS3.3 C.7.3.1.1.1 retired Modality defined terms",
        "DICOM PS3.3 section C.7.3.1.1.1 (retired defined terms)",
        "facts (NEMA)",
        "dicom_modality_retired.csv",
        priority=2,
    ),
    Spec(
        "segmentation-type.dicom",
        "segmentation_type",
        "DICOM Segmentation Type (0062,0001) and RT ROI Contour Geometric Type (3006,0042)",
        "DICOM PS3.3 C.8.20.2 and C.8.8.6; highdicom.seg.SegmentationTypeValues",
        "facts (NEMA)",
        "dicom_segmentation_type.csv",
    ),
]


def write_csv(path: Path, rows: Iterable[Row]) -> None:
    rows = list(rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    data = buffer.getvalue().encode("utf-8")
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)


def read_rows(path: Path) -> list[Row]:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reference", type=Path, default=ROOT.parent / "shared" / "reference")
    args = parser.parse_args()

    import highdicom
    import pycountry
    import pydicom

    versions = {
        "pydicom": pydicom.__version__,
        "highdicom": highdicom.__version__,
        "pycountry": getattr(pycountry, "__version__", None) or _dist_version("pycountry"),
    }
    lines = [
        "# Vocabularies shipped with imaging-biobank: one entry per vocabulary edition.",
        "# Generated by tools/build_vocab.py; edit the tool or the curated CSV files,",
        "# not this file. priority: lower is tried first when a value is looked up",
        "# in a table holding several editions.",
        "",
    ]
    for spec in VOCABULARIES:
        path = DATA / spec.file
        if spec.build is not None:
            write_csv(path, spec.build(args))
        rows = read_rows(path)
        codes = [r["code"] for r in rows]
        if len(set(codes)) != len(codes):
            dupes = sorted({c for c in codes if codes.count(c) > 1})
            raise SystemExit(f"{spec.file}: codes not unique: {dupes[:10]}")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines += [
            "[[vocabulary]]",
            f"name = {toml_str(spec.name)}",
            f"table = {toml_str(spec.table)}",
            f"edition = {toml_str(spec.edition.format(**versions))}",
            f"source = {toml_str(spec.source.format(**versions))}",
            f"licence = {toml_str(spec.licence)}",
            f"file = {toml_str(spec.file)}",
            f"priority = {spec.priority}",
            f"terms = {len(rows)}",
            f"sha256 = {toml_str(digest)}",
            "",
        ]
        print(f"{spec.name:38} {len(rows):6} terms  {spec.file}", file=sys.stderr)
    (DATA / "vocabularies.toml").write_text("\n".join(lines))
    return 0


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    raise SystemExit(main())
