"""Versioned schemas in PostgreSQL, owned by the code: each component (the article store, the
bot's state) records its version in ``newsbot_schema`` and is brought up to date in steps.

Several processes may start at once (a worker and two replicas): the steps run under one
advisory lock, in one transaction, so each is applied exactly once or not at all. A
database written by a newer newsbot is refused rather than misread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from corpus.errors import ConfigurationError

__all__ = ["advisory_lock", "apply_migrations", "describe", "schema_version"]

# (version it brings the component to, its statements), in ascending order.
Migration = tuple[int, Sequence[str]]


def advisory_lock(conn: psycopg.Connection[Any], name: str) -> None:
    """Wait for the advisory lock called ``name``; the transaction's end releases it.

    Names are hashed to 64 bits by the server (``hashtextextended``), the same everywhere.
    """
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [name])


def describe(conn: psycopg.Connection[Any]) -> str:
    """The database as a message names it: never its password."""
    info = conn.info
    return f"the PostgreSQL database {info.dbname!r} on {info.host}:{info.port}"


def schema_version(conn: psycopg.Connection[Any], component: str) -> int:
    """The version of ``component`` in this database; 0 when it has none yet."""
    table = conn.execute("SELECT to_regclass('newsbot_schema')").fetchone()
    if table is None or table[0] is None:
        return 0
    row = conn.execute(
        "SELECT version FROM newsbot_schema WHERE component = %s", [component]
    ).fetchone()
    return int(row[0]) if row else 0


def apply_migrations(
    conn: psycopg.Connection[Any], component: str, migrations: Sequence[Migration]
) -> tuple[int, int]:
    """Bring ``component`` to its newest version; return (version before, version after).

    ``conn`` must be in autocommit mode: the steps run in a transaction of their own.
    """
    newest = migrations[-1][0]
    with conn.transaction():
        # Processes starting together take turns here, so every step runs exactly once.
        advisory_lock(conn, "newsbot_schema")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS newsbot_schema"
            " (component text PRIMARY KEY, version integer NOT NULL)"
        )
        before = schema_version(conn, component)
        if before > newest:
            raise ConfigurationError(
                f"{describe(conn)} was written by a newer newsbot ({component} schema version "
                f"{before}, this one knows up to {newest}); upgrade newsbot to use it."
            )
        for version, statements in migrations:
            if version <= before:
                continue
            try:
                for statement in statements:
                    conn.execute(statement)
            except psycopg.errors.DuplicateTable as e:
                raise ConfigurationError(
                    f"{describe(conn)} already has a table newsbot did not make "
                    f"({e.diag.message_primary}); give newsbot a database of its own."
                ) from e
        conn.execute(
            "INSERT INTO newsbot_schema VALUES (%s, %s)"
            " ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version",
            [component, newest],
        )
    return before, newest
