"""De-identification: keyed pseudonyms for donors (and, later, the PS3.15 profile)."""
