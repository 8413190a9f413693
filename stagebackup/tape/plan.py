"""The tape plan recorded when the scan ends: bytes to write, tapes needed, hours at the drive's rate.

The archive sizes are not known before compressing, so the plan takes the scanned input bytes (an upper
bound for compressible data). Tapes needed: the pool's writable tapes (those its allocation policy lets
this job write to), fullest-free first, then as many blank cartridges of the drive's capacity as the rest needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from sqlalchemy import select

from ..dbtypes import utcnow
from ..errors import human_bytes
from ..extensions import db
from ..tape_models import Tape
from . import pools
from .drives import is_virtual
from .media import LABELLED

DEFAULT_NEW_TAPE_BYTES = 12 * 10**12  # an LTO-8 cartridge, when nothing better is known


def make_plan(config: Mapping, drive: str, pool: str, bytes_to_write: int, job_id: int) -> dict:
    policy, now = pools.policy(pool), utcnow()
    tapes = [t for t in db.session.scalars(select(Tape).where(Tape.pool == pool, Tape.state == LABELLED))
             if pools.refusal(t.id, policy, job_id, now) is None]  # the tapes its allocation lets this job use
    free = sorted((max(0, t.capacity_bytes - t.bytes_used) for t in tapes), reverse=True)
    pool_free = sum(free)
    new_tape = (int(config["VTAPE_CAPACITY_BYTES"]) if is_virtual(config, drive)
                else max((t.capacity_bytes for t in tapes), default=DEFAULT_NEW_TAPE_BYTES))
    remaining, needed = bytes_to_write, 0
    for room in free:
        if remaining <= 0:
            break
        needed += 1
        remaining -= room
    if remaining > 0:
        needed += math.ceil(remaining / max(1, new_tape))
    rate = float(config["TAPE_RATE_BYTES_S"])
    hours = bytes_to_write / rate / 3600 if rate > 0 else 0.0
    summary = (f"tape plan: up to {human_bytes(bytes_to_write)} to write, {needed} tape(s) needed "
               f"(pool {pool} has {human_bytes(pool_free)} free on {len(tapes)} tape(s)), "
               f"about {hours:.1f} h at {human_bytes(rate)}/s")
    return {"bytes": bytes_to_write, "tapes_needed": max(needed, 1 if bytes_to_write else 0),
            "pool": pool, "pool_free_bytes": pool_free, "pool_tapes": len(tapes), "hours": round(hours, 2),
            "rate_bytes_s": rate, "summary": summary}
