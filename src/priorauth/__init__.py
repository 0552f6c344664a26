"""priorauth: a prior authorization engine that judges coverage policies from FHIR."""
