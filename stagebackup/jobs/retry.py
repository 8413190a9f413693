"""Retry policy: a pure function of (error, attempts). Only errors known to be transient retry."""

from __future__ import annotations

import errno

# A busy drive, a NAS that timed out or dropped the connection: worth another try later.
TRANSIENT_ERRNOS = frozenset({
    errno.EBUSY, errno.EAGAIN, errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNABORTED,
    errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ESTALE,
})
BASE_DELAY_S = 30.0
MAX_DELAY_S = 900.0


def is_transient(error: BaseException) -> bool:
    if getattr(error, "transient", False):
        return True
    seen = set()
    while error is not None and id(error) not in seen:  # look through "raise X from OSError"
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in TRANSIENT_ERRNOS:
            return True
        error = error.__cause__
    return False


def retry_delay_s(error: BaseException, attempts: int, max_attempts: int) -> float | None:
    """Seconds to wait before the next attempt, or None to fail now. ``attempts`` counts the failed one."""
    if attempts >= max_attempts or not is_transient(error):
        return None
    return min(BASE_DELAY_S * 2 ** (attempts - 1), MAX_DELAY_S)
