"""CQL conformance: the generated pre-fill Libraries, run by the reference engine."""
