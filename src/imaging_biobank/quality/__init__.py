"""Data-quality checks over the database: YAML rules of a few parametrised kinds (range,
one value per collection, required) and built-in linkage checks (one donor per study,
no empty studies, instance files unchanged, de-identification recorded)."""

from __future__ import annotations

from imaging_biobank.quality.checks import FORMAT, CheckReport, Finding, Target, run_checks
from imaging_biobank.quality.render import report_html, report_json
from imaging_biobank.quality.ruleset import (
    CHECKS,
    SEVERITIES,
    LoadedRule,
    RulesError,
    load_rules,
    parse_rules,
)
from imaging_biobank.yaml_lines import Problem

__all__ = [
    "CHECKS",
    "FORMAT",
    "SEVERITIES",
    "CheckReport",
    "Finding",
    "LoadedRule",
    "Problem",
    "RulesError",
    "Target",
    "load_rules",
    "parse_rules",
    "report_html",
    "report_json",
    "run_checks",
]
