"""The tapes page's pool actions: set a pool's retention and allocation, and mark expired tapes
(``flask tape pools set`` and ``flask tape recycle``)."""

from __future__ import annotations

from flask import flash, request
from flask_babel import gettext

from ..auth.accounts import web_actor
from ..auth.roles import ADMIN, requires
from ..errors import N_, StageBackupError, ValidationError
from ..tape import pools, recycle
from . import bp
from .actions import MAX_NAME, _back, _done, _field, _refuse


def _retention_days() -> int | None:
    raw = (request.form.get("retention_days") or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 6:
        raise ValidationError(N_("retention must be 1 to %(max)s days, or none"), field="retention_days",
                              max=pools.MAX_RETENTION_DAYS)
    return int(raw) or None


@bp.post("/tapes/pools")
@requires(ADMIN)
def save_pool():
    name = _field("name")[:MAX_NAME + 1]
    try:
        pool = pools.update(name, retention_days=_retention_days(), allocation=_field("allocation") or None)
    except StageBackupError as exc:
        return _refuse(exc)
    return _done("tape.pool_set", pool.name, gettext("已保存磁带池 %(name)s。", name=pool.name), pool.to_dict())


@bp.post("/tapes/recycle")
@requires(ADMIN)
def recycle_tapes():
    """Mark the tapes whose files have all expired (one audit row per tape, written by ``recycle``)."""
    marked = recycle.recycle(actor=web_actor())
    if marked:
        flash(gettext("已标记为过期的磁带：%(labels)s。", labels=", ".join(t.label for t in marked)), "success")
    else:
        flash(gettext("没有新过期的磁带。"), "info")
    return _back()
