"""Intake adapters: turn PAS request bundles and claims-history NDJSON into Facts."""
