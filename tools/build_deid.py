"""Build the de-identification data shipped in ``imaging_biobank/deid/data``.

- ``ps3.15-e1-1.json``: DICOM PS3.15 Annex E Table E.1-1 (every attribute, the Basic
  Profile action and the action of every option), copied verbatim from
  ``../shared/reference/dicom_standard`` (innolitics/dicom-standard, edition 2024b, MIT).
- ``sop_class_iod.csv`` and ``iod_attribute_types.csv.gz``: which IOD a SOP class belongs to,
  and the attribute type (1, 1C, 2, 2C, 3) of every attribute whose Basic Profile action is
  conditional (X/Z, X/D, Z/D, X/Z/D, X/Z/U*), at every sequence path where the IOD's modules
  define it. From the standard's tables as shipped in highdicom (``_standard``, MIT).
- ``safe_attributes.csv``: public text attributes that are not in Table E.1-1 and are kept
  (acquisition and reconstruction parameters, coded concepts); every other text attribute
  outside the table is removed. Curated in ``tools/sources/safe_attributes.csv``.
- ``safe_private.csv``: the private attributes kept under Retain Safe Private (numbers that
  quantitative imaging needs), checked against pydicom's private dictionary. Curated in
  ``tools/sources/safe_private.csv``.

The manifest ``deid.toml`` records each file's source, edition, licence and checksum.

    python tools/build_deid.py --reference ../shared/reference
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src" / "imaging_biobank" / "deid" / "data"
SOURCES = Path(__file__).resolve().parent / "sources"
TEXT_VRS = {"AE", "AS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"}


def _csv(rows: list[dict[str, str]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _highdicom_standard(name: str) -> object:
    import highdicom

    return json.loads((Path(highdicom.__file__).parent / "_standard" / name).read_text())


def profile_table(reference: Path) -> tuple[str, list[dict[str, str]]]:
    text = (reference / "dicom_standard" / "confidentiality_profile_attributes.json").read_text(
        encoding="utf-8"
    )
    return text, json.loads(text)


def conditional_keywords(table: list[dict[str, str]]) -> dict[str, str]:
    from pydicom.datadict import keyword_for_tag

    keywords = {}
    for row in table:
        if "/" in row["basicProfile"] and "X" not in row["id"].upper()[4:]:
            keyword = keyword_for_tag(int(row["id"], 16))
            if not keyword:
                raise SystemExit(f"no keyword for conditional row {row['tag']} {row['name']}")
            keywords[keyword] = row["basicProfile"]
    return keywords


def iod_types(keywords: dict[str, str]) -> list[dict[str, str]]:
    iods = _highdicom_standard("iod_module_map.json")
    modules = _highdicom_standard("module_attribute_map.json")
    assert isinstance(iods, dict) and isinstance(modules, dict)
    rank = {"1": 0, "1C": 1, "2": 2, "2C": 3, "3": 4}
    found: dict[tuple[str, str, str], str] = {}
    for iod, iod_modules in iods.items():
        for module in iod_modules:
            for attribute in modules.get(module["key"], []):
                if attribute["keyword"] not in keywords:
                    continue
                key = (iod, "/".join(attribute["path"]), attribute["keyword"])
                kind = attribute["type"]
                # a module present in a file must conform: the strictest type wins
                if key not in found or rank[kind] < rank[found[key]]:
                    found[key] = kind
    return [
        {"iod": iod, "path": path, "keyword": keyword, "type": kind}
        for (iod, path, keyword), kind in sorted(found.items())
    ]


def sop_classes() -> list[dict[str, str]]:
    mapping = _highdicom_standard("sop_class_iod_map.json")
    assert isinstance(mapping, dict)
    return [{"sop_class_uid": uid, "iod": iod} for uid, iod in sorted(mapping.items())]


def safe_attributes(table: list[dict[str, str]]) -> list[dict[str, str]]:
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    in_table = {row["id"].upper() for row in table}
    rows = []
    with (SOURCES / "safe_attributes.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            tag = tag_for_keyword(row["keyword"])
            if tag is None:
                raise SystemExit(f"safe_attributes.csv: {row['keyword']} is not a DICOM keyword")
            if f"{tag:08X}" in in_table:
                raise SystemExit(f"safe_attributes.csv: {row['keyword']} is in Table E.1-1")
            vr = dictionary_VR(tag)
            if vr not in TEXT_VRS:
                raise SystemExit(f"safe_attributes.csv: {row['keyword']} ({vr}) is not text")
            rows.append(
                {"tag": f"{tag:08X}", "keyword": row["keyword"], "vr": vr, "why": row["why"]}
            )
    return rows


def safe_private() -> list[dict[str, str]]:
    from pydicom._private_dict import private_dictionaries

    rows = []
    with (SOURCES / "safe_private.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            entry = private_dictionaries.get(row["creator"], {}).get(row["tag"])
            if entry is None:
                raise SystemExit(f"safe_private.csv: {row['creator']} {row['tag']} unknown")
            vr, _vm, name, _retired = entry
            if vr in TEXT_VRS or vr in ("SQ", "UN", "OB", "OW", "DA", "DT", "TM", "UI"):
                raise SystemExit(f"safe_private.csv: {row['tag']} is {vr}, not a plain number")
            rows.append(
                {
                    "creator": row["creator"],
                    "group": row["tag"][:4].upper(),
                    "element": row["tag"][6:].upper(),
                    "vr": vr,
                    "name": name,
                    "why": row["why"],
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, default=ROOT.parent / "shared" / "reference")
    args = parser.parse_args()
    import highdicom
    import pydicom

    table_text, table = profile_table(args.reference)
    keywords = conditional_keywords(table)
    files = {
        "ps3.15-e1-1.json": (
            table_text,
            "DICOM PS3.15 2024b, Annex E, Table E.1-1 (621 attributes)",
            "innolitics/dicom-standard standard/confidentiality_profile_attributes.json"
            " at 7f4749d0 (2025-01-28, 'Update standard to rev2024b')",
            "MIT (innolitics); the standard: NEMA",
        ),
        "sop_class_iod.csv": (
            _csv(sop_classes(), ["sop_class_uid", "iod"]),
            f"DICOM PS3.4/PS3.3 as shipped in highdicom {highdicom.__version__}",
            f"highdicom {highdicom.__version__} _standard/sop_class_iod_map.json",
            "MIT (highdicom)",
        ),
        "iod_attribute_types.csv.gz": (
            _csv(iod_types(keywords), ["iod", "path", "keyword", "type"]),
            f"DICOM PS3.3 module tables as shipped in highdicom {highdicom.__version__};"
            f" the {len(keywords)} attributes with a conditional Basic Profile action",
            f"highdicom {highdicom.__version__} _standard/iod_module_map.json and"
            " module_attribute_map.json",
            "MIT (highdicom)",
        ),
        "safe_attributes.csv": (
            _csv(safe_attributes(table), ["tag", "keyword", "vr", "why"]),
            "imaging-biobank selection (text attributes outside Table E.1-1 that are kept)",
            f"tools/sources/safe_attributes.csv; VRs from pydicom {pydicom.__version__}",
            "Apache-2.0 (this project)",
        ),
        "safe_private.csv": (
            _csv(safe_private(), ["creator", "group", "element", "vr", "name", "why"]),
            "imaging-biobank selection for Retain Safe Private (numbers only)",
            f"tools/sources/safe_private.csv; names and VRs from pydicom {pydicom.__version__}"
            " private dictionary",
            "Apache-2.0 (this project)",
        ),
    }
    manifest = [
        "# De-identification data shipped with imaging-biobank: one entry per file.",
        "# Generated by tools/build_deid.py; edit the tool or tools/sources, not this file.",
    ]
    for name, (text, edition, source, licence) in files.items():
        data = text.encode("utf-8")
        if name.endswith(".gz"):  # mtime 0: the same input gives the same bytes
            data = gzip.compress(data, mtime=0)
        (DATA / name).write_bytes(data)
        manifest += [
            "",
            "[[file]]",
            f'name = "{name}"',
            f'edition = "{edition}"',
            f'source = "{source}"',
            f'licence = "{licence}"',
            f'sha256 = "{hashlib.sha256(data).hexdigest()}"',
        ]
    (DATA / "deid.toml").write_text("\n".join(manifest) + "\n", encoding="utf-8")
    print(f"wrote {len(files)} files and deid.toml to {DATA}")


if __name__ == "__main__":
    main()
