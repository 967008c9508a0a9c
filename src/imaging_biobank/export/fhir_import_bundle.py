"""Reading a FHIR Bundle for ``import fhir``: its entries (each validated with the R4B model
of its type), references (``urn:uuid:`` fullUrls, ``Type/id``, absolute URLs), the kind of
each resource (biobank, collection, donor, sample, event), and the codes read back as MIABIS
terms; each problem keeps its entry index, resource and element.

The file is read entry by entry (``fhir_import_stream``): only the entries the import can
store are kept (Organizations, Groups, Patients, Specimens, Conditions and the event and
sample-diagnosis Observations) and validated; the others (ImagingStudy, radiomic and clinical
Observations, ...) are counted and dropped as they are read, so memory grows with the
biobank's MIABIS part, not with its images and measurements.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine

from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.export import fhir_terms
from imaging_biobank.export.fhir_bundle import validation_errors
from imaging_biobank.export.fhir_import_stream import StreamError, read_bundle
from imaging_biobank.vocab import catalog

MIABIS, BBMRI = fhir_terms.family("miabis"), fhir_terms.family("bbmri-de")
IMPORTED: Final = ("Organization", "Group", "Patient", "Specimen", "Condition", "Observation")
# the MIABIS on FHIR 1.x member extension is the R5 backport; ours and IG 1.3 use its own
MEMBER_URLS: Final = (
    MIABIS.extension("member-entity"),
    fhir_terms.hl7_extension("group-member-entity-r5"),
)
NOT_R4: Final = " (not FHIR R4? R4 has no such element)"


class FhirBundleError(ValueError):
    """The file is not a FHIR Bundle we can read (nothing is imported)."""


@dataclass(frozen=True)
class EntryProblem:
    """Where in the Bundle (entry index, resource, element) something was refused, and why."""

    entry: int | None
    resource: str
    element: str
    message: str

    def __str__(self) -> str:
        where = f"entry {self.entry}" if self.entry is not None else "Bundle"
        if self.resource:
            where += f" ({self.resource})"
        if self.element:
            where += f" {self.element}"
        return f"{where}: {self.message}"


@dataclass
class FhirImport:
    """What an import stored, left aside and refused."""

    path: str
    entries: int = 0
    stored: Counter[str] = field(default_factory=Counter)
    not_imported: Counter[str] = field(default_factory=Counter)
    problems: list[EntryProblem] = field(default_factory=list)
    notices: list[EntryProblem] = field(default_factory=list)


@dataclass
class Entry:
    """One readable entry of the Bundle: its index, resource and fullUrl."""

    index: int
    resource: dict[str, Any]
    full_url: str | None

    @property
    def type(self) -> str:
        """The resource type."""
        return str(self.resource.get("resourceType", ""))

    @property
    def label(self) -> str:
        """``Type/id``, as problems name the resource."""
        return f"{self.type}/{self.resource.get('id', '?')}"


# ---- small readers of FHIR JSON ------------------------------------------------------------


def canonical(url: Any) -> str:
    """A URL with a MIABIS on FHIR alias base written the canonical way."""
    return fhir_terms.canonical_url(str(url)) if isinstance(url, str) else ""


def extensions_of(node: dict[str, Any], *urls: str) -> list[dict[str, Any]]:
    """A resource's (or element's) extensions with one of ``urls``, either URL form."""
    wanted = set(urls)
    return [
        e
        for e in node.get("extension", [])
        if isinstance(e, dict) and canonical(e.get("url")) in wanted
    ]


def value_of(extension: dict[str, Any]) -> Any:
    """An extension's value[x], whatever its type."""
    for key, value in extension.items():
        if key.startswith("value"):
            return value
    return None


def first_value(node: dict[str, Any], *urls: str) -> Any:
    """The value of the first extension with one of ``urls`` (None if none)."""
    found = extensions_of(node, *urls)
    return value_of(found[0]) if found else None


def parts_of(node: dict[str, Any], url: str) -> dict[str, Any]:
    """The parts of the first complex extension with ``url``: part url -> value."""
    found = extensions_of(node, url)
    items = found[0].get("extension", []) if found else []
    return {str(e.get("url")): value_of(e) for e in items if isinstance(e, dict)}


