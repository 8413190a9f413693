"""What the pipeline needs from a progress reporter (implemented by jobs.progress.JobReporter)."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    error_count: int

    def log(self, tag: str, message: str) -> None: ...

    def log_path(self, tag: str, path: str | bytes, note: str = "") -> None: ...

    def advance(self, *, nbytes: int = 0, files: int = 0, current: str | bytes | None = None) -> None: ...

    def checkpoint(self) -> None: ...
