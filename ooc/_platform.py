"""What this platform offers the fast paths, checked once, in one place.

Every platform- or allocator-specific trick in ooc asks this module first and
has a portable fallback beside it (plain copies, no buffer pool, no allocator
tuning).  Setting ``OOC_PORTABLE=1`` in the environment forces every fallback,
so the test suite can run once the way a platform without them would.
"""

from __future__ import annotations

import ctypes
import functools
import os
from typing import Any

PORTABLE = os.environ.get("OOC_PORTABLE", "") not in ("", "0")


def _offered(available: bool) -> bool:
    return available and not PORTABLE


# os.register_at_fork: absent on Windows
FORK_HOOK = _offered(hasattr(os, "register_at_fork"))


@functools.cache
def glibc(name: str) -> Any:
    """A function of the already-loaded C library, or None where it lacks it (not glibc).

    ``ctypes.util.find_library`` would fork ``ldconfig`` in every worker.
    """
    if PORTABLE:
        return None
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError, TypeError):
        return None
