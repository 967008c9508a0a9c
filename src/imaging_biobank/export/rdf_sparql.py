"""SPARQL over the biobank's graph (rdflib): read-only queries (SELECT, ASK, CONSTRUCT,
DESCRIBE) with the export's prefixes declared, results in the SPARQL 1.1 JSON and CSV formats,
a cap on the query's length and on the result's size, and hard time and memory limits.

Refused at parse, with the reason: SPARQL Update (the graph is read-only), whatever would make
the server fetch from elsewhere (``SERVICE``, ``FROM``/``FROM NAMED``), and ``GRAPH`` (the
biobank is one graph, without named graphs). An exception while a query runs (rdflib's, such
as ``SUM`` over IRIs or an invalid regular expression) becomes a ``SparqlError`` of kind
``evaluation`` with the traceback in ``trace`` (for the server's log), never a crash.

Limits (``run`` with ``timeout`` or ``memory_mb``): on Linux the query is parsed and
evaluated in a forked child process (``rdf_sandbox``) that sees the graph copy-on-write,
may use ``memory_mb`` MiB beyond what it starts with and is killed at ``timeout`` seconds,
so a catastrophic regular expression or a cross product ends as an error while the rest of
the server goes on. On other systems there is no child: the query runs in the calling
process with no hard time or memory limit (the length and row caps still hold), and
``HARD_LIMITS`` is false so a server can say so or refuse.
"""

from __future__ import annotations

import csv
import io
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from pyparsing import ParseBaseException
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.plugins.sparql.evaluate import evalQuery
from rdflib.plugins.sparql.parser import parseUpdate
from rdflib.plugins.sparql.parserutils import CompValue
from rdflib.plugins.sparql.processor import prepareQuery
from rdflib.plugins.sparql.sparql import Query
from rdflib.term import Node, Variable

from imaging_biobank.export.rdf import serialize
from imaging_biobank.export.rdf_sandbox import (
    AVAILABLE,
    MEMORY_MB,  # MiB one query may use beyond the graph (the server's default)
    TIMEOUT,  # seconds for parsing and evaluating one query (the server's default)
    SandboxError,
    run_isolated,
)
from imaging_biobank.export.rdf_terms import prefixes

FORMS: Final = {
    "SelectQuery": "SELECT",
    "AskQuery": "ASK",
    "ConstructQuery": "CONSTRUCT",
    "DescribeQuery": "DESCRIBE",
}
RESULTS_JSON: Final = "application/sparql-results+json"
RESULTS_CSV: Final = "text/csv"
MAX_QUERY_CHARS: Final = 10_000  # longer query texts are refused before parsing
HARD_LIMITS: Final = AVAILABLE  # whether timeout and memory_mb are enforced (Linux)


