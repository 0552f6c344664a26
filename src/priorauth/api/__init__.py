"""The HTTP adapter: FastAPI application, FHIR endpoints and the case API."""
