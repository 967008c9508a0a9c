"""Registering biobanks, their collections and studies from a YAML description."""

from __future__ import annotations

from sqlalchemy.orm import Session

from imaging_biobank.register.parse import DocumentError, parse_document
from imaging_biobank.register.writer import (
    RegisterReport,
    RegistrationConflictError,
    write_document,
)
from imaging_biobank.yaml_lines import Problem

__all__ = [
    "DocumentError",
    "Problem",
    "RegisterReport",
    "RegistrationConflictError",
    "register",
]


def register(session: Session, text: str, name: str) -> RegisterReport:
    """Validate a registration YAML and upsert it in ``session``'s transaction.

    Raises ``DocumentError`` (with every problem and its line) before anything is written.
    """
    document = parse_document(text, name)
    return write_document(session, document)
