"""Files replaced atomically: written beside their target, then renamed over it.

A reader (another process, the app, a Beam worker) sees the old file or the whole
new one, never half a file, and a failed or interrupted write leaves no temp file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def replacing(target: Path, *, fsync: bool = False, mode: int | None = None) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``target`` when the block ends without an exception.

    ``fsync``: on disk before the rename (what a crash must not lose); ``mode``: the
    file's permissions (temp files are created 0600). Anything raised inside the
    block (a failed check, say) discards the new file and leaves ``target`` as it was.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            if fsync:
                os.fsync(out.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
