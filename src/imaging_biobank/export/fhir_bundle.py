"""Writing one FHIR R4 transaction Bundle: stable ids, validation of every resource, and the
checks fhir.resources does not make (codes in their value sets, references that resolve).

A resource's id is a UUID (version 5) of its natural key (``Patient|<pseudonym>``,
``ImagingStudy|<StudyInstanceUID>``, ...), so the same database gives the same ids, and the
same bytes, every time; the Bundle is written one entry per line, so two exports diff line
by line. Each entry is ``fullUrl = urn:uuid:<id>`` with ``request = PUT <Type>/<id>``: the
file can be posted to a FHIR server as it is, and loading it twice changes nothing.
References inside the Bundle are ``urn:uuid:`` fullUrls, always to an entry written before,
so one that was refused takes whatever points at it with it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from pydantic import ValidationError

from imaging_biobank.export import fhir_rules, fhir_terms


@cache
def _namespace() -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, fhir_terms.own_canonical())


def resource_id(resource_type: str, key: str) -> str:
    """The stable id of the resource of ``resource_type`` whose natural key is ``key``."""
    return str(uuid.uuid5(_namespace(), f"{resource_type}|{key}"))


def full_url(resource_type: str, key: str) -> str:
    """The ``urn:uuid:`` fullUrl of the resource with that natural key."""
    return f"urn:uuid:{resource_id(resource_type, key)}"


def reference(resource_type: str, key: str, display: str | None = None) -> dict[str, str]:
    """A Reference to the resource with that natural key, inside the Bundle."""
    found = {"reference": full_url(resource_type, key)}
    if display:
        found["display"] = display
    return found


@dataclass(frozen=True)
class Problem:
    """Something that could not be exported: where (resource and key) and why."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@cache
def _model(resource_type: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(resource_type)


def validation_errors(resource: dict[str, Any]) -> list[tuple[str, str, str]]:
    """What the R4B model of the resource type refuses in ``resource``: (element, message,
    pydantic error type) each; empty if valid."""
    try:
        _model(str(resource["resourceType"])).model_validate(resource)
    except ValidationError as error:
        return [
            (".".join(str(p) for p in e["loc"]), str(e["msg"]), str(e["type"]))
            for e in error.errors(include_url=False)
        ]
    except (KeyError, ValueError) as error:
        return [("", str(error), "")]
    return []


def validation_problems(resource: dict[str, Any]) -> list[str]:
    """``validation_errors`` as ``element: message`` lines."""
    return [f"{e}: {m}" if e else m for e, m, _ in validation_errors(resource)]


def references_in(node: Any) -> list[str]:
    """Every ``reference`` string under ``node`` (a resource as JSON)."""
    found: list[str] = []
    if isinstance(node, dict):
        value = node.get("reference")
        if isinstance(value, str):
            found.append(value)
        for child in node.values():
            found.extend(references_in(child))
    elif isinstance(node, list):
        for child in node:
            found.extend(references_in(child))
    return found


@dataclass
class BundleWriter:
    """Writes the entries of one transaction Bundle to ``path`` as they come, each validated
    (fhir.resources R4B), checked (value sets, the profile it claims) and resolvable (it
    points only at entries written before it) first; an entry that fails is not written and
    becomes a problem, so whatever points at it fails too. A profile claim the resource
    cannot meet is dropped and noted. The file is written under a temporary name in the same
    folder and renamed when the Bundle is complete: a crash leaves no Bundle behind."""

    path: Path
    bundle_key: str
    problems: list[Problem]
    notices: list[Problem]
    meta: dict[str, Any] | None = None
    counts: Counter[str] = field(default_factory=Counter)
    written: set[str] = field(default_factory=set)
    claims: dict[str, set[str]] = field(default_factory=dict)  # fullUrl -> profiles kept
    refused: dict[str, str] = field(default_factory=dict)  # fullUrl -> where it was refused
    _file: IO[str] | None = None
    _temporary: Path | None = None
    _first: bool = True

    def __enter__(self) -> BundleWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.part")
        self._file = self._temporary.open("w", encoding="utf-8", newline="\n")
        head: dict[str, Any] = {
            "resourceType": "Bundle",
            "id": resource_id("Bundle", self.bundle_key),
        }
        if self.meta:
            head["meta"] = self.meta
        head["type"] = "transaction"
        text = json.dumps(head, ensure_ascii=False, separators=(",", ":"))
        self._file.write(text[:-1] + ',"entry":[\n')
        return self

    def has(self, resource_type: str, key: str) -> bool:
        """Whether the resource with that natural key is in the Bundle already."""
        return full_url(resource_type, key) in self.written

    def _unresolved(self, resource: dict[str, Any]) -> list[str]:
        """References of ``resource`` to Bundle entries not written (refused, or never made)."""
        found = []
        for target in dict.fromkeys(references_in(resource)):
            if target.startswith("urn:uuid:") and target not in self.written:
                why = self.refused.get(target)
                found.append(
                    f"it points at {target}, {why}, which was left out"
                    if why
                    else f"it points at {target}, which is not in the Bundle"
                )
        return found

    def _claims(self, resource: dict[str, Any], where: str) -> None:
        """Drop each profile claim ``resource`` cannot meet (``fhir_rules``), with a notice."""
        meta = resource.get("meta")
        claimed = list(meta.get("profile", [])) if isinstance(meta, dict) else []
        kept = []
        for profile in claimed:
            why = fhir_rules.unmet(resource, profile, self.claims)
            if why:
                self.notices.append(
                    Problem(where, f"written without the profile {profile}: {'; '.join(why)}")
                )
            else:
                kept.append(profile)
        if kept != claimed:
            assert isinstance(meta, dict)
            rest = {k: v for k, v in meta.items() if k != "profile"}
            if kept:
                rest["profile"] = kept
            if rest:
                resource["meta"] = rest
            else:
                del resource["meta"]

    def add(self, resource: dict[str, Any], key: str, where: str) -> bool:
        """Validate and write one resource (its id is made from ``key``); False, with a
        problem saying why, when it is refused."""
        kind = str(resource["resourceType"])
        head = {"resourceType": kind, "id": resource_id(kind, key)}
        if "meta" in resource:
            head["meta"] = resource["meta"]
        resource = head | {k: v for k, v in resource.items() if k not in head}
        url = full_url(kind, key)
        if url in self.written:
            self.problems.append(Problem(where, f"a second {kind} with the key {key!r}"))
            return False
        problems = (
            validation_problems(resource)
            + fhir_terms.code_problems(resource)
            + self._unresolved(resource)
        )
        if problems:
            self.problems.extend(Problem(where, p) for p in problems)
            self.refused.setdefault(url, where)
            return False
        self._claims(resource, where)
        entry = {
            "fullUrl": url,
            "resource": resource,
            "request": {"method": "PUT", "url": f"{kind}/{resource['id']}"},
        }
        assert self._file is not None
        if not self._first:
            self._file.write(",\n")
        self._file.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")))
        self._first = False
        self.written.add(url)
        self.claims[url] = set(resource.get("meta", {}).get("profile", []))
        self.counts[kind] += 1
        return True

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        assert self._file is not None and self._temporary is not None
        if kind is not None:  # a Bundle cut short is no Bundle: none is left behind
            self._file.close()
            self._temporary.unlink(missing_ok=True)
            return
        self._file.write("\n]}\n")
        self._file.close()
        os.replace(self._temporary, self.path)
