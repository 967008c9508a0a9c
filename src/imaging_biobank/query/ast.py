"""Cohort queries as a small tree, from its two written forms (pure).

The JSON form follows the BBMRI Locator's: ``{"operand": "AND"|"OR"|"NOT", "children": [...]}``
with leaves ``{"key": ..., "type": "EQUALS"|"NOT_EQUALS"|"IN"|"BETWEEN"|"LESS_THAN"|
"LESS_OR_EQUAL"|"GREATER_THAN"|"GREATER_OR_EQUAL", "value": ...}`` (``system`` is accepted
and kept). The text form reads like the CLI example:

    modality = CT and body_part = ABDOMEN and slice_thickness <= 3
    and (material_type = TISSUE_FROZEN or not diagnosis in C74, C71)

Both parse into the same tree; ``to_text`` and ``to_json`` write it back. A key of a family
(``eform.ldh``, ``feature.8ZQL``) whose name is not a plain word is quoted after the dot:
``biomarker."11q loss" = absent``, ``feature."Volume (mm3)" > 10`` (or quoted whole).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

OPERATORS = {
    "=": "EQUALS",
    "==": "EQUALS",
    "!=": "NOT_EQUALS",
    "<>": "NOT_EQUALS",
    "<": "LESS_THAN",
    "<=": "LESS_OR_EQUAL",
    ">": "GREATER_THAN",
    ">=": "GREATER_OR_EQUAL",
    "in": "IN",
    "between": "BETWEEN",
}
SYMBOLS = {v: k for k, v in reversed(list(OPERATORS.items()))}
TYPES = tuple(dict.fromkeys(OPERATORS.values()))


class QuerySyntaxError(ValueError):
    """The query cannot be read; the message says where and what was expected."""


@dataclass(frozen=True)
class Leaf:
    key: str
    type: str
    value: Any  # a scalar, a list (IN) or a pair (BETWEEN)
    system: str | None = None


@dataclass(frozen=True)
class Node:
    operand: str  # AND, OR, NOT (one child)
    children: tuple[Leaf | Node, ...]


Query = Leaf | Node

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<op><=|>=|!=|<>|==|=|<|>)
      | (?P<paren>[(),])
      | "(?P<dq>[^"]*)"
      | '(?P<sq>[^']*)'
      | (?P<word>[^\s()<>=!,"']+)
    )""",
    re.X,
)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise QuerySyntaxError(f"cannot read {text[position : position + 20]!r} at {position}")
        group = match.lastgroup or ""
        value = match.group(group)
        kind = "string" if group in ("dq", "sq") else group
        out.append((kind, value, match.start(group)))
        position = match.end()
    return out


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise QuerySyntaxError("the query ends too early")
        self.i += 1
        return token

    def word(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1].lower() in words:
            self.i += 1
            return True
        return False

    def expression(self) -> Query:
        children = [self.conjunction()]
        while self.word("or"):
            children.append(self.conjunction())
        return children[0] if len(children) == 1 else Node("OR", tuple(children))

    def conjunction(self) -> Query:
        children = [self.negation()]
        while self.word("and"):
            children.append(self.negation())
        return children[0] if len(children) == 1 else Node("AND", tuple(children))

    def negation(self) -> Query:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QuerySyntaxError(f"the query nests more than {MAX_DEPTH} levels deep")
        try:
            if self.word("not"):
                return Node("NOT", (self.negation(),))
            token = self.peek()
            if token is not None and token[:2] == ("paren", "("):
                self.take()
                inner = self.expression()
                self.expect(")")
                return inner
            return self.comparison()
        finally:
            self.depth -= 1

    def expect(self, symbol: str) -> None:
        kind, value, at = self.take()
        if (kind, value) != ("paren", symbol):
            raise QuerySyntaxError(f"expected {symbol!r} at {at}, found {value!r}")

    def comparison(self) -> Leaf:
        kind, key, at = self.take()
        if kind not in ("word", "string"):
            raise QuerySyntaxError(f"expected a key at {at}, found {key!r}")
        quoted = self.peek()
        if (
            kind == "word"
            and key.endswith(".")
            and quoted is not None
            and quoted[0] == "string"
            and quoted[2] - 1 == at + len(key)  # prefix."a name", nothing between
        ):
            key += self.take()[1]
        op_kind, op, op_at = self.take()
        negate = False
        if op_kind == "word" and op.lower() == "not":
            negate = True
            op_kind, op, op_at = self.take()
        name = OPERATORS.get(op.lower() if op_kind == "word" else op)
        if name is None or (op_kind not in ("op", "word")):
            raise QuerySyntaxError(
                f"expected an operator after {key!r} at {op_at} (=, !=, <, <=, >, >=, in,"
                f" between), found {op!r}"
            )
        if name == "IN":
            value: Any = self.values()
        elif name == "BETWEEN":
            low = self.scalar()
            if not self.word("and"):
                raise QuerySyntaxError(f"{key} between needs 'and' between its bounds")
            value = [low, self.scalar()]
        else:
            value = self.scalar()
        leaf = Leaf(key, name, value)
        if negate:
            if name != "IN":
                raise QuerySyntaxError(f"'not' before {op!r}: write 'not {key} {op} ...'")
            return Leaf(key, "NOT_IN", value)
        return leaf

    def values(self) -> list[Any]:
        token = self.peek()
        if token is not None and token[:2] == ("paren", "("):
            self.take()
            items = [self.scalar()]
            while self.peek() is not None and self.peek()[:2] == ("paren", ","):  # type: ignore[index]
                self.take()
                items.append(self.scalar())
            self.expect(")")
            return items
        items = [self.scalar()]
        while self.peek() is not None and self.peek()[:2] == ("paren", ","):  # type: ignore[index]
            self.take()
            items.append(self.scalar())
        return items

    def scalar(self) -> Any:
        kind, value, at = self.take()
        if kind == "string":
            return value
        if kind != "word" or value.lower() in ("and", "or", "not"):
            raise QuerySyntaxError(f"expected a value at {at}, found {value!r}")
        return _number_or_word(value)


