"""Conformance tests: the Inferno kits' checks and the IG requirements, one folder per IG."""
