"""Writes that survive a crash: a file appears whole or not at all, and stays after power loss.

Shared by the index store (manifest, generation directories) and the ONNX model cache
(entries, the record of a failed 8-bit check).
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """Flush a file's or a directory's contents (a directory: the names in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_directory(staging: Path, target: Path) -> None:
    """Rename a fully written ``staging`` directory to ``target``: readers see it whole or
    not at all, and after power loss it is there with everything in it."""
    for path in staging.rglob("*"):
        fsync_path(path)
    fsync_path(staging)  # the names of its entries
    os.rename(staging, target)
    fsync_path(target.parent)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: readers see the old file or the new one, never a part."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)
