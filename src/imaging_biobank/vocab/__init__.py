"""Controlled vocabularies as versioned data files, their lookups and identifier rules (pure)."""
