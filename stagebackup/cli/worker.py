"""``flask worker run``: the job-running process."""

from __future__ import annotations

import logging
import os
import sys

import click
from flask import current_app
from flask.cli import AppGroup

worker_group = AppGroup("worker", help="Run jobs from the queue.")


@worker_group.command("run")
@click.option("--burst", is_flag=True, help="Exit 0 once the queue is empty (for tests and cron).")
@click.option("--drive", default=None, help="Only take jobs for this drive (and jobs that need none).")
def run(burst, drive):
    """Take jobs from the queue and run them, one at a time."""
    from ..jobs.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker[%(process)d] %(levelname)s %(message)s")
    app = current_app._get_current_object()
    if drive is not None and drive not in app.config["DRIVES"]:
        known = ", ".join(sorted(app.config["DRIVES"])) or "none"
        raise click.UsageError(f"unknown drive {drive!r} (configured drives: {known}; see STAGEBACKUP_DRIVES)")
    # The compressing threads (gzip, LZMA2) hold the GIL between their C calls; after each small-file read
    # the main thread waits up to the switch interval to get it back (a "convoy"). When other processes take
    # the cores, Python's default 5 ms made reads of 50,000 small files wait 26 s in all; 0.5 ms removes
    # most of that (on an idle machine it changes nothing measurable).
    sys.setswitchinterval(float(app.config["WORKER_GIL_SWITCH_INTERVAL_S"]))
    _yield_the_cores(app.config["WORKER_NICE"])
    sys.exit(Worker(app, drive=drive, burst=burst).run())


def _yield_the_cores(nice: int) -> None:
    """Jobs run below the web pages' CPU priority (their helpers, pigz and the sync copier, inherit it): when
    jobs and the pages want the cores at the same moment, the pages answer first. A job alone still gets every
    idle cycle, so waiting changes, not throughput: with 50 running jobs and 200 open pages the polls' p99 fell
    from 203-222 ms to 58-109 ms with the jobs' CPU unchanged (docs/performance.md, "Web polling")."""
    if not isinstance(nice, int) or not 0 <= nice <= 19:
        raise SystemExit(f"invalid STAGEBACKUP_WORKER_NICE: {nice!r} (0 to 19; 0 runs jobs at the web's priority)")
    logging.getLogger(__name__).info("jobs run at nice %d", os.nice(nice))
