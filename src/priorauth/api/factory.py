"""Build the application from the environment: what `priorauth serve` runs in each worker."""

from __future__ import annotations

import gc
import os
import sys

from fastapi import FastAPI
from sqlalchemy import Engine

from priorauth.api.app import create_app
from priorauth.observability import configure as configure_logging
from priorauth.policies import configured
from priorauth.service.app_service import PriorAuthService
from priorauth.service.preflight import preflight, refusals
from priorauth.settings import Settings
from priorauth.store.db import check_schema, make_engine


def app_from_env() -> FastAPI:
    configure_logging()
    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    check_schema(engine)
    refuse_unsafe(settings, engine)
    app = create_app(PriorAuthService(settings, engine, configured()))
    _warm_up()
    # Everything loaded so far lives for the whole process: keep it out of the
    # collector's way, and collect young objects less often (FHIR validation
    # allocates thousands per request), which removes most latency spikes.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    return app


def refuse_unsafe(settings: Settings, engine: Engine) -> None:
    """Plain `uvicorn` bypasses `priorauth serve`: refuse the same unsafe configurations here.

    The worker count is known when uvicorn takes it from WEB_CONCURRENCY; `--workers N` on
    uvicorn's command line is invisible to the application (docs/deploy.md says so).
    """
    try:
        workers = int(os.environ.get("WEB_CONCURRENCY", "1") or 1)
    except ValueError:
        workers = 1
    refused = refusals(preflight(settings, engine, workers))
    for f in refused:
        sys.stderr.write(f"priorauth: error: refusing to start: {f.check}: {f.message}\n")
    if refused:
        raise SystemExit(2)


def _warm_up() -> None:
    """Load the FHIR models once before serving, so no request pays for their imports.

    warm-up-bundle.json holds one resource of each type a PAS request carries, for no
    service any policy covers: reading and validating it loads what a request needs.
    """
    from importlib import resources

    from priorauth.intake.pas_bundle import read_bundle

    raw = (resources.files("priorauth.api") / "warm-up-bundle.json").read_bytes()
    read_bundle(raw, validate=True)  # one decode, validated and read as a request is
