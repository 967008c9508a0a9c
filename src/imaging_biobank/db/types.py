"""Column types shared by the ORM model and the generated Core schema."""

from __future__ import annotations

from sqlalchemy import JSON
from sqlalchemy.dialects.postgresql import JSONB

# JSON on SQLite (queryable with json_extract), JSONB on PostgreSQL (indexable, ->> operators).
JSONType = JSON().with_variant(JSONB(), "postgresql")
