"""The FHIR side of the vocabularies: profile, extension and code-system URLs, the codes each
code system holds, and how a MIABIS term becomes a code of MIABIS on FHIR or bbmri.de (and
back, for the import).

Pure. Everything comes from data files: ``export/data/fhir_profiles.json`` (URLs),
``fhir_code_systems.csv`` (the codes of the code systems we check against),
``fhir_sample_type.csv`` and ``fhir_miabis_collection_design.csv`` (mappings MIABIS on
FHIR needs that the vocabularies do not hold) and the shipped vocabularies (``bbmri_de_code``,
``miabis_fhir_code``, ``fhir_code``, ``directory_id``, ``ucum_code`` columns).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final
from urllib.parse import quote, unquote

from imaging_biobank.export.data_files import data_rows, data_text
from imaging_biobank.model.collections import COLLECTION_KINDS
from imaging_biobank.vocab import catalog, codes

FAMILIES: Final = ("miabis", "bbmri-de")
_UID: Final = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


@cache
def _profiles() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(data_text("fhir_profiles.json"))
    return data


@dataclass(frozen=True)
class Family:
    """One family of profiles: MIABIS on FHIR (``miabis``) or bbmri.de (``bbmri-de``), as
    ``fhir_profiles.json`` describes it (its ``families`` entry)."""

    key: str
    data: Mapping[str, Any] = field(hash=False, compare=False, repr=False)

    @property
    def title(self) -> str:
        """The family's name and edition."""
        return str(self.data["title"])

    @property
    def canonical(self) -> str:
        """The base of the family's URLs."""
        return str(self.data["canonical"])

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other bases the family's URLs occur under (read as the canonical one)."""
        return tuple(self.data["aliases"])

    @property
    def profiles(self) -> Mapping[str, str]:
        """Profile name -> StructureDefinition id."""
        return dict(self.data["profiles"])

    @property
    def extensions(self) -> Mapping[str, str]:
        """Extension name -> StructureDefinition id."""
        return dict(self.data["extensions"])

    @property
    def code_systems(self) -> Mapping[str, str]:
        """Code system name -> CodeSystem id."""
        return dict(self.data["code_systems"])

    def profile(self, name: str) -> str:
        """The StructureDefinition URL of one of the family's profiles."""
        return f"{self.canonical}/StructureDefinition/{self.profiles[name]}"

    def extension(self, name: str) -> str:
        """The StructureDefinition URL of one of the family's extensions."""
        return f"{self.canonical}/StructureDefinition/{self.extensions[name]}"

    def system(self, name: str) -> str:
        """The URL of one of the family's code systems."""
        return f"{self.canonical}/CodeSystem/{self.code_systems[name]}"

    def has(self, kind: str, name: str) -> bool:
        """Whether the family defines ``name`` (a profile, extension or code system)."""
        table = {
            "profile": self.profiles,
            "extension": self.extensions,
            "system": self.code_systems,
        }
        return name in table[kind]


@cache
def family(key: str) -> Family:
    """The profile family ``key`` (``miabis`` or ``bbmri-de``)."""
    try:
        data = _profiles()["families"][key]
    except KeyError:
        raise ValueError(f"unknown profile {key!r}; allowed: {', '.join(FAMILIES)}") from None
    return Family(key, data)


def canonical_url(url: str) -> str:
    """A URL of either family with its base written the canonical way: MIABIS on FHIR code
    systems and profiles occur under ``https://fhir.bbmri-eric.eu/`` and under
    ``https://fhir.bbmri-eric.eu/fhir/``; both read as the first."""
    for key in FAMILIES:
        fam = family(key)
        for alias in fam.aliases:
            if url.startswith(alias + "/"):
                return fam.canonical + url[len(alias) :]
    return url


def system(name: str) -> str:
    """The URI of a shared code or identifier system (``icd-10``, ``snomed``, ``dcm``, ...)."""
    found: str = _profiles()["systems"][name]
    return found


