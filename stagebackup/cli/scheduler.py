"""``flask scheduler run``: the process that enqueues scheduled runs (it never runs them)."""

from __future__ import annotations

import logging
import signal
import threading

from flask import current_app
from flask.cli import AppGroup

scheduler_group = AppGroup("scheduler", help="Enqueue jobs at the projects' scheduled times.")


@scheduler_group.command("run")
def run():
    """Enqueue scheduled runs until SIGTERM or Ctrl-C. Start as many as you like: one enqueues, the rest wait."""
    from ..schedule.service import Scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s scheduler[%(process)d] %(levelname)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_args: stop.set())
    Scheduler(current_app._get_current_object()).run(stop)
