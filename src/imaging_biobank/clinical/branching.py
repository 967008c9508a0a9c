"""REDCap branching logic ("show the field only if ..."): a parser and evaluator for the
common part of the syntax.

Understood: ``[field] = 'value'``, ``<>``, ``!=``, ``>``, ``>=``, ``<``, ``<=`` (and ``==``),
numbers and quoted strings, ``and`` / ``or`` in any case, parentheses, and checkbox options
``[field(code)] = '1'``. Anything else (functions such as ``datediff()``, smart variables
such as ``[event-name]``, ``[event][field]`` prefixes, instance suffixes) raises
``NotEvaluated`` with the reason: the field's logic is then kept verbatim and records are
not checked against it.

Comparisons follow REDCap: when both sides are numbers they compare as numbers, otherwise
as text; an order comparison with an empty side is false; an unchecked checkbox option is
``'0'`` and a ticked one ``'1'``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final, Literal

Operator = Literal["=", "<>", ">", ">=", "<", "<="]
FLIPPED: Final[dict[Operator, Operator]] = {
    "=": "=",
    "<>": "<>",
    ">": "<",
    ">=": "<=",
    "<": ">",
    "<=": ">=",
}
_OPERATORS: Final[dict[str, Operator]] = {
    "=": "=",
    "==": "=",
    "<>": "<>",
    "!=": "<>",
    ">": ">",
    ">=": ">=",
    "<": "<",
    "<=": "<=",
}
FIELD_NAME: Final = r"[A-Za-z][A-Za-z0-9_]*"


class NotEvaluated(ValueError):
    """Logic outside the part of REDCap's syntax we evaluate; the message says what."""


@dataclass(frozen=True)
class Ref:
    """A field (``[sex]``) or a checkbox option (``[symptoms(2)]``)."""

    field: str
    code: str | None = None

    def __str__(self) -> str:
        return f"[{self.field}({self.code})]" if self.code is not None else f"[{self.field}]"


@dataclass(frozen=True)
class Constant:
    """A number or quoted string, as written (without quotes)."""

    text: str


Operand = Ref | Constant


@dataclass(frozen=True)
class Comparison:
    left: Operand
    op: Operator
    right: Operand

    def refs(self) -> Iterator[Ref]:
        for side in (self.left, self.right):
            if isinstance(side, Ref):
                yield side

    def field_test(self) -> tuple[Ref, Operator, str] | None:
        """As ``field op constant`` (sides swapped if needed); None for two fields or
        two constants."""
        if isinstance(self.left, Ref) and isinstance(self.right, Constant):
            return self.left, self.op, self.right.text
        if isinstance(self.left, Constant) and isinstance(self.right, Ref):
            return self.right, FLIPPED[self.op], self.left.text
        return None


@dataclass(frozen=True)
class Junction:
    """Conditions joined by one of ``and`` / ``or``."""

    op: Literal["and", "or"]
    parts: tuple[Condition, ...]

    def refs(self) -> Iterator[Ref]:
        for part in self.parts:
            yield from part.refs()


Condition = Comparison | Junction

_TOKEN: Final = re.compile(
    r"""\s*(?:
        (?P<ref>\[[^\[\]]*\])
      | (?P<string>'[^']*'|"[^"]*")
      | (?P<number>-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))
      | (?P<op><>|!=|>=|<=|==|=|>|<)
      | (?P<paren>[()])
      | (?P<word>[A-Za-z_][A-Za-z0-9_-]*)
      | (?P<other>\S)
    )""",
    re.VERBOSE,
)
_REF: Final = re.compile(rf"\[({FIELD_NAME})(?:\(([A-Za-z0-9_.-]+)\))?\]")


def _tokens(text: str) -> list[tuple[str, str]]:
    found = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:  # only spaces left
            break
        found.append((match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    return found


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise NotEvaluated("the logic ends too early")
        self.at += 1
        return token

    def junction(self, op: Literal["and", "or"], inner: Callable[[], Condition]) -> Condition:
        parts = [inner()]
        while (token := self.peek()) is not None and token == ("word", token[1]):
            if token[1].lower() != op:
                break
            self.at += 1
            parts.append(inner())
        return parts[0] if len(parts) == 1 else Junction(op, tuple(parts))

    def any_of(self) -> Condition:
        return self.junction("or", self.all_of)

    def all_of(self) -> Condition:
        return self.junction("and", self.atom)

    def atom(self) -> Condition:
        token = self.peek()
        if token == ("paren", "("):
            self.at += 1
            inner = self.any_of()
            if self.peek() != ("paren", ")"):
                raise NotEvaluated("a parenthesis is not closed")
            self.at += 1
            return inner
        left = self.operand()
        kind, value = self.take()
        if kind != "op":
            raise NotEvaluated(f"expected a comparison after {left}, found {value!r}")
        return Comparison(left, _OPERATORS[value], self.operand())

    def operand(self) -> Operand:
        kind, value = self.take()
        if kind == "ref":
            match = _REF.fullmatch(value)
            if match is None:
                raise NotEvaluated(f"{value} is a smart variable or not a field")
            following = self.peek()
            if following is not None and following[0] == "ref":
                raise NotEvaluated(f"{value}{following[1]}: event or instance prefixes")
            return Ref(match.group(1), match.group(2))
        if kind == "string":
            return Constant(value[1:-1])
        if kind == "number":
            return Constant(value)
        if kind == "word":
            following = self.peek()
            if following == ("paren", "("):
                raise NotEvaluated(f"function {value}() is not evaluated")
            raise NotEvaluated(f"{value!r} is not a field, number or quoted value")
        raise NotEvaluated(f"cannot read the logic at {value!r}")


def parse(text: str) -> Condition:
    """The condition REDCap branching logic states, or ``NotEvaluated`` saying why not."""
    parser = _Parser(text.replace("\r", " ").replace("\n", " "))
    if not parser.tokens:
        raise NotEvaluated("the logic is empty")
    condition = parser.any_of()
    rest = parser.peek()
    if rest is not None:
        raise NotEvaluated(f"cannot read the logic from {rest[1]!r} on")
    return condition


def _number(text: str) -> float | None:
    try:
        return float(text) if text.strip() else None
    except ValueError:
        return None


def compare(left: str, op: Operator, right: str) -> bool:
    """REDCap's comparison of two values (see the module docstring)."""
    a, b = _number(left), _number(right)
    if op in ("=", "<>"):
        same = a == b if a is not None and b is not None else left == right
        return same if op == "=" else not same
    if not left.strip() or not right.strip():
        return False
    x: float | str
    y: float | str
    x, y = (a, b) if a is not None and b is not None else (left, right)
    if op == ">":
        return x > y  # type: ignore[operator]
    if op == ">=":
        return x >= y  # type: ignore[operator]
    if op == "<":
        return x < y  # type: ignore[operator]
    return x <= y  # type: ignore[operator]


Lookup = Callable[[Ref], str]


def evaluate(condition: Condition, value_of: Lookup) -> bool:
    """Whether the condition holds; ``value_of`` gives a field's raw value ('' if empty)
    and a checkbox option's '1' or '0'."""
    if isinstance(condition, Junction):
        results = (evaluate(part, value_of) for part in condition.parts)
        return all(results) if condition.op == "and" else any(results)

    def side(operand: Operand) -> str:
        return value_of(operand) if isinstance(operand, Ref) else operand.text

    return compare(side(condition.left), condition.op, side(condition.right))
