"""Notification targets: an Apprise URL stored encrypted with the master key (like project passwords), shown
back only in Apprise's privacy form, scoped to one project or all, with the events it wants."""

from __future__ import annotations

from sqlalchemy import delete, select

from .. import audit, keys
from ..errors import EXIT_NOT_FOUND, N_, ConflictError, StageBackupError, ValidationError
from ..extensions import db
from ..models import Notification, NotificationTarget, Project, Secret
from ..paths import is_text
from .events import DEFAULT_EVENTS, EVENTS, STALE_EVENT

LANGUAGES = ("zh_CN", "en")
NAME_MAX = 100
DEFAULT_STALE_HOURS = 48


class TargetNotFound(StageBackupError):
    template = N_("no notification target named %(name)s")
    params = ("name",)
    exit_code = EXIT_NOT_FOUND


def _masked(url: str) -> str:
    """The URL with its secrets starred by Apprise, without the query (options, sometimes tokens)."""
    import apprise  # here, as in delivery.send: only the commands and pages that need it load it

    plugin = apprise.Apprise.instantiate(url) if url.isprintable() and is_text(url) else None
    if plugin is None:
        raise ValidationError(N_("Apprise does not understand this URL (see the list of services in "
                                 "docs/configuration.md)"), field="url")
    return plugin.url(privacy=True).split("?", 1)[0][:255]


def _check(name: str, events: list[str], stale_after_hours: int | None, language: str) -> None:
    if not name.strip() or len(name) > NAME_MAX or not is_text(name) or not name.isprintable():
        raise ValidationError(N_("a target needs a name of 1 to %(n)s characters"), field="name", n=NAME_MAX)
    unknown = sorted(set(events) - set(EVENTS))
    if unknown or not events:
        raise ValidationError(N_("unknown or no events: %(events)s (choose from %(known)s)"), field="events",
                              events=", ".join(unknown), known=", ".join(EVENTS))
    if STALE_EVENT in events and not (stale_after_hours and stale_after_hours > 0):
        raise ValidationError(N_("\"no good backup for too long\" needs a number of hours above 0"),
                              field="stale_after_hours")
    if language not in LANGUAGES:
        raise ValidationError(N_("unknown language %(language)s"), field="language", language=language)


def add(name: str, url: str, *, project: Project | None, events: list[str] | None = None,
        stale_after_hours: int | None = None, language: str = "zh_CN", actor: str) -> NotificationTarget:
    """Store a target and its audit row (committed)."""
    events = list(dict.fromkeys(events or DEFAULT_EVENTS))
    if STALE_EVENT in events and stale_after_hours is None:
        stale_after_hours = DEFAULT_STALE_HOURS
    _check(name, events, stale_after_hours, language)
    masked = _masked(url.strip())
    if db.session.scalar(select(NotificationTarget.id).where(NotificationTarget.name == name)) is not None:
        raise ConflictError(N_("a notification target named %(name)s exists already"), name=name)
    target = NotificationTarget(name=name, secret_id=keys.store(url.strip()).id, masked_url=masked,
                                project_id=project.id if project else None, events=events,
                                stale_after_hours=stale_after_hours, language=language)
    db.session.add(target)
    audit.record(actor, "notify.add", name, details={"url": masked, "project": project.name if project else None,
                                                     "events": events})
    db.session.commit()
    return target


def find(name: str) -> NotificationTarget:
    target = db.session.scalar(select(NotificationTarget).where(NotificationTarget.name == name))
    if target is None:
        raise TargetNotFound(name)
    return target


def all_targets() -> list[NotificationTarget]:
    return list(db.session.scalars(select(NotificationTarget).order_by(NotificationTarget.name)))


def remove(name: str, *, actor: str) -> None:
    """The target, its outbox rows and its encrypted URL go together (committed)."""
    target = find(name)
    db.session.execute(delete(Notification).where(Notification.target_id == target.id))
    secret_id = target.secret_id
    db.session.delete(target)
    db.session.flush()
    db.session.execute(delete(Secret).where(Secret.id == secret_id))
    audit.record(actor, "notify.remove", name)
    db.session.commit()


def forget_project(project_id: int) -> None:
    """A project is being removed: its own targets go with it (no commit: the removal's transaction)."""
    for target in db.session.scalars(select(NotificationTarget).where(NotificationTarget.project_id == project_id)):
        db.session.execute(delete(Notification).where(Notification.target_id == target.id))
        db.session.delete(target)


def project_name(target: NotificationTarget) -> str | None:
    """The name of the target's project; None for a global target."""
    return db.session.get(Project, target.project_id).name if target.project_id else None


def url_of(target: NotificationTarget) -> str:
    """The URL in clear, for the courier right before it sends."""
    return keys.reveal(target.secret_id)
