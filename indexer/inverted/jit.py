"""numba's ``njit`` with an on-disk cache where one can be written, and without one where none can.

With ``cache=True`` numba stores compiled code beside the module (``__pycache__``), or, where that folder
is read-only (a system site-packages), under ``NUMBA_CACHE_DIR`` if set, else the user's cache folder. If
none of them is writable numba refuses at decoration time; then the kernels are compiled in memory on each
start instead of failing the import.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


def njit(fn: F) -> F:
    """Compile ``fn`` in nopython mode, releasing the GIL, cached on disk when possible."""
    try:
        return cast(F, numba.njit(cache=True, nogil=True)(fn))
    except RuntimeError as err:  # "cannot cache function ...: no locator available"
        log.warning("numba cannot cache %s (%s); compiling it in memory", fn.__qualname__, err)
        return cast(F, numba.njit(cache=False, nogil=True)(fn))
