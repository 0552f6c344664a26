"""The `priorauth` command line (Typer + Rich)."""
