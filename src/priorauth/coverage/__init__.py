"""What CRD and DTR share: coverage assertions, order bundles, what-if judging (the judging
itself is the one pipeline of policies.judging)."""
