"""Da Vinci PAS wire formats: request keys, ClaimResponse bundles, OperationOutcome, Subscriptions."""
