"""Runs ``newsbot ingest`` in forked children of one warmed-up interpreter (crash tests).

Importing sentence-transformers takes about 8 s on 2 cores, so starting ``python -m bot
ingest`` a dozen times would spend two minutes on imports. This script imports once, then
for each line ``<log file>\\t<arg>\\t<arg>…`` on stdin forks a child that runs the real
command-line entry point (``bot.cli.main``, as ``python -m bot`` does: it loads the packaged
model and ingests) with its output in the log file. It prints ``pid <n>`` at once and
``exit <code>`` when the child ends (``exit -9`` if it was SIGKILLed). Nothing has run
torch before the fork, so its thread pools start fresh in each child.
"""

from __future__ import annotations

import os
import sys

import bm25s  # noqa: F401  the heavy imports `newsbot ingest` makes
import faiss  # noqa: F401
import sentence_transformers  # noqa: F401
import trafilatura  # noqa: F401

from bot.cli import main


def _child(log: str, args: list[str]) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.argv = ["newsbot", *args]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 70
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve() -> None:
    print("ready", flush=True)
    for line in sys.stdin:
        log, *args = line.rstrip("\n").split("\t")
        pid = os.fork()
        if pid == 0:
            _child(log, args)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)


if __name__ == "__main__":
    serve()
