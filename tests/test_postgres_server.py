"""The tests' own PostgreSQL: a streaming replica follows it, and a failed start says why."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest
from psycopg import sql

from .postgres_server import PostgresServer, PostgresServerError


def test_a_replica_follows_the_primary_and_refuses_writes(postgres_server):
    table = sql.Identifier(f"replicated_{uuid.uuid4().hex}")
    with psycopg.connect(postgres_server.url, autocommit=True) as primary:
        primary.execute(sql.SQL("CREATE TABLE {} (note text)").format(table))
        replica = postgres_server.replica()
        try:
            primary.execute(sql.SQL("INSERT INTO {} VALUES ('hello')").format(table))
            with psycopg.connect(replica.url, autocommit=True) as standby:
                select = sql.SQL("SELECT note FROM {}").format(table)
                deadline = time.monotonic() + 10
                while (rows := standby.execute(select).fetchall()) == []:
                    assert time.monotonic() < deadline, "the row never reached the replica"
                    time.sleep(0.05)
                assert rows == [("hello",)]
                with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                    standby.execute(sql.SQL("INSERT INTO {} VALUES ('no')").format(table))
        finally:
            replica.stop()
            primary.execute(sql.SQL("DROP TABLE {}").format(table))
    assert not replica.data_dir.exists()


def test_a_server_that_cannot_start_shows_the_end_of_its_log():
    server = PostgresServer().start()
    server.stop(keep_data=True)
    with (server.data_dir / "postgresql.conf").open("a") as conf:
        conf.write("shared_buffers = plenty\n")
    try:
        with pytest.raises(PostgresServerError, match="pg_ctl failed") as failed:
            server.start()
        assert 'invalid value for parameter "shared_buffers"' in str(failed.value)
    finally:
        server.stop()
    assert not server.data_dir.exists()
