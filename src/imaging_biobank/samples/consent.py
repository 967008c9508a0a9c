"""Consent as data: which declared purposes a donor's or sample's use and access conditions
rule out.

Every condition (MIABIS SAMPLE-11 or GA4GH DUO) carries ``restricts`` in its vocabulary
file: flags separated by spaces, each either ``flag`` (the condition rules out requests
whose purpose has it: ``commercial``) or ``!flag`` (it rules out requests whose purpose
lacks it: ``!collaboration``). A request declares its purpose as a set of flags; queries and
exports keep only the donors and samples none of whose conditions rule it out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Select, select

from imaging_biobank.db._schema import metadata
from imaging_biobank.vocab import catalog

# what a request can declare about itself (the flags the vocabulary files use)
PURPOSE_FLAGS: Final = {
    "commercial": "the use is commercial",
    "for_profit_organisation": "the requester is a for-profit organisation",
    "outside_eu": "data or samples leave the EU/EEA",
    "genetic": "the research is genetic (genotype) research",
    "collaboration": "the requester agrees to collaborate with the biobank's investigators",
    "animal_work": "the samples go into animal work",
    "xenograft": "the samples go into xenografts",
    "methods_development": "the use develops methods (software, algorithms, AI models)",
    "population_ancestry": "the research studies population origins or ancestry",
    "health_research": "the research is health, medical or biomedical research",
    "ethics_approval": "the requester has ethics (IRB/ERB) approval",
    "specific_approval": "the biobank approved this use for its specific conditions",
    "agreements": "the requester accepts publication, return and time-limit terms",
}


class PurposeError(ValueError):
    """A purpose flag that does not exist; the message lists those that do."""


@dataclass(frozen=True)
class Purpose:
    """What a request declares about its use."""

    flags: frozenset[str]

    @classmethod
    def of(cls, flags: Iterable[str]) -> Purpose:
        wanted = frozenset(f.strip() for f in flags if f.strip())
        unknown = sorted(wanted - PURPOSE_FLAGS.keys())
        if unknown:
            raise PurposeError(
                f"unknown purpose {', '.join(unknown)}; known: {', '.join(PURPOSE_FLAGS)}"
            )
        return cls(wanted)


def rules(restricts: str | None) -> list[tuple[bool, str]]:
    """(needs the flag?, flag) for each rule of a ``restricts`` value."""
    out = []
    for rule in (restricts or "").split():
        needs = rule.startswith("!")
        flag = rule.lstrip("!")
        if flag not in PURPOSE_FLAGS:
            raise ValueError(f"restricts names an unknown purpose flag {flag!r}")
        out.append((needs, flag))
    return out


def rules_out(restricts: str | None, purpose: Purpose) -> list[str]:
    """Why a condition with these ``restricts`` rules the purpose out (empty: it does not)."""
    reasons = []
    for needs, flag in rules(restricts):
        if needs and flag not in purpose.flags:
            reasons.append(f"requires: {PURPOSE_FLAGS[flag]}")
        elif not needs and flag in purpose.flags:
            reasons.append(f"excludes: {PURPOSE_FLAGS[flag]}")
    return reasons


def term_rules_out(term: catalog.Term, purpose: Purpose) -> list[str]:
    return rules_out(term.get("restricts"), purpose)


def blocking(conditions: Iterable[tuple[str, str | None]], purpose: Purpose) -> list[str]:
    """The conditions (code, restricts) that rule the purpose out, each with its reason."""
    out = []
    for code, restricts in conditions:
        for reason in rules_out(restricts, purpose):
            out.append(f"{code}: {reason}")
    return out


def blocking_condition_ids(conn: Connection, purpose: Purpose) -> list[int]:
    """The ids of the stored conditions that rule ``purpose`` out (few rows: evaluated here,
    so the queries that honour consent stay plain SQL)."""
    table = metadata.tables["use_access_condition"]
    return [
        int(id_)
        for id_, restricts in conn.execute(select(table.c.id, table.c.restricts))
        if rules_out(restricts, purpose)
    ]


def ruled_out(conn: Connection, purpose: Purpose) -> tuple[Select[Any], Select[Any]]:
    """(donor ids, sample ids) the purpose may not use: donors whose own consent rules it
    out (all their data and samples), and samples whose conditions do."""
    blocked = blocking_condition_ids(conn, purpose)
    donor_link = metadata.tables["sample_donor_use_access_condition"]
    sample_link = metadata.tables["sample_use_access_condition"]
    sample = metadata.tables["sample"]
    donors = select(donor_link.c.sample_donor_id).where(
        donor_link.c.use_access_condition_id.in_(blocked)
    )
    samples = select(sample.c.id).where(
        sample.c.id.in_(
            select(sample_link.c.sample_id).where(
                sample_link.c.use_access_condition_id.in_(blocked)
            )
        )
        | sample.c.sample_donor_id.in_(donors)
    )
    return donors, samples
