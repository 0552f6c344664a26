"""Coverage Requirements Discovery (Da Vinci CRD STU 2, CDS Hooks 2.0) for the loaded policies."""
