"""What a resource must hold to claim a MIABIS on FHIR or bbmri.de profile, checked before it
is written: the rules are data (``profile_rules`` of ``export/data/fhir_profiles.json``, with
their sources), this module only reads them.

A rule names elements by path: ``address.country``; ``contact(ADMIN).name.family`` keeps the
items of ``contact`` coded ``ADMIN`` (in ``code`` or ``purpose``); ``extension(description)``
keeps the extensions whose url is the family's ``description`` extension. ``required``: at
least one value there; ``absent``: none; ``systems``: every Coding there is of one of these
systems; ``targets``: the Reference there points at a resource of the Bundle that claims that
profile of the family (so a Collection whose biobank could not claim Biobank cannot claim
Collection either).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any, Final

from imaging_biobank.export import fhir_terms
from imaging_biobank.export.fhir_terms import Family

_STEP: Final = re.compile(r"([A-Za-z]+)(?:\(([^)]+)\))?")


@cache
def _rules() -> dict[str, tuple[Family, str, dict[str, Any]]]:
    """Profile URL -> (family, profile name, rule)."""
    data = fhir_terms.profile_rules()
    found: dict[str, tuple[Family, str, dict[str, Any]]] = {}
    for key in fhir_terms.FAMILIES:
        fam = fhir_terms.family(key)
        for name, rule in data.get(key, {}).items():
            found[fam.profile(name)] = (fam, name, rule)
    return found


def _coded(item: Any, code: str) -> bool:
    if not isinstance(item, dict):
        return False
    for field in ("code", "purpose"):
        concept = item.get(field)
        codings = concept.get("coding", []) if isinstance(concept, dict) else []
        if any(isinstance(c, dict) and c.get("code") == code for c in codings):
            return True
    return False


def values_at(resource: dict[str, Any], path: str, fam: Family) -> list[Any]:
    """The non-empty values at ``path`` in ``resource`` (see the module docstring)."""
    current: list[Any] = [resource]
    for step in path.split("."):
        match = _STEP.fullmatch(step)
        if match is None:
            raise ValueError(f"bad path step {step!r} in profile rule path {path!r}")
        name, selector = match.groups()
        found: list[Any] = []
        for node in current:
            value = node.get(name) if isinstance(node, dict) else None
            items = value if isinstance(value, list) else [] if value is None else [value]
            if selector and name == "extension":
                wanted = fam.extension(selector)
                items = [i for i in items if isinstance(i, dict) and i.get("url") == wanted]
            elif selector:
                items = [i for i in items if _coded(i, selector)]
            found.extend(items)
        current = found
    return [v for v in current if v not in (None, "", [], {})]


def _system_urls(name: str, fam: Family) -> tuple[str, ...]:
    if ":" in name:
        key, _, system_name = name.partition(":")
        return (fhir_terms.family(key).system(system_name),)
    return fhir_terms.system_urls(name)


def unmet(resource: dict[str, Any], profile: str, claims: Mapping[str, set[str]]) -> list[str]:
    """Why ``resource`` cannot claim ``profile`` (empty when it can, or when we hold no rule
    for it); ``claims`` are the profiles each resource written so far claims, by fullUrl."""
    found = _rules().get(profile)
    if found is None:
        return []
    fam, _, rule = found
    why: list[str] = []
    for path in rule.get("required", []):
        if not values_at(resource, path, fam):
            why.append(f"{path} is required")
    for path in rule.get("absent", []):
        if values_at(resource, path, fam):
            why.append(f"{path} is not allowed")
    for path, names in rule.get("systems", {}).items():
        allowed = {url for name in names for url in _system_urls(name, fam)}
        for _, coding in (
            c for v in values_at(resource, path, fam) for c in fhir_terms.codings_in(v)
        ):
            if coding.get("system") not in allowed:
                why.append(
                    f"{path}: {coding.get('system')} is not allowed (only {', '.join(names)})"
                )
    for path, target in rule.get("targets", {}).items():
        wanted = fam.profile(target)
        for value in values_at(resource, path, fam):
            ref = value.get("reference") if isinstance(value, dict) else None
            if ref is not None and wanted not in claims.get(str(ref), set()):
                why.append(f"{path} does not point at a {fam.title} {target} ({wanted})")
    return why
