"""Engine, sessions and schema management (Alembic) for the case store."""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from priorauth.errors import PriorauthError


class SchemaOutOfDate(PriorauthError, RuntimeError):
    """The database schema is not at the head migration."""


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str) -> Engine:
    # orjson for JSON columns: the stdlib encoder was a tenth of a request's time.
    json_args = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **json_args
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # WAL lets readers and the writer work at once; foreign keys are off by default.
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn):  # type: ignore[no-untyped-def]
            # A transaction that reads and then writes must hold the write lock from the
            # start: otherwise another process's commit in between makes SQLite refuse
            # the write at once (SQLITE_BUSY_SNAPSHOT) instead of waiting its turn.
            # A read-only one (read_sessions) need not: in WAL it waits for no one.
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, pool_size=20, max_overflow=20, **json_args)
    _ping_when_idle(engine)
    return engine


# A pooled connection used this recently is taken as alive (pgbouncer's server_check_delay
# rule): pinging on every checkout cost each request a round trip to the database.
IDLE_BEFORE_PING = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before reuse only if it sat idle a while.

    A dead one (the database restarted) is replaced before the request uses it, as
    `pool_pre_ping` would do. One that died within the last seconds fails its request;
    the pool then replaces every connection older than the failure.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_conn, record):  # type: ignore[no-untyped-def]
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn, record, proxy):  # type: ignore[no-untyped-def]
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_BEFORE_PING:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as e:
            raise DisconnectionError(str(e)) from e
        if not alive:
            raise DisconnectionError("the pooled connection did not answer a ping")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


READ_ONLY = "priorauth_read_only"


def read_sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reading only. On SQLite they do not take the database's one write
    lock (every other transaction does, from its start), so judging an order or a form
    from stored data does not queue behind, or hold up, every writer in every worker."""
    return sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)


def _alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(Path(str(resources.files("priorauth.store"))) / "migrations")
    )
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Bring the schema to the newest migration."""
    command.upgrade(_alembic_config(url), "head")


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(_alembic_config(url)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_schema(engine: Engine) -> None:
    """Raise SchemaOutOfDate unless the database is at the head migration."""
    url = engine.url.render_as_string(hide_password=False)
    head, current = head_revision(url), current_revision(engine)
    if current != head:
        raise SchemaOutOfDate(
            f"the database schema is at {current or 'nothing'}, the code needs {head}: "
            "run `priorauth db upgrade`"
        )
