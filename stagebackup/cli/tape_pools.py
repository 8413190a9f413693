"""``flask tape pools|recycle|erase``: pool policies, expired tapes and their reuse. The rules are in
``stagebackup.tape.pools`` and ``stagebackup.tape.recycle``."""

from __future__ import annotations

import click
from flask import current_app

from .. import audit
from ..extensions import db
from ..tape import admin, pools, recycle
from .common import NAME, actor, echo_json, operator_errors
from .tape import resolve_drive, tape_group

RETENTION_DAYS = click.IntRange(0, pools.MAX_RETENTION_DAYS)
ALLOCATION = click.Choice(pools.ALLOCATIONS)


@tape_group.group("pools")
def pools_group():
    """Tape pools: retention period and allocation policy."""


def _describe(pool: pools.PoolPolicy) -> str:
    kept = f"{pool.retention_days} day(s)" if pool.retention_days else "forever"
    note = "" if pool.defined else "  (defaults)"
    return f"{pool.name:<16} keep {kept:<14} allocation {pool.allocation}{note}"


@pools_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_pools(as_json):
    """Every pool: those defined and those a tape or project names (with the defaults)."""
    found = pools.all_policies()
    if as_json:
        echo_json([p.to_dict() for p in found])
        return
    for pool in found:
        click.echo(_describe(pool))


def _retention(days: int | None) -> int | None:
    return days or None  # 0: never expire


@pools_group.command("create")
@click.argument("name", type=NAME)
@click.option("--retention-days", type=RETENTION_DAYS, default=0, show_default=True,
              help="Days a tape file is kept after it was written (0: forever).")
@click.option("--allocation", type=ALLOCATION, default=pools.APPEND, show_default=True,
              help="append: to the current tape; job: a new tape per job; day: a new tape per day.")
@operator_errors
def create_pool(name, retention_days, allocation):
    """Define pool NAME."""
    pool = pools.create(name, retention_days=_retention(retention_days), allocation=allocation)
    audit.record(actor(), "tape.pool_create", pool.name, details=pool.to_dict())
    db.session.commit()
    click.echo(_describe(pool))


@pools_group.command("set")
@click.argument("name", type=NAME)
@click.option("--retention-days", type=RETENTION_DAYS, default=None, help="Days kept (0: forever).")
@click.option("--allocation", type=ALLOCATION, default=None)
@operator_errors
def set_pool(name, retention_days, allocation):
    """Change pool NAME's retention or allocation (a pool named only by tapes or projects is defined now)."""
    if retention_days is None and allocation is None:
        raise click.UsageError("give --retention-days or --allocation")
    pool = pools.update(name, retention_days="keep" if retention_days is None else _retention(retention_days),
                        allocation=allocation)
    audit.record(actor(), "tape.pool_set", pool.name, details=pool.to_dict())
    db.session.commit()
    click.echo(_describe(pool))


@tape_group.command("recycle")
@click.option("--dry-run", is_flag=True, help="List the tapes that would be marked expired; change nothing.")
@click.option("--json", "as_json", is_flag=True)
def recycle_tapes(dry_run, as_json):
    """Mark tapes whose every file has expired as expired, and list every tape that may be reused."""
    newly = recycle.recycle(actor=actor(), dry_run=dry_run)
    expired = [tape for tape, marked in recycle.reusable() if marked]
    reusable = sorted({t.id: t for t in newly + expired}.values(), key=lambda t: (t.pool, t.label))
    if as_json:
        echo_json({"dry_run": dry_run, "newly_expired": [t.label for t in newly],
                   "reusable": [{"label": t.label, "pool": t.pool} for t in reusable]})
        return
    verb = "would mark" if dry_run else "marked"
    click.echo(f"{verb} {len(newly)} tape(s) expired" + (f": {', '.join(t.label for t in newly)}" if newly else ""))
    for tape in reusable:
        click.echo(f"reusable: {tape.label:<12} pool {tape.pool}")


@tape_group.command("erase")
@click.argument("drive", type=NAME)
@click.option("--confirm", "confirm", required=True, metavar="LABEL",
              help="The label of the tape in DRIVE: it is erased only when this matches.")
@operator_errors
def erase(drive, confirm):
    """Erase the expired tape in DRIVE (a virtual cartridge is truncated; a real tape gets MTERASE)."""
    drive = resolve_drive(drive)
    erased = admin.erase(current_app.config, drive, confirm=confirm, actor=actor())
    audit.record(actor(), "tape.erase", erased["label"], details={"drive": drive, "pool": erased["pool"]})
    db.session.commit()
    click.echo(f"tape {erased['label']} in {drive} erased: it is blank")
