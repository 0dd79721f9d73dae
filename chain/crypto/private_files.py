"""Files that hold secrets: created mode 0600 in folders created 0700, written atomically.

Used by the key store and by the node and validator key files. A write either leaves the old
file or the complete new one (temp file in the same folder, fsync, rename, fsync of the folder),
never a torn file, and never a moment where the secret sits in a file others can read.
This module must never create a secret file with a wider mode than 0600.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path


def ensure_private_dir(path: Path, tighten: bool = False) -> None:
    """Creates `path` (and missing parents) with mode 0700 whatever the umask; an existing folder
    keeps its mode unless `tighten`, which sets it to 0700."""
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        if not path.is_dir():
            raise
        if not tighten:
            return
    os.chmod(path, 0o700)


def write_private_file(path: Path, data: bytes, overwrite: bool = True) -> None:
    """Writes `data` to `path` with mode 0600, atomically.

    With `overwrite` False the new file is hard-linked into place instead of renamed, so an
    existing file is never replaced, even by a concurrent writer: FileExistsError.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise
            except OSError as e:  # a filesystem without hard links
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV) or path.exists():
                    raise
                os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Makes a rename or unlink in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
