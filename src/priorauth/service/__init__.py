"""Use cases that tie intake, engine and store together: submit, inquire, decide, notify."""
