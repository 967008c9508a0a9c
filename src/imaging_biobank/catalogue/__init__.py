"""Looking at a biobank: counts per entity and per collection, one collection in full."""
