"""Errors an operator can act on.

As in borg, each class's docstring is its message template; ``str(error)`` fills it in. The class
name and the message are stored on the failed job and shown on its card.

``ValidationError`` (bad input to the shared services) is built from a template marked with ``N_`` and
its values instead, and names the form field it concerns: the CLI prints ``str(error)`` (English), the
web forms show ``error.translate(gettext)`` next to that field in the page's language.
"""

from __future__ import annotations

from collections.abc import Callable


def N_(template: str) -> str:  # noqa: N802 - the gettext convention, and the keyword `make translations` extracts
    """Marks a message template for extraction; it is translated where it is shown, with its values."""
    return template


class StageBackupError(Exception):
    """Error: {0}"""

    #: Transient errors may be retried by the queue's retry policy (jobs/retry.py).
    transient = False
    #: The web form field the error concerns; None: the form (or page) as a whole.
    field: str | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args)
        self.kwargs = kwargs

    def __str__(self) -> str:
        return (self.__doc__ or "{0}").strip().format(*self.args, **self.kwargs)

    def translate(self, gettext: Callable[..., str]) -> str:
        """The message in the page's language. Without a translatable template it is shown as it is."""
        return str(self)


class ValidationError(StageBackupError):
    """Bad input. ``template`` is English with ``%(name)s`` placeholders (mark it with ``N_`` at the raise
    site so the catalogs translate it) and ``values`` fill them; ``field`` names the form field."""

    def __init__(self, template: str, /, *, field: str | None = None, **values):
        super().__init__(template)
        self.template, self.values, self.field = template, values, field

    def __str__(self) -> str:
        # No values, no %-formatting: a plain message may contain a literal "%".
        return self.template % self.values if self.values else self.template

    def translate(self, gettext: Callable[..., str]) -> str:
        # gettext returns a template missing from the catalogs unchanged: shown in English, nothing lost.
        return gettext(self.template, **self.values)


class ProjectNotFound(ValidationError):
    """A project name that matches no project (a name the operator typed: bad input)."""

    def __init__(self, name: str):
        super().__init__(N_("unknown project: %(name)s"), name=name)


class JobNotFound(StageBackupError):
    """unknown job: {0}"""


class AlreadyQueued(StageBackupError):
    """project {0} already has a queued job (#{1}); it will run first"""


class SourceMissing(StageBackupError):
    """source {0} does not exist or is not readable: {1}"""


class SourceChanged(StageBackupError):
    """source {0} cannot be backed up: {1}"""


class DestinationError(StageBackupError):
    """cannot write to destination {0}: {1}"""


class CacheFull(StageBackupError):
    """cache directory {path} is out of space: needs {needed}, {available} available"""


class JobInterrupted(BaseException):
    """Raised inside a job to stop it at the next safe point; not an error of the job itself."""

    status = "interrupted"
    message = "the worker was asked to stop"


class WorkerStopping(JobInterrupted):
    """Warm shutdown: the job stops at the next file boundary and is marked interrupted."""


class JobCancelled(JobInterrupted):
    """The operator cancelled the job."""

    status = "cancelled"
    message = "cancelled by the operator"


def human_bytes(count: float) -> str:
    """1536 -> '1.5 KiB'; used in messages such as CacheFull."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")
