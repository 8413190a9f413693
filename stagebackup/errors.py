"""Errors an operator can act on.

As in borg, each class carries its message and its exit code; here the message is a gettext template with
named values (``template = N_("… %(name)s …")``) so the same error reads in English on the command line
(``str(error)``) and in the page's language on the web (``error.translate(gettext)``). Positional arguments
fill the names in ``params``, in order. A class without a template of its own takes the template as its
first argument (mark it with ``N_`` at the raise site so the catalogs translate it).

A failed job stores its error's class, English message, template and values: the card translates it.
The CLI exits with ``exit_code``: 2 bad input, 3 not found, 4 conflict, 1 anything else.
"""

from __future__ import annotations

from collections.abc import Callable

EXIT_OTHER, EXIT_BAD_INPUT, EXIT_NOT_FOUND, EXIT_CONFLICT = 1, 2, 3, 4


def N_(template: str) -> str:  # noqa: N802 - the gettext convention, and the keyword `make translations` extracts
    """Marks a message template for extraction; it is translated where it is shown, with its values."""
    return template


class _Lenient(dict):
    """Values for %-formatting that show a missing name as "?" instead of raising while reporting an error."""

    def __missing__(self, key: str) -> str:
        return "?"


def fill(template: str, values: dict | None) -> str:
    """``template % values``; no values, no %-formatting (a plain message may contain a literal "%")."""
    return template % _Lenient(values) if values else template


class StageBackupError(Exception):
    """The base class; on its own it carries a free-form (N_-marked) template and its values."""

    #: The message, English, with ``%(name)s`` placeholders; None: the first argument is the template.
    template: str | None = None
    #: The names that positional arguments fill, in order.
    params: tuple[str, ...] = ()
    exit_code = EXIT_OTHER
    #: Transient errors may be retried by the queue's retry policy (jobs/retry.py).
    transient = False
    #: The web form field the error concerns; None: the form (or page) as a whole.
    field: str | None = None

    def __init__(self, *args, **values):
        super().__init__(*args)
        if self.template is None:
            if not args:
                raise TypeError(f"{type(self).__name__} needs a message template")
            self.template, args = str(args[0]), args[1:]
        if len(args) > len(self.params):
            raise TypeError(f"{type(self).__name__} takes {len(self.params)} values {self.params}, got {args!r}")
        self.values = {**dict(zip(self.params, args, strict=False)), **values}

    def __str__(self) -> str:
        return fill(self.template, self.values)

    def translate(self, gettext: Callable[..., str]) -> str:
        """The message in the page's language: ``gettext(template)`` filled with the values.

        A template missing from the catalogs comes back unchanged: shown in English, nothing lost.
        """
        return translate(gettext, self.template, self.values) or str(self)


def translate(gettext: Callable[..., str], template: str, values: dict | None) -> str | None:
    """``gettext(template)`` filled with ``values``; None when a translation does not fit its values."""
    try:
        return fill(gettext(template), values)
    except (KeyError, ValueError, TypeError):
        return None


class ValidationError(StageBackupError):
    """Bad input: ``ValidationError(N_("… %(name)s …"), field="form_field", name=value)``."""

    template = None  # free-form: each raise site passes its N_ template
    exit_code = EXIT_BAD_INPUT

    def __init__(self, *args, field: str | None = None, **values):
        super().__init__(*args, **values)
        self.field = field


class ValidationErrors(ValidationError):
    """Several bad inputs found at once (a form with more than one wrong field); ``errors`` holds each one,
    with its own field. The message is theirs, joined on one line."""

    template = None  # free-form: built from the errors it holds

    def __init__(self, *args, **values):
        super().__init__(*args, **values)
        self.errors: list[ValidationError] = [self]

    @classmethod
    def of(cls, errors: list[ValidationError]) -> ValidationErrors:
        group = cls(errors[0].template, field=errors[0].field, **errors[0].values)
        group.errors = list(errors)
        group.exit_code = max(error.exit_code for error in errors)
        return group

    def __str__(self) -> str:
        return "; ".join(fill(error.template, error.values) for error in self.errors)

    def translate(self, gettext: Callable[..., str]) -> str:
        return "; ".join(translate(gettext, error.template, error.values) or fill(error.template, error.values)
                         for error in self.errors)


class ErrorCollector:
    """Runs every check and keeps each ValidationError, so a form shows all of them at once:
    ``value = check(func, *args, fallback=...)``, then ``check.raise_any()``."""

    def __init__(self) -> None:
        self.errors: list[ValidationError] = []

    def __call__(self, check, *args, fallback=None, **kwargs):
        try:
            return check(*args, **kwargs)
        except ValidationErrors as exc:
            self.errors.extend(exc.errors)
        except ValidationError as exc:
            self.errors.append(exc)
        return fallback

    def raise_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise ValidationErrors.of(self.errors)


class ConflictError(ValidationError):
    """The input is valid but clashes with the current state (a name taken, an active job)."""

    template = None  # free-form: each raise site passes its N_ template
    exit_code = EXIT_CONFLICT


class ProjectNotFound(ValidationError):
    """A project name that matches no project (a name the operator typed)."""

    template = N_("unknown project: %(name)s")
    params = ("name",)
    exit_code = EXIT_NOT_FOUND


class ProjectRemoved(ProjectNotFound):
    """The project of a queued backup was removed before the backup ran."""

    template = N_("project %(name)s was removed")


class JobNotFound(StageBackupError):
    template = N_("unknown job: %(job_id)s")
    params = ("job_id",)
    exit_code = EXIT_NOT_FOUND


class BackupNotFound(JobNotFound):
    template = N_("unknown job: %(job_id)s (no backup job with this id)")


class AlreadyQueued(StageBackupError):
    template = N_("project %(project)s already has a queued job (#%(job_id)s); it will run first")
    params = ("project", "job_id")
    exit_code = EXIT_CONFLICT


class UnknownJobKind(StageBackupError):
    template = N_("no task runs jobs of kind '%(kind)s' (known kinds: %(known)s)")
    params = ("kind", "known")


class SourceMissing(StageBackupError):
    template = N_("source %(path)s does not exist or is not readable: %(reason)s")
    params = ("path", "reason")


class SourceChanged(StageBackupError):
    """A source root disappeared or was replaced while it was scanned."""

    template = N_("source %(path)s cannot be backed up: %(reason)s")
    params = ("path", "reason")


class DestinationError(StageBackupError):
    template = N_("cannot write to destination %(path)s: %(reason)s")
    params = ("path", "reason")


class CacheFull(StageBackupError):
    template = N_("cache directory %(path)s is out of space: needs %(needed)s, %(available)s available")
    params = ("path", "needed", "available")


class JobInterrupted(BaseException):
    """Raised inside a job to stop it at the next safe point; not an error of the job itself."""

    status = "interrupted"
    message = N_("the worker was asked to stop")


class WorkerStopping(JobInterrupted):
    """Warm shutdown: the job stops at the next file boundary and is marked interrupted."""


class JobCancelled(JobInterrupted):
    """The operator cancelled the job."""

    status = "cancelled"
    message = N_("cancelled by the operator")


def human_bytes(count: float) -> str:
    """1536 -> '1.5 KiB'; used in messages such as CacheFull."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")
