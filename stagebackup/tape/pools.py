"""Tape pools: how long a pool's files are kept and which of its tapes a backup may write to.

A pool is named by the tapes labelled into it and the projects that write to it; a ``tape_pools`` row
only sets its policy. Without one a pool keeps its files forever and appends to its current tape.

Allocation policies:

- ``append``: a backup appends to any appendable tape of the pool (the tape loaded, if it fits);
- ``job``: every backup starts on a tape with no other job's data (a blank tape of the pool, or an
  expired one labelled into it again);
- ``day``: backups of one day share a tape; the first backup of a new day needs a tape with no data of
  another day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from ..errors import N_, ConflictError, ValidationError
from ..extensions import db
from ..models import Project
from ..tape_models import Tape, TapeFile, TapePool

APPEND, PER_JOB, PER_DAY = "append", "job", "day"
ALLOCATIONS = (APPEND, PER_JOB, PER_DAY)
DEFAULT_POOL = "default"
MAX_RETENTION_DAYS = 100 * 366


@dataclass(frozen=True)
class PoolPolicy:
    name: str
    retention_days: int | None = None
    allocation: str = APPEND
    defined: bool = False  # False: no tape_pools row, the defaults apply

    def to_dict(self) -> dict:
        return {"name": self.name, "retention_days": self.retention_days, "allocation": self.allocation,
                "defined": self.defined}


def _policy(row: TapePool) -> PoolPolicy:
    return PoolPolicy(row.name, row.retention_days, row.allocation, True)


def policy(name: str | None) -> PoolPolicy:
    row = db.session.get(TapePool, name or DEFAULT_POOL)
    return _policy(row) if row is not None else PoolPolicy(name or DEFAULT_POOL)


def all_policies() -> list[PoolPolicy]:
    """Every pool: the defined ones and those only a tape or a project names, by name."""
    defined = {row.name: _policy(row) for row in db.session.scalars(select(TapePool))}
    named = set(db.session.scalars(select(Tape.pool).distinct()))
    named |= {p for p in db.session.scalars(select(Project.dest_pool).distinct()) if p}
    for name in named - defined.keys():
        defined[name] = PoolPolicy(name)
    return [defined[name] for name in sorted(defined)]


def _check(name: str, retention_days: int | None, allocation: str | None) -> str:
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise ValidationError(N_("the tape pool name must be 1 to 64 characters"), field="name")
    if retention_days is not None and not 1 <= retention_days <= MAX_RETENTION_DAYS:
        raise ValidationError(N_("retention must be 1 to %(max)s days, or none"), field="retention_days",
                              max=MAX_RETENTION_DAYS)
    if allocation is not None and allocation not in ALLOCATIONS:
        raise ValidationError(N_("allocation must be one of %(choices)s"), field="allocation",
                              choices=", ".join(ALLOCATIONS))
    return name


def create(name: str, *, retention_days: int | None = None, allocation: str = APPEND) -> PoolPolicy:
    name = _check(name, retention_days, allocation)
    if db.session.get(TapePool, name) is not None:
        raise ConflictError(N_("tape pool %(name)s already exists"), field="name", name=name)
    row = TapePool(name=name, retention_days=retention_days, allocation=allocation)
    db.session.add(row)
    db.session.flush()
    return _policy(row)


def update(name: str, *, retention_days: int | None | str = "keep", allocation: str | None = None) -> PoolPolicy:
    """Change a pool's policy (a pool only tapes or projects named gets its row now); ``"keep"`` leaves
    the retention as it is, None makes files never expire."""
    kept = retention_days == "keep"
    name = _check(name, None if kept else retention_days, allocation)
    row = db.session.get(TapePool, name)
    if row is None:
        row = TapePool(name=name, allocation=APPEND)
        db.session.add(row)
    if not kept:
        row.retention_days = retention_days
    if allocation is not None:
        row.allocation = allocation
    db.session.flush()
    return _policy(row)


def _day(at: datetime):
    """A stored (naive UTC) time's day in the server's time zone: "per day" is the operator's day."""
    return at.replace(tzinfo=UTC).astimezone().date()


def refusal(tape_id: int, pool: PoolPolicy, job_id: int, now: datetime) -> str | None:
    """Why the pool's allocation policy keeps this job off this tape (English, for the job log), or None."""
    if pool.allocation == APPEND:
        return None
    data = db.session.execute(select(TapeFile.job_id, TapeFile.written_at).where(
        TapeFile.tape_id == tape_id, TapeFile.kind != "label", TapeFile.void.is_(False))).all()
    if pool.allocation == PER_JOB:
        others = sorted({job for job, _ in data if job != job_id})
        if others:
            return f"pool {pool.name} takes a new tape for each job and this tape holds job #{others[0]}"
        return None
    if any(_day(at) != _day(now) for _, at in data):
        return f"pool {pool.name} takes a new tape each day and this tape holds data of an earlier day"
    return None