_INTEGER = re.compile(r"[+-]?\d+")
MAX_DEPTH = 32  # levels of nesting (parentheses, not, operands)
MAX_LEAVES = 500  # criteria in one query
MAX_INTEGER = 2**53  # integers beyond are not counts, ages or parameters (nor exact floats)


def check_limits(query: Query) -> Query:
    """``query`` if it is within the limits (depth, criteria, finite numbers in range);
    ``QuerySyntaxError`` saying which is exceeded otherwise."""
    count = 0

    def walk(node: Query, depth: int) -> None:
        nonlocal count
        if depth > MAX_DEPTH:
            raise QuerySyntaxError(f"the query nests more than {MAX_DEPTH} levels deep")
        if isinstance(node, Node):
            for child in node.children:
                walk(child, depth + 1)
            return
        count += 1
        if count > MAX_LEAVES:
            raise QuerySyntaxError(f"the query has more than {MAX_LEAVES} criteria")
        for value in node.value if isinstance(node.value, list) else [node.value]:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if isinstance(value, float) and not math.isfinite(value):
                raise QuerySyntaxError(f"{node.key}: {value} is not a finite number")
            if abs(value) > MAX_INTEGER:
                raise QuerySyntaxError(f"{node.key}: {value} is out of range (at most 2^53)")

    walk(query, 1)
    return query


def _number_or_word(value: str) -> Any:
    """A bare value as a number when it reads as one (``3``, ``2.5``), else as written."""
    if _INTEGER.fullmatch(value):
        return int(value)
    try:
        return float(value)
    except ValueError:
        return value


def parse_text(text: str) -> Query:
    """The tree of a text query."""
    if not text.strip():
        raise QuerySyntaxError("the query is empty")
    parser = _Parser(text)
    tree = parser.expression()
    rest = parser.peek()
    if rest is not None:
        raise QuerySyntaxError(f"unexpected {rest[1]!r} at {rest[2]}")
    return check_limits(tree)


