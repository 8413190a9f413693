"""An archive of a backup as restore sees it, and the errors its reading raises.

Shared by ``sources`` (which archive is where) and ``tape_source`` (pulling one from tape), so neither
imports the other's dependants back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import N_, StageBackupError
from ..paths import display


class IntegrityError(StageBackupError):
    template = N_("archive %(label)s is damaged: its SHA-256 is %(actual)s, the catalog recorded %(expected)s; "
                  "nothing was extracted from it")
    params = ("label", "actual", "expected")


class ArchiveMissing(StageBackupError):
    template = N_("archive %(label)s is not where the catalog says (%(where)s)")
    params = ("label", "where")


@dataclass(frozen=True)
class ArchiveRef:
    """An archive row as plain values (no ORM object is held while the job works)."""

    id: int
    seq: int
    format: str  # tgz | 7z | sync
    encrypted: bool
    location_kind: str  # directory | tape | sync
    path: str | None
    name: str | None
    size: int
    sha256: str
    member_count: int
    input_bytes: int
    secret_id: int | None
    kdf_iterations: int | None

    @property
    def label(self) -> str:
        return display(self.name or (os.path.basename(self.path) if self.path else f"archive #{self.id}"))
