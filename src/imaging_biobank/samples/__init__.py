"""The MIABIS individual level from files: donors, samples, events, consent, biomarkers."""