def own(kind: str, name: str) -> str:
    """A URL we define: ``extensions`` (StructureDefinition), ``identifiers`` (an identifier
    system) or ``code_systems`` (CodeSystem), under our canonical base."""
    data = _profiles()["own"]
    folder = {
        "extensions": "StructureDefinition",
        "identifiers": "sid",
        "code_systems": "CodeSystem",
    }
    return f"{data['canonical']}/{folder[kind]}/{data[kind][name]}"


def own_canonical() -> str:
    """The base of every URL imaging-biobank defines."""
    found: str = _profiles()["own"]["canonical"]
    return found


def hl7_extension(name: str) -> str:
    """The URL of an HL7 extension the export uses (data-absent-reason, ...)."""
    found: str = _profiles()["hl7_extensions"][name]
    return found


def fixed_coding(name: str) -> dict[str, str]:
    """A single code the export uses in a fixed place (the LOINC code of a sample diagnosis)."""
    return dict(_profiles()["codes"][name])


def ext(url: str, key: str, value: Any) -> dict[str, Any]:
    """An extension: its ``url`` and one ``value[x]`` (``key`` names the type)."""
    return {"url": url, key: value}


def parts(name: str) -> list[dict[str, str]]:
    """The parts of one of our complex extensions (``collection-access``, ``software``,
    ``contact-details``, ``collection-declared``): sub-extension url, value type, the database
    column the export reads and the registration field the import writes."""
    found: list[dict[str, str]] = _profiles()["own"]["parts"][name]
    return found


def system_urls(name: str) -> tuple[str, ...]:
    """A shared system's URL and the other URLs it is read under (ICD-10-GM: DIMDI, BfArM)."""
    return (system(name), *_profiles()["system_aliases"].get(name, []))


def dicom_scheme_system(scheme: str | None) -> str | None:
    """The FHIR system of a DICOM coding scheme designator (``SCT``, ``DCM``, ...), if known."""
    name = _profiles()["dicom_schemes"].get((scheme or "").strip().upper())
    return system(name) if name and name != "about" else None


def _ontology_key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.casefold())


def ontology_system(ontology: str) -> str:
    """The system URL of a sample's anatomical-site ontology (SAMPLE-05-01): ICD-O-3 and
    SNOMED CT under their own systems, any other under our anatomical-site CodeSystem with
    its name in the URL (so the import gets the name back)."""
    table = _profiles()["anatomical_site_ontologies"]
    for name, title in table.items():
        if name != "about" and _ontology_key(title) == _ontology_key(ontology):
            return system(name)
    return f"{own('code_systems', 'anatomical-site')}/{quote(ontology, safe='')}"


def ontology_name(system_url: str) -> str:
    """The MIABIS anatomical-site ontology a system URL stands for (``ontology_system``
    reversed; another system by the last part of its URL)."""
    table = _profiles()["anatomical_site_ontologies"]
    for name, title in table.items():
        if name != "about" and system(name) == system_url:
            return str(title)
    prefix = own("code_systems", "anatomical-site") + "/"
    if system_url.startswith(prefix):
        return unquote(system_url[len(prefix) :])
    return system_url.rstrip("/").rsplit("/", 1)[-1][:64]


def icd10_gm(code: str) -> tuple[str | None, str]:
    """An ICD-10-GM code as a WHO ICD-10 code of the shipped list: the GM marks (``+``,
    ``*``, ``!``) dropped and a German 5th character cut; ``(None, why)`` when there is no
    such WHO code. The second value says what was changed (empty when nothing was)."""
    data = _profiles()["icd_10_gm"]
    value = code.strip().upper()
    bare = value.rstrip("".join(data["marks"])).strip()
    changes = []
    if bare != value:
        changes.append(f"the mark {value[len(bare) :]!r} dropped")
    for candidate in dict.fromkeys((bare, bare[: int(data["who_length"])], bare[:3])):
        try:
            found = codes.check_icd10(candidate)
        except codes.CodeError:
            continue
        if candidate != bare:
            changes.append(f"cut to the WHO code {found} (ICD-10-GM's finer {bare} is not WHO's)")
        return found, "; ".join(changes)
    return None, f"{code!r} is no WHO ICD-10 code of the shipped list, nor its 3-4 character head"


