"""Errors an operator can act on.

As in borg, each class's docstring is its message template; ``str(error)`` fills it in. The class
name and the message are stored on the failed job and shown on its card.
"""

from __future__ import annotations


class StageBackupError(Exception):
    """Error: {0}"""

    #: Transient errors may be retried by the queue's retry policy (jobs/retry.py).
    transient = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args)
        self.kwargs = kwargs

    def __str__(self) -> str:
        return (self.__doc__ or "{0}").strip().format(*self.args, **self.kwargs)


class ValidationError(StageBackupError):
    """{0}"""


class ProjectNotFound(StageBackupError):
    """unknown project: {0}"""


class JobNotFound(StageBackupError):
    """unknown job: {0}"""


class AlreadyQueued(StageBackupError):
    """project {0} already has a queued job (#{1}); it will run first"""


class SourceMissing(StageBackupError):
    """source {0} does not exist or is not readable: {1}"""


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