def parse_json(data: Any) -> Query:
    """The tree of a JSON query (a dict, or its text)."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as error:
            raise QuerySyntaxError(f"not JSON: {error}") from None
    return check_limits(_from_json(data, "$"))


def _from_json(data: Any, where: str, depth: int = 1) -> Query:
    if depth > MAX_DEPTH:
        raise QuerySyntaxError(f"the query nests more than {MAX_DEPTH} levels deep")
    if not isinstance(data, dict):
        raise QuerySyntaxError(f"{where}: a node or a leaf object is expected")
    if "operand" in data:
        operand = str(data["operand"]).upper()
        children = data.get("children")
        if operand not in ("AND", "OR", "NOT") or not isinstance(children, list) or not children:
            raise QuerySyntaxError(
                f"{where}: operand must be AND, OR or NOT with a non-empty children list"
            )
        if operand == "NOT" and len(children) != 1:
            raise QuerySyntaxError(f"{where}: NOT takes one child")
        nodes = tuple(
            _from_json(c, f"{where}.children[{i}]", depth + 1) for i, c in enumerate(children)
        )
        return nodes[0] if len(nodes) == 1 and operand != "NOT" else Node(operand, nodes)
    missing = [k for k in ("key", "type", "value") if k not in data]
    if missing:
        raise QuerySyntaxError(f"{where}: a leaf needs {', '.join(missing)}")
    kind = str(data["type"]).upper()
    if kind not in (*TYPES, "NOT_IN"):
        raise QuerySyntaxError(f"{where}: type {kind!r}; allowed: {', '.join(TYPES)}, NOT_IN")
    value = data["value"]
    if kind in ("IN", "NOT_IN") and not isinstance(value, list):
        value = [value]
    if kind == "BETWEEN" and not (isinstance(value, list) and len(value) == 2):
        if isinstance(value, dict) and {"min", "max"} <= set(value):
            value = [value["min"], value["max"]]
        else:
            raise QuerySyntaxError(f"{where}: BETWEEN needs [low, high] or {{min, max}}")
    return Leaf(str(data["key"]), kind, value, data.get("system"))


def to_json(query: Query) -> dict[str, Any]:
    if isinstance(query, Leaf):
        out: dict[str, Any] = {"key": query.key, "type": query.type, "value": query.value}
        if query.system:
            out["system"] = query.system
        return out
    return {"operand": query.operand, "children": [to_json(c) for c in query.children]}


_WORD = re.compile(r"[^\s()<>=!,\"']+")


def _quoted(text: str) -> str:
    """A text in the quotes the tokenizer reads (it has no escapes): double, else single."""
    if '"' not in text:
        return f'"{text}"'
    if "'" not in text:
        return f"'{text}'"
    raise QuerySyntaxError(f"{text!r} holds both quote characters: use the JSON form")


def _value_text(value: Any) -> str:
    text = str(value)
    if _WORD.fullmatch(text) and text.lower() not in ("and", "or", "not"):
        return text
    return _quoted(text)


def _key_text(key: str) -> str:
    """A key as the text form reads it: ``prefix."a name"`` when the name is not a word."""
    if _WORD.fullmatch(key):
        return key
    prefix, dot, name = key.partition(".")
    if dot and _WORD.fullmatch(prefix + dot):
        return prefix + dot + _quoted(name)
    return _quoted(key)


def to_text(query: Query, nested: bool = False) -> str:
    if isinstance(query, Leaf):
        key = _key_text(query.key)
        if query.type in ("IN", "NOT_IN"):
            values = ", ".join(_value_text(v) for v in query.value)
            return f"{key} {'not in' if query.type == 'NOT_IN' else 'in'} ({values})"
        if query.type == "BETWEEN":
            low, high = query.value
            return f"{key} between {_value_text(low)} and {_value_text(high)}"
        return f"{key} {SYMBOLS[query.type]} {_value_text(query.value)}"
    if query.operand == "NOT":
        return f"not {to_text(query.children[0], True)}"
    text = f" {query.operand.lower()} ".join(to_text(c, True) for c in query.children)
    return f"({text})" if nested else text


def leaves(query: Query) -> list[Leaf]:
    if isinstance(query, Leaf):
        return [query]
    return [leaf for child in query.children for leaf in leaves(child)]
