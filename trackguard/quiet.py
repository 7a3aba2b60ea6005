"""Send native libraries' stderr chatter to a log file for the length of a block.

libmpg123 (inside libsndfile) prints a line for every slightly malformed MP3
frame straight to file descriptor 2, which Python cannot filter. The demo
routes fd 2 to a log file while it runs, then restores it, so a user sees the
summary rather than hundreds of decoder notes; the log keeps them.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def native_stderr_to(log_path: Path) -> Iterator[Path]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with log_path.open("ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield log_path
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
