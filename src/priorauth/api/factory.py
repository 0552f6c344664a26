"""Build the application from the environment: what `priorauth serve` runs in each worker."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from priorauth.api.app import create_app
from priorauth.observability import configure as configure_logging
from priorauth.policies import builtin
from priorauth.service.app_service import PriorAuthService
from priorauth.settings import Settings
from priorauth.store.db import check_schema, make_engine


def app_from_env() -> FastAPI:
    configure_logging()
    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    check_schema(engine)
    app = create_app(PriorAuthService(settings, engine, builtin()))
    _warm_up()
    # Everything loaded so far lives for the whole process: keep it out of the
    # collector's way, and collect young objects less often (FHIR validation
    # allocates thousands per request), which removes most latency spikes.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    return app


def _warm_up() -> None:
    """Load the FHIR models once before serving, so no request pays for their imports.

    warm-up-bundle.json holds one resource of each type a PAS request carries, for no
    service any policy covers: reading and validating it loads what a request needs.
    """
    from importlib import resources

    import orjson

    from priorauth.intake.pas_bundle import read_bundle, validate_bundle

    raw = (resources.files("priorauth.api") / "warm-up-bundle.json").read_bytes()
    validate_bundle(orjson.loads(raw))
    read_bundle(raw)