@cache
def _keyed_samples() -> tuple[str, str]:
    """A donor pseudonym and an event token as the pseudonymiser makes them (of a dummy key):
    what our own identifiers look like, taken from the one place that makes them."""
    from imaging_biobank.deid.pseudonym import Pseudonymiser

    sample = Pseudonymiser(bytes(32))
    return sample.donor("shape"), sample.token("event", "shape", 32)


def _same_shape(value: str, sample: str) -> bool:
    digits = "0123456789abcdef" if sample == sample.lower() else "0123456789ABCDEF"
    return len(value) == len(sample) and all(c in digits for c in value)


def is_pseudonym(value: str) -> bool:
    """Whether ``value`` has the form of a donor pseudonym (``Pseudonymiser.donor``)."""
    return _same_shape(value, _keyed_samples()[0])


def is_event_token(value: str) -> bool:
    """Whether ``value`` has the form of an event identifier the registry import makes
    (``Pseudonymiser.token("event", ..., 32)``: keyed, not reversible without the key)."""
    return _same_shape(value, _keyed_samples()[1])


def collection_kind(kind: str) -> dict[str, str]:
    """How the FHIR export and import treat a collection kind (``fhir_collection_kinds.csv``):
    its MIABIS ``dataset_type``, default ``data_category`` and ``bbmri_de_collection``."""
    return _kinds().get(kind, {})


@cache
def _kinds() -> dict[str, dict[str, str]]:
    return {r["kind"]: r for r in data_rows("fhir_collection_kinds.csv")}


def kind_dataset_code(kind: str) -> str:
    """The MIABIS on FHIR dataset-type code of a collection kind ("" when no one type says
    it): its MIABIS dataset type's ``miabis_fhir_code``."""
    code = collection_kind(kind).get("dataset_type", "")
    return (
        catalog.external_code(catalog.resolve("miabis_dataset_type", code), "miabis_fhir_code")
        if code
        else ""
    )


def guess_kind(datasets: set[str], types: set[str]) -> str | None:
    """The collection kind a collection's MIABIS on FHIR dataset types or Directory collection
    types say (the first kind of ``fhir_collection_kinds.csv`` either names), or None."""
    for kind, row in _kinds().items():
        dataset = kind_dataset_code(kind)
        if (dataset and dataset in datasets) or (
            row["collection_type"] and row["collection_type"] in types
        ):
            return kind
    return None


def profile_rules() -> dict[str, dict[str, dict[str, Any]]]:
    """Per family and profile, what a resource must hold to claim it (``fhir_rules``)."""
    return {k: v for k, v in _profiles()["profile_rules"].items() if k != "about"}


def bundle_rules() -> dict[str, Any]:
    """The R4 Bundle types, the FHIR releases the import reads and later-release elements."""
    found: dict[str, Any] = _profiles()["bundle"]
    return found


def laterality(value: str | None) -> dict[str, str] | None:
    """The SNOMED CT coding of a DICOM Laterality (0020,0060) value, or None."""
    if not value:
        return None
    found = _profiles()["laterality"].get(value.strip().upper())
    return dict(found) if found else None


def vocabulary_coding(found: catalog.Term) -> dict[str, str]:
    """The exact MIABIS term as a Coding (our CodeSystem of its vocabulary edition): written
    beside a profile's coarser code as its translation, so an import gets the term back.
    Editions that share a code (RT of MIABIS 2.0 and of 2020) are one value: the code is
    written under the edition a registry import reads it as, so a re-export is the same."""
    table = catalog.vocabulary(found.vocabulary).table
    same = catalog.index(table).find(found.code)
    if same is not None and same.code == found.code:
        found = same
    coding = {"system": vocabulary_system(found.vocabulary), "code": found.code}
    if found.label and found.label != found.code:
        coding["display"] = found.label
    return coding


