"""Test databases: migrated once per test process, handed to each test clean.

Running every Alembic migration costs about a second a test; 650 database tests did it
650 times. Instead each test process (each xdist worker) migrates once:

- SQLite: a template file, copied for each test (a file copy is a millisecond).
- PostgreSQL: a schema of this process's own, emptied before each test with one TRUNCATE
  (the audit guards suspended for it) and the rows the migrations seed put back. A test that
  changed the schema itself (dropped a guard, migrated from nothing) is noticed by a catalog
  fingerprint, and the schema is built again from the migrations for the next test.

`blank` gives a database with nothing in it, for the tests of the migrations themselves.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from priorauth.store.db import upgrade

PG_ENV = "PRIORAUTH_TEST_DATABASE_URL"

# Everything a test could change about the schema's shape: relations and their columns,
# triggers (and whether they are enabled), constraints, functions, the Alembic revision.
_FINGERPRINT = """
SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) FROM (
  SELECT c.relname || ':' || c.relkind::text AS x
    FROM pg_class c WHERE c.relnamespace = to_regnamespace(:s)
  UNION ALL
  SELECT c.relname || '.' || a.attname || ':' || a.atttypid::text || ':' || a.attnotnull::text
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
   WHERE c.relnamespace = to_regnamespace(:s) AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT c.relname || '!' || t.tgname || ':' || t.tgenabled::text
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
   WHERE c.relnamespace = to_regnamespace(:s)
  UNION ALL
  SELECT 'constraint ' || conname FROM pg_constraint WHERE connamespace = to_regnamespace(:s)
  UNION ALL
  SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = to_regnamespace(:s)
) parts
"""


class PostgresSchema:
    """This process's schema on the test server: migrated once, emptied per test."""

    def __init__(self, server_url: str) -> None:
        self.name = f"priorauth_test_{os.getpid()}"
        sep = "&" if "?" in server_url else "?"
        self.url = f"{server_url}{sep}options=-csearch_path%3D{self.name}"
        self._admin: Engine = create_engine(server_url)
        self._fingerprint = ""
        self._tables: list[str] = []
        self._seed: dict[str, str] = {}  # table -> its migrated rows as JSON
        self._sequences: dict[str, int] = {}
        self._build()

    def _build(self) -> None:
        self._create_empty()
        upgrade(self.url)
        with self._admin.connect() as conn:
            self._fingerprint = self._fingerprint_of(conn)
            self._tables = list(
                conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = :s"
                        " AND tablename <> 'alembic_version' ORDER BY tablename"
                    ),
                    {"s": self.name},
                ).scalars()
            )
            self._seed = {}
            for table in self._tables:
                rows = conn.execute(
                    text(f"SELECT json_agg(t)::text FROM {self.name}.{table} t")
                ).scalar()
                if rows is not None:
                    self._seed[table] = rows
            self._sequences = {
                name: int(value)
                for name, value in conn.execute(
                    text(
                        "SELECT sequencename, last_value FROM pg_sequences"
                        " WHERE schemaname = :s AND last_value IS NOT NULL"
                    ),
                    {"s": self.name},
                )
            }

    def _create_empty(self) -> None:
        with self._admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {self.name} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {self.name}"))

    def _fingerprint_of(self, conn: Connection) -> str:
        if conn.execute(text("SELECT to_regnamespace(:s)"), {"s": self.name}).scalar() is None:
            return ""
        return str(conn.execute(text(_FINGERPRINT), {"s": self.name}).scalar())

    def clean(self) -> str:
        """The schema at the newest migration with only the migrations' own rows."""
        with self._admin.begin() as conn:
            if self._fingerprint_of(conn) != self._fingerprint:
                rebuild = True
            else:
                rebuild = False
                # A connection a test left open in a transaction would block the TRUNCATE:
                # fail loudly rather than hang.
                conn.execute(text("SET LOCAL lock_timeout = '60s'"))
                # The audit tables refuse TRUNCATE by trigger; replica mode suspends
                # triggers for this transaction only.
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                tables = ", ".join(f"{self.name}.{t}" for t in self._tables)
                conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                for table, rows in self._seed.items():
                    conn.execute(
                        text(
                            f"INSERT INTO {self.name}.{table} SELECT * FROM"
                            f" json_populate_recordset(NULL::{self.name}.{table}, :rows)"
                        ),
                        {"rows": rows},
                    )
                for seq, value in self._sequences.items():
                    conn.execute(text(f"SELECT setval('{self.name}.{seq}', {value})"))
        if rebuild:
            self._build()
        return self.url

    def blank(self) -> str:
        """The schema with nothing in it; the next `clean` builds it again if need be."""
        self._create_empty()
        return self.url

    def drop(self) -> None:
        with self._admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {self.name} CASCADE"))
        self._admin.dispose()


class SqliteTemplate:
    """A migrated SQLite file; each test gets a copy."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "template.db"
        upgrade(f"sqlite:///{self.path}")
        # Fold the write-ahead log into the file so that one file is the whole database.
        conn = sqlite3.connect(self.path)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode=DELETE")
        finally:
            conn.close()

    def copy(self, folder: Path) -> str:
        target = folder / "priorauth.db"
        shutil.copyfile(self.path, target)
        return f"sqlite:///{target}"


class Databases:
    """This test process's databases, each made on its first use."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._sqlite: SqliteTemplate | None = None
        self._pg: PostgresSchema | None = None
        self._pg_skip = ""

    def migrated(self, kind: str, tmp_path: Path) -> str:
        """A database at the newest migration holding only what the migrations put there."""
        if kind == "sqlite":
            if self._sqlite is None:
                self._sqlite = SqliteTemplate(self._folder)
            return self._sqlite.copy(tmp_path)
        return self._postgres().clean()

    def blank(self, kind: str, tmp_path: Path) -> str:
        """A database with nothing in it, not even the migrations' bookkeeping."""
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / 'priorauth.db'}"
        return self._postgres().blank()

    def _postgres(self) -> PostgresSchema:
        if self._pg is not None:
            return self._pg
        url = os.environ.get(PG_ENV)
        if not url:
            pytest.skip(f"{PG_ENV} is not set: the PostgreSQL variant is skipped")
        if self._pg_skip:
            pytest.skip(self._pg_skip)
        try:
            self._pg = PostgresSchema(url)
        except ModuleNotFoundError as e:  # asked for PostgreSQL: a missing driver must not skip
            pytest.fail(f"{PG_ENV} is set but {e.name} is not installed: uv sync --extra postgres")
        except OperationalError as e:  # the server is down or refuses us
            self._pg_skip = f"PostgreSQL at {PG_ENV} is not reachable: {type(e).__name__}"
            pytest.skip(self._pg_skip)
        return self._pg

    def close(self) -> None:
        if self._pg is not None:
            self._pg.drop()