def codings_of(concept: Any) -> list[dict[str, Any]]:
    """The codings of a CodeableConcept (or a single Coding), systems made canonical."""
    if not isinstance(concept, dict):
        return []
    items = concept.get("coding") if "coding" in concept else [concept]
    return [{**c, "system": canonical(c.get("system"))} for c in items or [] if isinstance(c, dict)]


def profiles_of(resource: dict[str, Any]) -> set[str]:
    """The canonical URLs of a resource's meta.profile."""
    return {canonical(p) for p in resource.get("meta", {}).get("profile", [])}


def chosen_identifier(resource: dict[str, Any], system: str) -> tuple[str | None, bool]:
    """The identifier value of ``system`` (ours), else the first one, and whether it was
    ours; (None, False) when the resource has none."""
    ids = [i for i in resource.get("identifier", []) if isinstance(i, dict) and i.get("value")]
    ours = [i for i in ids if i.get("system") == system]
    chosen = ours or ids
    return (str(chosen[0]["value"]).strip(), bool(ours)) if chosen else (None, False)


def bbmri_identifier(resource: dict[str, Any]) -> str | None:
    """The BBMRI-ERIC id of an Organization or Group (else its first identifier)."""
    return chosen_identifier(resource, fhir_terms.system("bbmri-eric-id"))[0]


def telecom_url(resource: dict[str, Any]) -> str | None:
    """The first ``url`` telecom of an Organization (its web site)."""
    urls = [
        t.get("value")
        for t in resource.get("telecom", [])
        if isinstance(t, dict) and t.get("system") == "url"
    ]
    return str(urls[0]) if urls and urls[0] else None


def country_of(resource: dict[str, Any]) -> str:
    """The country of an Organization's first address ("" when none)."""
    address = (resource.get("address") or [{}])[0]
    return str(address.get("country") or "") if isinstance(address, dict) else ""


def fhir_date(value: Any) -> str | None:
    """A FHIR date or dateTime as a MIABIS (partial) date: a time with a zone is cut to
    its date, which is what MIABIS keeps."""
    if not isinstance(value, str) or not value:
        return None
    return value[:10] if len(value) > 10 else value


def _version_hint(node: dict[str, Any]) -> str | None:
    """The FHIR release a resource or Bundle says it is of, where it says one: a
    ``fhirVersion`` member (some tools write one) or a versioned core profile in
    ``meta.profile`` (``http://hl7.org/fhir/StructureDefinition/Bundle|5.0.0``)."""
    found = node.get("meta")
    meta: dict[str, Any] = found if isinstance(found, dict) else {}
    for holder in (node, meta):
        if isinstance(holder.get("fhirVersion"), str):
            return str(holder["fhirVersion"])
    for profile in meta.get("profile", []) if isinstance(meta.get("profile"), list) else []:
        if isinstance(profile, str) and profile.startswith(
            "http://hl7.org/fhir/StructureDefinition/"
        ):
            _, bar, version = profile.partition("|")
            if bar and version:
                return version
    return None


def _readable_version(version: str) -> bool:
    return any(version.startswith(v) for v in fhir_terms.bundle_rules()["fhir_versions"])


