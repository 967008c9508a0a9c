"""From YAML text to a validated registration document, or every problem with its line."""

from __future__ import annotations

from pydantic import ValidationError

from imaging_biobank.register.document import RegistrationDocument, cross_check
from imaging_biobank.yaml_lines import Path, Problem, YamlSource, YamlSyntaxError, load_yaml


class DocumentError(ValueError):
    """The document was refused; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _pydantic_problems(error: ValidationError, source: YamlSource) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        path: Path = tuple(p for p in item["loc"] if isinstance(p, str | int))
        ctx = item.get("ctx") or {}
        if item["type"] == "unknown_field":
            path = (*path, ctx["field"])
        message = item["msg"]
        if item["type"] == "missing":
            message = "required field is missing"
        elif item["type"] == "literal_error" and "expected" in ctx:
            message = f"{item['input']!r} is not allowed; allowed: {ctx['expected']}"
        problems.append(Problem(source.name, source.line_of(path), path, message))
    return problems


def parse_document(text: str, name: str) -> RegistrationDocument:
    """Validate a registration YAML; raise ``DocumentError`` listing every problem."""
    try:
        source = load_yaml(text, name)
    except YamlSyntaxError as error:
        raise DocumentError([Problem(name, error.line, (), error.problem)]) from None
    if not isinstance(source.data, dict):
        raise DocumentError([Problem(name, 1, (), "expected a mapping with a 'biobank' key")])
    problems = [
        Problem(name, source.line_of(path), path, message)
        for path, message in cross_check(source.data)
    ]
    try:
        doc = RegistrationDocument.model_validate(source.data)
    except ValidationError as error:
        problems = _pydantic_problems(error, source) + problems
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.field))
        raise DocumentError(problems)
    return doc
