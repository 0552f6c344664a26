"""Da Vinci PAS wire formats: request keys, ClaimResponse, OperationOutcome, Subscriptions."""
