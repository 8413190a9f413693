"""The scheduler process's courier thread: delivers the outbox and runs the stale check.

It runs beside the scheduler's loop, not in it, so a slow mail server never delays the lease's renewal; and
only while this scheduler holds the lease, so several schedulers never send a message twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db
from . import delivery, stale

log = logging.getLogger(__name__)


class Courier:
    def __init__(self, app: Flask, holding: Callable[[], bool]):
        self.app = app
        self.holding = holding
        self.poll_s = float(app.config["NOTIFY_POLL_INTERVAL_S"])
        self.stale_every_s = float(app.config["NOTIFY_STALE_CHECK_S"])
        self._stale_at = float("-inf")

    def tick(self) -> None:
        """One round: the stale check when due, then whatever the outbox has due."""
        if not self.holding():
            return
        try:
            if time.monotonic() - self._stale_at >= self.stale_every_s:
                self._stale_at = time.monotonic()
                queued = stale.check()
                if queued:
                    log.info("%s project(s) without a good backup for too long: notifications queued", queued)
            delivery.deliver_due()
        except SQLAlchemyError:
            log.exception("notifications: database error; trying again")
        except Exception:  # noqa: BLE001 - the courier thread must outlive any one bad round
            log.exception("notifications: unexpected error; trying again")
        finally:
            db.session.rollback()

    def run(self, stop: threading.Event) -> None:
        with self.app.app_context():
            while not stop.is_set():
                self.tick()
                stop.wait(self.poll_s)
            db.session.remove()

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="notify-courier", daemon=True)
        thread.start()
        return thread
