"""Clinical Variable Collections: e-form definitions (REDCap data dictionaries) and records."""
