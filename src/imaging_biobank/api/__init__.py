"""The REST API (FastAPI, OpenAPI 3): catalogue, cohort queries, e-forms, quality, releases.

Thin: requests are parsed, the services (catalogue, query, clinical, quality) called, their
answers returned. Every route but ``/health`` needs a token; every data access is audited.
"""
