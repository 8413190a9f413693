"""A backup job's hold on a drive: mount a suitable tape, append at end of data, swap at end of medium.

A tape is suitable when it carries our label, is in the inventory with the same uuid, belongs to the
project's pool, is not full, expired or retired, is not write-protected, and the pool's allocation policy
lets this job write to it (``pools.py``: a new tape per job or per day). At the start of a job an unsuitable
tape is an error with the reason (write-protected, unlabelled, foreign, drive busy…), except a
full tape, one from another pool, or an empty drive. Then, as at end of medium, the job waits
(``waiting_media``, yellow badge, "load a new tape in DRIVE (pool P)") with the drive closed so the operator
can load and label a tape, and polls until one is suitable (``waiting.wait_for_tape``, the loop a restore
waiting for a tape shares): a nightly backup that finds the drive empty waits for the morning, as a Bareos
job waits for its volume, and the "waiting for media" notification says so. A blank or write-protected
tape is a mistake made at the drive: the job fails at once, before compressing, with what to do.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask

from . import media
from .drives import open_drive
from .errors import NoMedium, TapeError, UnknownTape, Unlabelled
from .handle import TapeHandle
from .label import read_label
from .ledger import MediaLedger
from .waiting import MEDIA_POLL_S, wait_for_tape

MIN_FREE_BYTES = 1024 * 1024


class NeedMedia(Exception):
    """The tape in the drive cannot take this job's data; the message says why."""


class DriveSession:
    """Runs on the thread that writes the tape. The media catalog goes through ``ledger``; the job's state
    (waiting for a tape, log lines) goes to ``reporter`` as facts, recorded on the job's own thread."""

    def __init__(self, app: Flask, config: Mapping, *, drive: str, pool: str, job_id: int, reporter,
                 poll_s: float = MEDIA_POLL_S):
        self.config, self.drive, self.pool = config, drive, pool
        self.job_id, self.reporter, self.poll_s = job_id, reporter, poll_s
        self.ledger = MediaLedger(app, config, drive=drive, job_id=job_id)
        self.tape: TapeHandle | None = None
        self.label: dict | None = None
        self.tape_id: int | None = None
        self.next_file = 0
        self.used_labels: list[str] = []

    # -- mounting ----------------------------------------------------------------------------------
    def ensure_ready(self) -> None:
        if self.tape is not None:
            return
        try:
            self._mount(exclude=())
        except (NeedMedia, NoMedium) as why:  # an empty drive: wait for the operator, as for a full tape
            self.wait_for_media(str(why))

    def _mount(self, exclude) -> None:
        tape = open_drive(self.config, self.drive, write=True)
        try:
            label = read_label(tape, self.drive)
            if label is None:
                raise Unlabelled(self.drive)
            tape_id = self._check_suitable(label, exclude)
            next_file = tape.space_to_end_of_data()
            lost_from = self.ledger.reconcile(tape_id, next_file)
            if lost_from is not None:
                raise TapeError(self.drive, f"tape {label['label']} ends before file {lost_from} that the catalog "
                                            "lists: it was overwritten or is damaged; check it with "
                                            f"`flask tape scan {self.drive}`")
            self.ledger.drive_seen(status=tape.status(), label=label["label"], busy=True,
                                   message=f"job #{self.job_id} writing")
        except BaseException:
            tape.close()
            raise
        self.tape, self.label, self.tape_id, self.next_file = tape, label, tape_id, next_file
        if label["label"] not in self.used_labels:
            self.used_labels.append(label["label"])
        self.reporter.log("INFO", f"tape {label['label']} mounted in {self.drive}; appending as file {next_file}")

    def _check_suitable(self, label: dict, exclude) -> int:
        """The inventory row's id when this tape may take the job's data; NeedMedia or TapeError if not."""
        row = self.ledger.tape(label["label"])
        if row is None or row.uuid != label["uuid"]:
            raise UnknownTape(label["label"], f": run `flask tape scan {self.drive}` to add it")
        if row.state == media.EXPIRED:
            raise NeedMedia(f"tape {row.label} is expired: label it again (into pool {self.pool}) to reuse it")
        if row.state != media.LABELLED or label["label"] in exclude:
            raise NeedMedia(f"tape {row.label} is {row.state if row.state != 'labelled' else 'full'}")
        if row.pool != self.pool:
            raise NeedMedia(f"tape {row.label} belongs to pool {row.pool}, not {self.pool}")
        if row.capacity_bytes and row.capacity_bytes - row.bytes_used < MIN_FREE_BYTES:
            raise NeedMedia(f"tape {row.label} is full")
        refusal = self.ledger.allocation_refusal(row.id, self.pool)
        if refusal is not None:
            raise NeedMedia(f"tape {row.label}: {refusal}")
        return row.id

    def release(self, message: str | None = None) -> None:
        tape, self.tape = self.tape, None
        if tape is None:
            return
        try:
            status = tape.status()
        finally:
            tape.close()
        self.ledger.drive_seen(status=status, label=self.label and self.label["label"], busy=False, message=message)

    # -- end of medium -----------------------------------------------------------------------------
    def mark_full(self) -> None:
        self.ledger.mark_full(self.tape_id)

    def wait_for_media(self, reason: str) -> None:
        """Block until a suitable tape is mounted; the job shows waiting_media meanwhile."""
        wait_for_tape(self.reporter, lambda: self._mount(exclude=self.used_labels[-1:]),
                      prompt=f"load a new tape in {self.drive} (pool {self.pool})", reason=reason,
                      retry_on=(TapeError, NeedMedia), poll_s=self.poll_s,
                      ready=lambda _mounted: f"tape {self.label['label']} loaded: continuing",
                      on_prompt=self._drive_prompt)

    def _drive_prompt(self, message: str) -> None:
        self.ledger.drive_seen(busy=False, message=message, keep_label=True)
