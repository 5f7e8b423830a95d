"""Ingestion for integrators: the pure edge (``ioc.ingest.edge``) and what the API builds on it."""

from ioc.ingest.edge import Accepted, Problem, Rejected, prepare, prepare_json, prepare_ngsi_ld

__all__ = ["Accepted", "Problem", "Rejected", "prepare", "prepare_json", "prepare_ngsi_ld"]
