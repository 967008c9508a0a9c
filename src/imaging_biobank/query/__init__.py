"""Cohort queries across images, samples, donors and clinical data: one engine for the
Python API, the CLI and the REST API."""
