"""Coverage assertions and the judging CRD and DTR share: order → facts → policy → evaluation."""
