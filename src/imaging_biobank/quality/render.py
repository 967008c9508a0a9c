"""A check report as a stable JSON document and as one self-contained HTML page."""

from __future__ import annotations

import datetime as dt
import html
import json
from typing import Any

from imaging_biobank.quality.checks import FORMAT, CheckReport
from imaging_biobank.quality.ruleset import SEVERITIES


def report_json(report: CheckReport, fail_on: str, database: str | None = None) -> dict[str, Any]:
    """The report for scripts. Keys change meaning only with ``format``."""
    per_rule = report.per_rule()
    return {
        "format": FORMAT,
        "database": database,
        "collection": report.collection,
        "fail_on": fail_on,
        "failed": bool(report.failing(fail_on)),
        "counts": report.counts(),
        "rules": [
            {
                "id": loaded.rule.id,
                "title": loaded.rule.title,
                "severity": loaded.rule.severity,
                "scope": loaded.rule.scope,
                "check": loaded.rule.check,
                "parameters": loaded.rule.parameters(),
                "source": list(loaded.sources),
                "findings": per_rule[loaded.rule.id],
            }
            for loaded in report.rules
        ],
        "findings": [finding.as_json() for finding in report.findings],
    }


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.uid { font-family: ui-monospace, monospace; word-break: break-all; }
.error { color: #b00020; } .warning { color: #9a6700; } .info { color: #0550ae; }
.summary span { margin-right: 1.5em; font-weight: bold; }
"""


def _cell(value: Any, css: str = "") -> str:
    text = "" if value is None else str(value)
    attribute = f' class="{css}"' if css else ""
    return f"<td{attribute}>{html.escape(text)}</td>"


def report_html(report: CheckReport, fail_on: str, database: str | None = None) -> str:
    """One HTML page (no external resources); every value escaped."""
    e = html.escape
    counts = report.counts()
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    scope = f"collection {report.collection}" if report.collection else "all collections"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>imaging-biobank check</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Data quality check</h1>",
        f"<p>{e(database or '')} &middot; {e(scope)} &middot; {e(when)} &middot;"
        f" failing at {e(fail_on)} &middot; format {e(FORMAT)}</p>",
        '<p class="summary">'
        + "".join(
            f'<span class="{s}">{counts[s]} {e(s)}{"s" if counts[s] != 1 and s != "info" else ""}'
            "</span>"
            for s in SEVERITIES
        )
        + "</p>",
    ]
    if not report.findings:
        parts.append(f"<p>No findings: {len(report.rules)} rules checked.</p>")
    for severity in SEVERITIES:
        found = [f for f in report.findings if f.severity == severity]
        if not found:
            continue
        parts.append(f'<h2 class="{severity}">{e(severity.capitalize())} ({len(found)})</h2>')
        parts.append(
            "<table><thead><tr><th>rule</th><th>collection</th><th>scope</th>"
            "<th>object</th><th>reason</th></tr></thead><tbody>"
        )
        for f in found:
            context = "".join(f"<br>{e(k)}: {e(v)}" for k, v in f.context.items())
            parts.append(
                "<tr>"
                + _cell(f.rule)
                + _cell(f.collection)
                + _cell(f.scope)
                + f'<td class="uid">{e(f.object)}{context}</td>'
                + _cell(f.reason)
                + "</tr>"
            )
        parts.append("</tbody></table>")
    per_rule = report.per_rule()
    parts.append("<h2>Rules</h2><table><thead><tr><th>rule</th><th>title</th><th>severity</th>")
    parts.append("<th>scope</th><th>check</th><th>parameters</th><th>findings</th>")
    parts.append("<th>source</th></tr></thead><tbody>")
    for loaded in report.rules:
        r = loaded.rule
        parameters = json.dumps(r.parameters(), ensure_ascii=False)
        parts.append(
            "<tr>"
            + "".join(_cell(v) for v in (r.id, r.title, r.severity, r.scope, r.check, parameters))
            + _cell(per_rule[r.id])
            + _cell(loaded.source)
            + "</tr>"
        )
    parts.append("</tbody></table></body></html>")
    return "\n".join(parts) + "\n"
