"""`python -m priorauth` runs the command line."""

from priorauth.cli.main import run

run()
