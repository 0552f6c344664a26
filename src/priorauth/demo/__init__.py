"""The demo: request builders and `priorauth demo`; the only code that names a drug."""