class SparqlError(ValueError):
    """A query that is not run, or that failed; ``kind`` says why: ``syntax``, ``update``,
    ``remote`` (SERVICE, FROM), ``dataset`` (GRAPH), ``too-long`` (the query text),
    ``too-large`` (the result), ``timeout``, ``memory``, ``busy`` (too many queries running),
    ``evaluation`` (it raised while running: ``trace`` holds the traceback)."""

    def __init__(self, kind: str, message: str, trace: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.trace = trace


@dataclass
class SparqlResult:
    """The answer to one query: rows (SELECT), a boolean (ASK) or a graph (CONSTRUCT,
    DESCRIBE)."""

    form: str
    variables: list[str] = field(default_factory=list)
    rows: list[tuple[Node | None, ...]] = field(default_factory=list)
    boolean: bool | None = None
    graph: Graph | None = None

    @property
    def size(self) -> int:
        """Rows, triples, or 1 for an ASK."""
        if self.graph is not None:
            return len(self.graph)
        return 1 if self.form == "ASK" else len(self.rows)

    def to_json(self) -> dict[str, Any]:
        """SPARQL 1.1 Query Results JSON Format (SELECT and ASK)."""
        if self.form == "ASK":
            return {"head": {}, "boolean": bool(self.boolean)}
        bindings = [
            {name: _json_term(value) for name, value in zip(self.variables, row, strict=True)
             if value is not None}
            for row in self.rows
        ]  # fmt: skip
        return {"head": {"vars": self.variables}, "results": {"bindings": bindings}}

    def to_csv(self) -> str:
        """SPARQL 1.1 Query Results CSV Format (SELECT; an ASK as one ``boolean`` column)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        if self.form == "ASK":
            writer.writerow(["boolean"])
            writer.writerow(["true" if self.boolean else "false"])
            return out.getvalue()
        writer.writerow(self.variables)
        for row in self.rows:
            writer.writerow([_csv_term(value) for value in row])
        return out.getvalue()

    def graph_bytes(self, fmt: str = "turtle") -> bytes:
        """A CONSTRUCT or DESCRIBE result in an RDF format of the export."""
        assert self.graph is not None
        return serialize(self.graph, fmt)


def _json_term(term: Node) -> dict[str, str]:
    if isinstance(term, URIRef):
        return {"type": "uri", "value": str(term)}
    if isinstance(term, BNode):
        return {"type": "bnode", "value": str(term)}
    if isinstance(term, Literal):
        found = {"type": "literal", "value": str(term)}
        if term.language:
            found["xml:lang"] = term.language
        elif term.datatype is not None:
            found["datatype"] = str(term.datatype)
        return found
    return {"type": "literal", "value": str(term)}


def _csv_term(term: Node | None) -> str:
    if term is None:
        return ""
    if isinstance(term, BNode):
        return f"_:{term}"
    return str(term)


def _located(text: str, error: ParseBaseException) -> str:
    """Where a query fails to parse: line, column, what was expected, and the line marked."""
    lines = text.splitlines()
    line = lines[error.lineno - 1] if 0 < error.lineno <= len(lines) else ""
    marker = " " * (error.col - 1) + "^"
    return f"line {error.lineno}, column {error.col}: {error.msg}\n  {line}\n  {marker}"


def _walk(node: Any) -> Iterator[CompValue]:
    if isinstance(node, CompValue):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list | tuple):
        for item in node:
            yield from _walk(item)


def parse(text: str) -> tuple[Query, str]:
    """The prepared query and its form; ``SparqlError`` saying where the syntax is wrong, or
    why the query is refused."""
    if not text or not text.strip():
        raise SparqlError("syntax", "the query is empty: give a SELECT, ASK, CONSTRUCT or DESCRIBE")
    _check_length(text)
    try:
        query = prepareQuery(text, initNs=prefixes())
    except ParseBaseException as error:
        try:
            parseUpdate(text)
        except ParseBaseException:
            raise SparqlError(
                "syntax", "not a SPARQL 1.1 query: " + _located(text, error)
            ) from None
        raise SparqlError(
            "update",
            "SPARQL Update (INSERT, DELETE, LOAD, CLEAR, CREATE, DROP, ...) is not accepted:"
            " the graph is read-only. Ask with SELECT, ASK, CONSTRUCT or DESCRIBE.",
        ) from None
    except RecursionError:
        raise SparqlError(
            "syntax", "the query is nested too deeply to parse: simplify its expressions"
        ) from None
    except Exception as error:  # rdflib reports unknown prefixes and the like as plain errors
        raise SparqlError("syntax", f"not a valid SPARQL query: {error}") from None
    form = FORMS.get(query.algebra.name)
    if form is None:
        raise SparqlError("syntax", f"unsupported query form {query.algebra.name}")
    if query.algebra.get("datasetClause"):
        raise SparqlError(
            "remote", "FROM and FROM NAMED are not accepted: the query runs on this biobank's graph"
        )
    names = {node.name for node in _walk(query.algebra)}
    if "ServiceGraphPattern" in names:
        raise SparqlError(
            "remote", "SERVICE is not accepted: the query runs on this biobank's graph"
        )
    if "Graph" in names:
        raise SparqlError(
            "dataset",
            "GRAPH is not accepted: the biobank is one graph without named graphs;"
            " write the pattern without GRAPH",
        )
    return query, form


def _check_length(text: str) -> None:
    if len(text) > MAX_QUERY_CHARS:
        raise SparqlError(
            "too-long",
            f"the query has {len(text)} characters; at most {MAX_QUERY_CHARS} are accepted",
        )


def _evaluate(graph: Graph, query: Query, form: str, max_rows: int | None) -> SparqlResult:
    answer = evalQuery(graph, query)
    if form == "ASK":
        return SparqlResult(form, boolean=bool(answer["askAnswer"]))
    if form in ("CONSTRUCT", "DESCRIBE"):
        found: Graph = answer["graph"]
        if max_rows is not None and len(found) > max_rows:
            raise SparqlError(
                "too-large", f"the result has more than {max_rows} triples: narrow the query"
            )
        for prefix, iri in prefixes().items():
            found.bind(prefix, iri, override=True, replace=True)
        return SparqlResult(form, graph=found)
    variables: list[Variable] = list(answer["vars_"])
    rows: list[tuple[Node | None, ...]] = []
    for binding in answer["bindings"]:
        rows.append(tuple(binding.get(v) for v in variables))
        if max_rows is not None and len(rows) > max_rows:
            raise SparqlError(
                "too-large",
                f"the result has more than {max_rows} rows: add LIMIT (and OFFSET to page)",
            )
    return SparqlResult(form, [str(v) for v in variables], rows)


def _answer(graph: Graph, text: str, max_rows: int | None) -> SparqlResult:
    """Parse and evaluate; an exception of rdflib's while evaluating is an ``evaluation``
    ``SparqlError`` (MemoryError is left to the caller)."""
    query, form = parse(text)
    try:
        return _evaluate(graph, query, form, max_rows)
    except (SparqlError, MemoryError):
        raise
    except RecursionError:
        raise SparqlError(
            "evaluation", "the query is nested too deeply to evaluate: simplify it"
        ) from None
    except Exception as error:
        raise SparqlError(
            "evaluation", _failed(f"{type(error).__name__}: {error}"), traceback.format_exc()
        ) from None


def _failed(what: str) -> str:
    return (
        f"the query failed while running ({what}): check the functions' arguments"
        " (numbers for SUM and AVG, valid regular expressions, comparable ORDER BY keys)"
    )


# the result as it crosses from the child process: rdflib terms pickle; a graph as triples
_Wire = tuple[str, list[str], list[tuple[Node | None, ...]], bool | None, list[Any] | None]


def _to_wire(result: SparqlResult) -> _Wire:
    triples = list(result.graph) if result.graph is not None else None
    return (result.form, result.variables, result.rows, result.boolean, triples)


def _from_wire(wire: _Wire) -> SparqlResult:
    form, variables, rows, boolean, triples = wire
    graph: Graph | None = None
    if triples is not None:
        graph = Graph()
        for prefix, iri in prefixes().items():
            graph.bind(prefix, iri, override=True, replace=True)
        for triple in triples:
            graph.add(triple)
    return SparqlResult(form, variables, rows, boolean, graph)


def _in_child(graph: Graph, text: str, max_rows: int | None) -> tuple[str, Any, Any]:
    """What the child process computes: the result, or why there is none."""
    try:
        return ("result", _to_wire(_answer(graph, text, max_rows)), None)
    except SparqlError as error:
        return ("refused", error.kind, (str(error), error.trace))


_warmed = threading.Lock()
_warm = False


def _warm_up() -> None:
    """Evaluate one small query in this process before the first fork, so the parser's and
    the evaluator's lazily built parts are in place (a child then imports and builds
    nothing)."""
    global _warm
    with _warmed:
        if not _warm:
            _answer(Graph(), "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o FILTER(REGEX(?o, 'a')) }", 1)
            _warm = True


def run(
    graph: Graph,
    text: str,
    *,
    max_rows: int | None = None,
    timeout: float | None = None,
    memory_mb: int | None = None,
) -> SparqlResult:
    """Run a read-only query on ``graph``. With ``max_rows``, a result of more rows (or
    triples) is refused rather than cut. With ``timeout`` (seconds, parsing included) or
    ``memory_mb`` (MiB beyond the graph), the query runs in a child process killed at the
    limit (Linux; elsewhere in this process and without these limits: ``HARD_LIMITS``).
    ``SparqlError`` says why a query did not run."""
    _check_length(text)
    if (timeout is None and memory_mb is None) or not HARD_LIMITS:
        return _answer(graph, text, max_rows)
    _warm_up()
    try:
        outcome, value, extra = run_isolated(
            lambda: _in_child(graph, text, max_rows), timeout=timeout, memory_mb=memory_mb
        )
    except SandboxError as error:
        raise _sandbox_error(error, timeout, memory_mb) from None
    if outcome == "refused":
        message, trace = extra
        raise SparqlError(value, message, trace)
    return _from_wire(value)


def check(text: str, *, timeout: float | None = None) -> str:
    """The query's form if it parses and is accepted, else ``SparqlError``: for a caller
    that wants to report a typo before it builds the graph (the CLI). With ``timeout``, the
    parse runs in a child process killed at the limit (as in ``run``)."""
    _check_length(text)
    if timeout is None or not HARD_LIMITS:
        return parse(text)[1]
    _warm_up()

    def form() -> tuple[str, str]:
        try:
            return ("ok", parse(text)[1])
        except SparqlError as error:
            return (error.kind, str(error))

    try:
        kind, value = run_isolated(form, timeout=timeout, memory_mb=MEMORY_MB)
    except SandboxError as error:
        raise _sandbox_error(error, timeout, MEMORY_MB) from None
    if kind != "ok":
        raise SparqlError(kind, value)
    return value


def _sandbox_error(
    error: SandboxError, timeout: float | None, memory_mb: int | None
) -> SparqlError:
    """Why the child gave no result, as the query's author should read it."""
    if error.kind == "timeout":
        return SparqlError(
            "timeout",
            f"the query ran longer than {timeout:g} s and was stopped: narrow it (more specific"
            " patterns, LIMIT; avoid nested quantifiers in REGEX)",
        )
    if error.kind == "memory":
        return SparqlError(
            "memory",
            f"the query needed more than {memory_mb} MiB of memory and was stopped: narrow it"
            " (join the patterns on shared variables; LIMIT does not help under ORDER BY)",
        )
    if error.kind == "too-large":
        return SparqlError("too-large", f"the result is too large ({error}): add LIMIT")
    if error.kind == "busy":
        return SparqlError("busy", f"the server is busy: {error}")
    return SparqlError("evaluation", _failed(str(error)), error.trace)


__all__ = [
    "HARD_LIMITS",
    "MAX_QUERY_CHARS",
    "MEMORY_MB",
    "RESULTS_CSV",
    "RESULTS_JSON",
    "TIMEOUT",
    "SparqlError",
    "SparqlResult",
    "check",
    "parse",
    "run",
]
