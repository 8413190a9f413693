"""Waiting for the operator to load a tape: the one loop behind a backup that needs a new tape (end of
medium, a full tape) and a restore or verify that needs a given label (an archive spanning tapes).

The job's reporter is told "waiting for a tape" (the job shows ``waiting_media``: the yellow badge, the prompt
on its card and on the drive card) and, once a tape is there, "tape loaded". Between attempts the loop calls
``reporter.checkpoint()`` several times a second, so cancel, a worker stop or the job's own time limit end
the wait. There is no time limit of its own: a tape is often a trip to the safe away. The worker's heartbeat
thread keeps the job alive meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

MEDIA_POLL_S = 2.0
T = TypeVar("T")


def wait_for_tape(reporter, attempt: Callable[[], T], *, prompt: str, reason: str, retry_on: tuple,
                  ready: Callable[[T], str], poll_s: float = MEDIA_POLL_S,
                  on_prompt: Callable[[str], None] | None = None, **fact) -> T:
    """Call ``attempt`` every ``poll_s`` until it returns instead of raising one of ``retry_on``; what it
    returns is returned. ``prompt: reason`` is shown meanwhile (again whenever the reason changes);
    ``fact`` goes with it to the reporter (the stage the prompt sits on, the label wanted)."""

    def announce(why: str) -> None:
        message = f"{prompt}: {why}"
        reporter.waiting_for_media(message, **fact)
        if on_prompt is not None:
            on_prompt(message)

    announce(reason)
    last = reason
    while True:
        deadline = time.monotonic() + poll_s
        while time.monotonic() < deadline:
            reporter.checkpoint()  # cancel and worker stop end the wait here
            time.sleep(min(0.2, poll_s))
        try:
            result = attempt()
        except retry_on as why:
            if str(why) != last:
                last = str(why)
                announce(last)
            continue
        reporter.media_ready(ready(result), **{k: v for k, v in fact.items() if k == "stage"})
        return result
