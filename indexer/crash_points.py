"""Named moments of a build at which a test can kill the process, so kill safety is tested deterministically.

`crash_point(name)` does nothing unless the environment variable ``SEARCHREC_CRASH_AT`` holds `name`; then
the process kills itself with SIGKILL right there, as an operator's `kill -9` or the OOM killer would. The
build calls it at the start of every stage (``build:<stage>``) and at each step of publishing a version
(``version:*``, ``publish:*``, ``prune:*``); `tests/indexer/test_build_kill.py` kills a build at each one.
"""

from __future__ import annotations

import os
import signal

CRASH_AT_ENV = "SEARCHREC_CRASH_AT"


def crash_point(name: str) -> None:
    """SIGKILL this process when ``SEARCHREC_CRASH_AT`` names this point; otherwise nothing."""
    if os.environ.get(CRASH_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
