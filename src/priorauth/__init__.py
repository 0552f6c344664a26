"""priorauth: a prior authorization engine that judges coverage policies from FHIR."""

__version__ = "0.1.0"