def vocabulary_term(system_url: str, code: str, table: str) -> catalog.Term | None:
    """The term an exact Coding (``vocabulary_coding``) names, if it is one of ``table``."""
    prefix = vocabulary_system("")
    if not system_url.startswith(prefix):
        return None
    name = system_url[len(prefix) :]
    try:
        if catalog.vocabulary(name).table != table:
            return None
    except KeyError:
        return None
    return term(name, code)


def vocabulary_system(vocabulary: str) -> str:
    """Our CodeSystem URL for a shipped vocabulary that has no FHIR code system of its own."""
    return f"{own('code_systems', 'vocabulary')}/{vocabulary}"


# ---- the codes of the code systems we hold ------------------------------------------------


@dataclass(frozen=True)
class Concept:
    """One code of a code system we hold, with its display and parent code."""

    code: str
    display: str
    parent: str


@cache
def held() -> dict[str, dict[str, Concept]]:
    """Every code system of ``fhir_code_systems.csv``: URL -> code -> concept."""
    found: dict[str, dict[str, Concept]] = {}
    for row in data_rows("fhir_code_systems.csv"):
        found.setdefault(row["system"], {})[row["code"]] = Concept(
            row["code"], row["display"], row["parent"]
        )
    return found


def coding(system_url: str, code: str) -> dict[str, str]:
    """A Coding with the display its code system gives (when we hold it)."""
    concept = held().get(system_url, {}).get(code)
    result = {"system": system_url, "code": code}
    if concept is not None and concept.display:
        result["display"] = concept.display
    return result


@cache
def ibsi_names() -> dict[str, str]:
    """The IBSI feature codes we hold, with their IBSI names."""
    from imaging_biobank.analysis.radiomics import ibsi_features

    return {f.ibsi_code: f.ibsi_name for f in ibsi_features().values() if f.ibsi_code}


@cache
def _vocabulary_codes(name: str) -> frozenset[str]:
    return frozenset(t.code for t in catalog.terms(name))


def cid33_modalities() -> frozenset[str]:
    """The modality codes of DICOM CID 33 (the shipped ``modality.cid33`` vocabulary)."""
    return _vocabulary_codes("modality.cid33")


def _check_own_vocabulary(url: str, code: str) -> str | None:
    name = url.rsplit("/", 1)[-1]
    try:
        known = _vocabulary_codes(name)
    except KeyError:
        return f"{url} names no shipped vocabulary"
    return None if code in known else f"{code!r} is not a code of {name}"


def check_code(system_url: str, code: str) -> str | None:
    """Why ``code`` is not a code of ``system_url`` (None when it is, or when we hold no
    list or rule for that system)."""
    concepts = held().get(system_url)
    if concepts is not None:
        if code in concepts:
            return None
        shown = ", ".join(list(concepts)[:25])
        return f"{code!r} is not a code of {system_url} (codes: {shown})"
    checks: dict[str, Callable[[str], str]] = {
        system("icd-10"): codes.check_icd10,
        system("snomed"): codes.check_snomed,
        system("loinc"): codes.check_loinc,
        system("ucum"): codes.check_ucum,
    }
    if system_url in checks:
        try:
            checks[system_url](code)
        except codes.CodeError as error:
            return str(error)
        return None
    if system_url in system_urls("icd-10-gm"):
        found, why = icd10_gm(code)
        return None if found else why
    if system_url == system("orpha"):
        return None if code.isdigit() else f"{code!r} is not an ORPHAcode (digits)"
    if system_url == system("dcm"):  # modalities (CID 33) and numeric DCM concepts
        ok = code in cid33_modalities() or code.isdigit()
        return None if ok else f"{code!r} is not a DICOM CID 33 modality nor a DCM code"
    if system_url == system("rfc3986"):
        uid = code.removeprefix("urn:oid:")
        if code.startswith("urn:oid:") and _UID.fullmatch(uid) and len(uid) <= 64:
            return None
        return f"{code!r} is not urn:oid:<a DICOM UID>"
    if system_url == system("ibsi"):
        return None if code in ibsi_names() else f"{code!r} is not an IBSI feature code we hold"
    if system_url == system("hgnc"):
        known = _vocabulary_codes("gene.hgnc-mii-cgp")
        return None if code in known else f"{code!r} is not an HGNC id of the shipped gene list"
    if system_url == own("code_systems", "collection-kind"):
        return None if code in COLLECTION_KINDS else f"{code!r} is not a collection kind"
    if system_url.startswith(own("code_systems", "vocabulary") + "/"):
        return _check_own_vocabulary(system_url, code)
    return None


