"""Reading YAML while remembering the line of every key and list item, and the problems
found in such a document (file, line, field path, message).

Shared by the registration documents and the quality rules; pure (no database, no ORM),
so a command that only validates a file starts fast."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]


@dataclass
class YamlSource:
    """A parsed YAML document and the line (1-based) where each path in it starts."""

    name: str
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int | None:
        """The line of the deepest known prefix of ``path`` (the field, else its parent)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


class YamlSyntaxError(ValueError):
    """The text is not YAML; says where (line, when known) and what."""

    def __init__(self, name: str, line: int | None, problem: str):
        self.line = line
        self.problem = f"not valid YAML: {problem}"
        super().__init__(f"{name}:{line}: {self.problem}" if line else f"{name}: {self.problem}")


def _walk(node: yaml.Node, path: Path, lines: dict[Path, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines.setdefault((*path, key), key_node.start_mark.line + 1)
            _walk(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.setdefault((*path, i), item.start_mark.line + 1)
            _walk(item, (*path, i), lines)


def load_yaml(text: str, name: str) -> YamlSource:
    """Parse one YAML document (safe loader), keeping the line of every element."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise YamlSyntaxError(name, line, getattr(error, "problem", None) or str(error)) from None
    finally:
        loader.dispose()
    lines: dict[Path, int] = {(): 1}
    if node is not None:
        _walk(node, (), lines)
    return YamlSource(name, data, lines)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document: where (file, line, field path) and why."""

    file: str
    line: int | None
    path: Path
    message: str

    @property
    def field(self) -> str:
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text or "(document)"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}"