class BundleReader:
    """A Bundle's entries, how its references resolve, and the problems found reading it."""

    def __init__(self, engine: Engine, path: Path, pseudonymiser: Pseudonymiser):
        self.engine = engine
        self.path = path
        self.pseudonymiser = pseudonymiser
        self.result = FhirImport(str(path))
        self.bundle: dict[str, Any] = {}  # the Bundle's members but its entries
        self.entries: list[Entry] = []
        self.by_position: dict[int, Entry] = {}
        self.by_url: dict[str, Entry] = {}
        self.by_type_id: dict[str, Entry] = {}
        self.collection_ids: dict[int, str] = {}  # Organization entry -> collection id
        self.defaulted: dict[str, list[str]] = {}  # collection id -> link tables to empty
        self._reported: set[tuple[int | None, str, str, str]] = set()

    # reporting

    def problem(self, entry: Entry | None, element: str, message: str) -> None:
        """Report something refused at ``entry`` (or the Bundle) and ``element`` (once)."""
        index, label = (entry.index, entry.label) if entry else (None, "")
        self._problem(EntryProblem(index, label, element, message))

    def _problem(self, found: EntryProblem) -> None:
        key = (found.entry, found.resource, found.element, found.message)
        if key not in self._reported:
            self._reported.add(key)
            self.result.problems.append(found)

    def notice(self, entry: Entry | None, element: str, message: str) -> None:
        """Report something read in a way worth knowing, that was stored."""
        index, label = (entry.index, entry.label) if entry else (None, "")
        self.result.notices.append(EntryProblem(index, label, element, message))

    # reading the Bundle

    def read(self) -> None:
        """Read the file entry by entry: check the Bundle, keep and validate what can be
        imported, count the rest. ``FhirBundleError`` when it is no R4 Bundle."""
        try:
            self.result.entries = read_bundle(self.path, self._member, self._entry)
        except StreamError as error:
            raise FhirBundleError(f"{self.path}: {error}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise FhirBundleError(f"{self.path}: cannot be read ({error})") from None
        for name in ("resourceType", "type"):
            if name not in self.bundle:
                self._member(name, None)

    def _member(self, name: str, value: Any) -> None:
        """One member of the Bundle (not an entry): refuse what is no R4 Bundle at once."""
        rules = fhir_terms.bundle_rules()
        if name == "entry":  # an array is read item by item and never comes here
            raise FhirBundleError(f"{self.path}: Bundle.entry is not a list")
        if name == "resourceType" and value != "Bundle":
            raise FhirBundleError(
                f"{self.path}: not a FHIR Bundle (resourceType is {value!r}, not 'Bundle')"
            )
        if name == "type" and value not in rules["types"]:
            raise FhirBundleError(
                f"{self.path}: Bundle.type {value!r} is not an R4 Bundle type; allowed:"
                f" {', '.join(rules['types'])}"
            )
        if name in rules["later_elements"]:
            raise FhirBundleError(
                f"{self.path}: Bundle.{name} is not an R4 element (a FHIR R5 Bundle?); this"
                " import reads FHIR R4 (4.0.1) and R4B (4.3.0)"
            )
        if name == "meta" and isinstance(value, dict):
            version = _version_hint({"meta": value})
            if version and not _readable_version(version):
                raise FhirBundleError(
                    f"{self.path}: the Bundle says FHIR {version}; this import reads FHIR R4"
                    " (4.0.1) and R4B (4.3.0)"
                )
        if name == "fhirVersion" and isinstance(value, str) and not _readable_version(value):
            raise FhirBundleError(
                f"{self.path}: the Bundle says FHIR {value}; this import reads FHIR R4 (4.0.1)"
                " and R4B (4.3.0)"
            )
        self.bundle[name] = value

    def _entry(self, index: int, item: Any) -> None:
        """One entry: kept (validated) if the import can store it, else counted or reported."""
        resource = item.get("resource") if isinstance(item, dict) else None
        if not isinstance(resource, dict):
            self._problem(EntryProblem(index, "", "Bundle.entry.resource", "no resource"))
            return
        entry = Entry(index, resource, item.get("fullUrl"))
        request = item.get("request")
        if isinstance(request, dict) and request.get("method") == "DELETE":
            self.problem(
                entry,
                "Bundle.entry.request",
                "a DELETE: this import stores what a Bundle holds and deletes nothing; not read",
            )
            return
        if entry.type == "Bundle":
            self.problem(
                entry,
                "Bundle.entry.resource",
                "a Bundle inside the Bundle is not read; import it on its own",
            )
            return
        if entry.type not in IMPORTED or not self._wanted(entry):
            self.result.not_imported[entry.type or "(no resourceType)"] += 1
            return
        version = _version_hint(resource)
        if version and not _readable_version(version):
            self.problem(entry, entry.type, f"the resource says FHIR {version}, not R4; not read")
            return
        refused = validation_errors(resource)
        for element, message, kind in refused:
            self.problem(
                entry,
                f"{entry.type}.{element}" if element else entry.type,
                message + (NOT_R4 if kind == "extra_forbidden" else ""),
            )
        if refused:
            return
        self.entries.append(entry)
        self.by_position[index] = entry
        if entry.full_url:
            self.by_url[str(entry.full_url)] = entry
        if resource.get("id"):
            self.by_type_id[f"{entry.type}/{resource['id']}"] = entry

    def _wanted(self, entry: Entry) -> bool:
        """Whether an entry of an imported type is one the import reads: every one but the
        Observations that are no event (ours) or sample diagnosis."""
        if entry.type != "Observation":
            return True
        r = entry.resource
        codes = codings_of(r.get("code"))
        diagnosis = fhir_terms.fixed_coding("diagnosis-icd-code")
        return (
            any(c["system"] == fhir_terms.own("code_systems", "event-type") for c in codes)
            or MIABIS.profile("sample-diagnosis") in profiles_of(r)
            or any(
                c["system"] == diagnosis["system"] and c.get("code") == diagnosis["code"]
                for c in codes
            )
        )

    def resolve(self, ref: Any) -> Entry | None:
        """The entry a Reference points at: by fullUrl, ``Type/id`` or an absolute URL."""
        if not isinstance(ref, dict) or not isinstance(ref.get("reference"), str):
            return None
        text = ref["reference"]
        if text in self.by_url:
            return self.by_url[text]
        parts = [p for p in text.split("/_history/")[0].split("/") if p]
        if len(parts) >= 2:
            return self.by_type_id.get(f"{parts[-2]}/{parts[-1]}")
        return None

    def classify(self) -> None:
        """Sort the entries into biobanks, collections, Groups, donors, samples, events."""
        self.biobanks: dict[int, Entry] = {}
        self.collection_orgs: dict[int, Entry] = {}
        self.groups: dict[str, Entry] = {}  # collection identifier -> Group
        self.patients: list[Entry] = []
        self.specimens: list[Entry] = []
        self.conditions: list[Entry] = []
        self.event_observations: list[Entry] = []
        self.sample_diagnoses: dict[int, list[dict[str, Any]]] = {}  # specimen entry -> codings
        biobank_profiles = {MIABIS.profile("biobank"), BBMRI.profile("biobank")}
        collection_profiles = {
            MIABIS.profile("collection-organization"),
            BBMRI.profile("collection-organization"),
        }
        event_system = fhir_terms.own("code_systems", "event-type")
        for entry in self.entries:
            r, kind = entry.resource, entry.type
            if kind == "Organization":
                profiles = profiles_of(r)
                identifier = bbmri_identifier(r) or ""
                if profiles & collection_profiles or (
                    not profiles & biobank_profiles and ":collection:" in identifier
                ):
                    self.collection_orgs[entry.index] = entry
                elif profiles & biobank_profiles or (
                    identifier.startswith("bbmri-eric:ID:")
                    and MIABIS.profile("juristic-person") not in profiles
                ):
                    self.biobanks[entry.index] = entry
            elif kind == "Group":
                group_id = bbmri_identifier(r)
                if group_id:
                    self.groups[group_id] = entry
            elif kind == "Patient":
                self.patients.append(entry)
            elif kind == "Specimen":
                self.specimens.append(entry)
            elif kind == "Condition":
                self.conditions.append(entry)
            elif kind == "Observation":
                if any(c["system"] == event_system for c in codings_of(r.get("code"))):
                    self.event_observations.append(entry)
                    continue
                target = self.resolve(r.get("specimen"))  # a sample diagnosis (``_wanted``)
                if target is not None and target.type == "Specimen":
                    self.sample_diagnoses.setdefault(target.index, []).extend(
                        codings_of(r.get("valueCodeableConcept"))
                    )
                else:
                    self.result.not_imported["Observation"] += 1
            elif kind != "Organization":
                self.result.not_imported[kind] += 1
        self.member_of = self._member_index()

    def _member_index(self) -> dict[int, str]:
        """Specimen entry -> the collection whose Group lists it (member entity extension),
        the first Group that does; read once."""
        found: dict[int, str] = {}
        for identifier, group in self.groups.items():
            for ext in extensions_of(group.resource, *MEMBER_URLS):
                target = self.resolve(value_of(ext))
                if target is not None:
                    found.setdefault(target.index, identifier)
        return found

    def by_index(self, index: int) -> Entry:
        """The entry at a Bundle entry index."""
        return self.by_position[index]

    def _term(
        self,
        entry: Entry,
        element: str,
        concept: Any,
        lookup: Callable[[str, str], catalog.Term | None],
    ) -> catalog.Term | None:
        """The MIABIS term a CodeableConcept codes (the exact term our export writes beside
        a profile's code first), reporting a concept with no code we can read."""
        codings = codings_of(concept)
        exact = fhir_terms.vocabulary_system("")
        for coding in sorted(codings, key=lambda c: not c["system"].startswith(exact)):
            found = lookup(coding["system"], str(coding.get("code", "")))
            if found is not None:
                return found
        shown = ", ".join(f"{c['system']}#{c.get('code')}" for c in codings) or "nothing"
        self.problem(entry, element, f"{shown} is not a code we can read here")
        return None

    def _sex(self, system_url: str, code: str) -> catalog.Term | None:
        if system_url == MIABIS.system("sex"):
            return fhir_terms.term_by_column("sex", "miabis_fhir_code", code)
        if system_url == fhir_terms.system("gender"):
            return fhir_terms.term_by_column("sex", "fhir_code", code)
        return None

    def _material(self, system_url: str, code: str) -> catalog.Term | None:
        return self._sample_term("material_type", system_url, code)

    def _temperature(self, system_url: str, code: str) -> catalog.Term | None:
        return self._sample_term("storage_temperature", system_url, code)

    def _sample_term(self, table: str, system_url: str, code: str) -> catalog.Term | None:
        """A material type or storage temperature: the exact term our export writes beside
        the profile's code, else what either family's code stands for."""
        found = fhir_terms.vocabulary_term(system_url, code, table)
        for fam in (MIABIS, BBMRI):
            if found is not None:
                break
            if table == "material_type":
                found = fhir_terms.material_term(fam, system_url, code)
            elif system_url == fam.system("storage-temperature"):
                found = fhir_terms.storage_temperature_term(fam.key, code)
        return found

    def _diagnosis(self, entry: Entry, element: str, concept: Any) -> str | None:
        """An ICD-10 (WHO) code or ``ORPHA:<n>`` from a concept, an ICD-10-GM code read as
        its WHO code (with a notice); other codings reported."""
        codings = [(c, str(c.get("code", "")).strip()) for c in codings_of(concept)]
        for coding, code in codings:
            if coding["system"] == fhir_terms.system("icd-10") and code:
                return code
        for coding, code in codings:
            if coding["system"] in fhir_terms.system_urls("icd-10-gm") and code:
                found, why = fhir_terms.icd10_gm(code)
                if found is None:
                    self.problem(entry, element, f"ICD-10-GM {why}")
                    return None
                self.notice(
                    entry,
                    element,
                    f"ICD-10-GM {code} read as WHO ICD-10 {found}" + (f" ({why})" if why else ""),
                )
                return found
        for coding, code in codings:
            if coding["system"] == fhir_terms.system("orpha") and code:
                return "ORPHA:" + code.split(":")[-1]
        if any(c["system"] == BBMRI.system("other-sample-diagnosis") for c, _ in codings):
            return None  # healthy, unknown, ...: MIABIS stores no diagnosis then
        shown = ", ".join(f"{c['system']}#{c.get('code')}" for c, _ in codings) or "nothing"
        self.problem(
            entry,
            element,
            f"{shown}: a diagnosis is an ICD-10 (http://hl7.org/fhir/sid/icd-10), ICD-10-GM"
            " (http://fhir.de/CodeSystem/bfarm/icd-10-gm) or ORPHA (http://www.orpha.net) code",
        )
        return None