def codings_in(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every dict with a ``system`` and a ``code`` (Coding, Quantity) under ``node``, with
    its path below ``path``."""
    if isinstance(node, dict):
        if isinstance(node.get("system"), str) and isinstance(node.get("code"), str):
            yield path, node
        for key, value in node.items():
            yield from codings_in(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from codings_in(value, f"{path}[{i}]")


def code_problems(resource: dict[str, Any]) -> list[str]:
    """Every coded value of a resource that is not in its value set, with its element."""
    problems = []
    for path, node in codings_in(resource, str(resource.get("resourceType", ""))):
        why = check_code(node["system"], node["code"])
        if why is not None:
            problems.append(f"{path}: {why}")
    return problems


# ---- MIABIS terms as codes ----------------------------------------------------------------


@cache
def _by_code(vocabulary: str) -> dict[str, catalog.Term]:
    try:
        return {t.code: t for t in catalog.terms(vocabulary)}
    except KeyError:
        return {}


def term(vocabulary: str, code: str) -> catalog.Term | None:
    """The shipped term (None for a term the database added, e.g. an ORPHA code)."""
    return _by_code(vocabulary).get(code)


def _held_or_empty(system_url: str, code: str) -> str:
    return code if code and code in held().get(system_url, {}) else ""


def storage_temperature_code(fam: Family, found: catalog.Term) -> str:
    """The family's storage-temperature code of a term ("" when it has none)."""
    if fam.key == "miabis":
        code = catalog.external_code(found, "miabis_fhir_code")
    else:
        # the bbmri.de codes are the Directory's, but for gaseous nitrogen (bbmri_de_code)
        code = catalog.external_code(found, "bbmri_de_code") or catalog.external_code(
            found, "directory_id"
        )
    return _held_or_empty(fam.system("storage-temperature"), code)


@cache
def _sample_types() -> dict[tuple[str, str], dict[str, str]]:
    return {(r["vocabulary"], r["code"]): r for r in data_rows("fhir_sample_type.csv")}


def material_system(fam: Family, level: str) -> str:
    """The code system of sample types: per sample (``sample``) or per collection."""
    if fam.key == "miabis":
        return fam.system("detailed-sample-type" if level == "sample" else "collection-sample-type")
    return fam.system("material-type")


def material_code(fam: Family, found: catalog.Term, level: str) -> str:
    """The family's code of a sample type, for a sample or for a collection ("" if none)."""
    row = _sample_types().get((found.vocabulary, found.code), {})
    if fam.key == "miabis":
        code = row.get(
            "detailed_sample_type" if level == "sample" else "collection_sample_type", ""
        )
    else:
        code = catalog.external_code(found, "bbmri_de_code") or row.get("bbmri_de_material", "")
    return _held_or_empty(material_system(fam, level), code)


def gender(found: catalog.Term) -> str:
    """The FHIR administrative gender of a MIABIS sex."""
    return catalog.external_code(found, "fhir_code")


def miabis_sex_code(found: catalog.Term) -> str:
    """The MIABIS on FHIR sex code (miabis-sex-cs) of a MIABIS sex."""
    return catalog.external_code(found, "miabis_fhir_code")


@cache
def _designs() -> dict[str, str]:
    return {
        r["collection_type"]: r["collection_design"]
        for r in data_rows("fhir_miabis_collection_design.csv")
    }


def collection_design(found: catalog.Term) -> str:
    """The MIABIS on FHIR collection design of a collection type ("" if none says it)."""
    return _designs().get(found.code, "")


# ---- codes back to MIABIS terms (import) ----------------------------------------------------


def _reverse(
    table: str, code_of: Callable[[catalog.Term], str], column: str | None
) -> dict[str, catalog.Term]:
    """code -> term over the editions of ``table`` (lowest priority first): a term that has
    the code in its own ``column`` wins over one that reaches it through its mapping."""
    direct: dict[str, catalog.Term] = {}
    mapped: dict[str, catalog.Term] = {}
    for info in catalog.vocabularies_of(table):
        for found in catalog.terms(info.name):
            own_code = found.get(column) if column else ""
            if own_code:
                direct.setdefault(own_code, found)
            code = code_of(found)
            if code:
                mapped.setdefault(code, found)
    return {**mapped, **direct}


@cache
def _temperature_terms(key: str) -> dict[str, catalog.Term]:
    fam = family(key)
    column = "miabis_fhir_code" if key == "miabis" else "bbmri_de_code"
    return _reverse("storage_temperature", lambda t: storage_temperature_code(fam, t), column)


def storage_temperature_term(key: str, code: str) -> catalog.Term | None:
    """The term a family's storage-temperature code stands for (bbmri.de ``temperatureGN``
    stays the liquid-nitrogen vapour phase: it is never read as liquid nitrogen)."""
    return _temperature_terms(key).get(code)


@cache
def _sample_type_terms(level: str) -> dict[str, catalog.Term]:
    rows = data_rows("fhir_sample_type.csv")
    column = "detailed_sample_type" if level == "sample" else "collection_sample_type"
    if level != "sample":  # a collection's material types are MIABIS 2.0 ones (2.0-14)
        rows = sorted(rows, key=lambda r: r["vocabulary"] != "material-type.miabis-2.0")
    found: dict[str, catalog.Term] = {}
    for row in rows:
        code = row[column]
        if not code or code in found:
            continue
        entry = catalog.term(row["vocabulary"], row["code"])
        if level != "sample" and entry.vocabulary != "material-type.miabis-2.0" and entry.maps_to:
            entry = catalog.term(*entry.maps_to)
        found[code] = entry
    return found


def material_term(fam: Family, system_url: str, code: str) -> catalog.Term | None:
    """The sample type a Coding of ``system_url`` stands for (None: not a sample-type code
    we know). bbmri.de's detailed legacy codes (``plasma-edta``) read as their parent."""
    if fam.key == "miabis":
        if system_url == fam.system("detailed-sample-type"):
            return _sample_type_terms("sample").get(code)
        if system_url == fam.system("collection-sample-type"):
            return _sample_type_terms("collection").get(code)
        if system_url == fam.system("material-type"):
            return _reverse("material_type", lambda t: "", "miabis_fhir_code").get(code)
        return None
    concepts = held().get(fam.system("material-type"), {})
    concept = concepts.get(code)
    if system_url != fam.system("material-type") or concept is None:
        return None
    return catalog.index("material_type").find(concept.parent or code)


@cache
def _reverse_column(table: str, column: str) -> dict[str, catalog.Term]:
    return _reverse(table, lambda t: catalog.external_code(t, column), column)


def term_by_column(table: str, column: str, code: str) -> catalog.Term | None:
    """The term of ``table`` whose ``column`` (``fhir_code``, ``directory_id``, ...) is
    ``code``, preferring one that has it itself over one that maps to it."""
    return _reverse_column(table, column).get(code)


@cache
def _design_terms() -> dict[str, catalog.Term]:
    found: dict[str, catalog.Term] = {}
    for row in data_rows("fhir_miabis_collection_design.csv"):
        if row["collection_design"] and row["collection_design"] not in found:
            found[row["collection_design"]] = catalog.resolve(
                "collection_category", row["collection_type"]
            )
    return found


def design_term(code: str) -> catalog.Term | None:
    """The collection type a MIABIS on FHIR collection design stands for."""
    return _design_terms().get(code)
