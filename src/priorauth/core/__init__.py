"""The pure core: policy model, facts and evaluator. Nothing here does I/O."""
