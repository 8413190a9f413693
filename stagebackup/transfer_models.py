"""The export file's shape, as pydantic v2 models (seed 001 §3.3, 智能导入).

A field missing from an older or hand-written file takes the same default a new project gets
(``ProjectSpec``'s), so a file needs only ``name``, ``sources`` and a destination. Fields this version does
not know are kept in ``model_extra`` and reported, never silently dropped. Types are strict: ``"6"`` is not a
level and ``"yes"`` is not a flag. Whether the values make a valid project is decided by
``project_checks.validate``, the same rules as the form.

Paths and patterns are JSON strings; one whose bytes are not UTF-8 is written as ``{"b64": "<base64 of the
bytes>"}`` instead, so every name survives the round trip exactly and the file stays valid UTF-8.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
)

from .paths import is_text
from .project_checks import KEEP_MAX, ProjectSpec

FORMAT = "stagebackup-projects"
VERSION = 1
BIGINT_MAX = 2**63 - 1  # group_max_bytes is a BIGINT column: a larger number would overflow the database


def encode_path(path: str) -> str | dict:
    """A stored path (surrogate-escaped str) as it is written to the file."""
    if is_text(path):
        return path
    return {"b64": base64.b64encode(os.fsencode(path)).decode("ascii")}


def _decode_path(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return os.fsdecode(base64.b64decode(value["b64"], validate=True))
        except (binascii.Error, ValueError):
            raise ValueError('"b64" is not valid base64') from None
    if isinstance(value, dict):
        raise ValueError('a path is a string or {"b64": "<base64 of its bytes>"}')
    return value


def _text(value: str) -> str:
    if not is_text(value):
        raise ValueError('the text is not valid UTF-8 (only paths may use {"b64": …})')
    return value


PathValue = Annotated[StrictStr, BeforeValidator(_decode_path)]
Text = Annotated[StrictStr, BeforeValidator(lambda v: _text(v) if isinstance(v, str) else v)]


def _default(name: str) -> Any:
    """ProjectSpec's default for a field: one definition of what a new project gets."""
    spec_field = {f.name: f for f in dataclasses.fields(ProjectSpec)}[name]
    if spec_field.default_factory is not dataclasses.MISSING:
        return Field(default_factory=spec_field.default_factory)
    return spec_field.default


class ProjectEntry(BaseModel):
    """One project in the file. ``password_required`` marks an encrypted project whose password the import
    must be given (passwords are never exported); it implies ``encrypted``."""

    model_config = ConfigDict(extra="allow", strict=True)

    name: Text
    sources: list[PathValue]
    mode: Text = _default("mode")
    includes: list[PathValue] = _default("includes")
    excludes: list[PathValue] = _default("excludes")
    archive_format: Text = _default("archive_format")
    level: StrictInt = _default("level")
    encrypted: StrictBool = False
    password_required: StrictBool = False
    sync_strategy: Text = _default("sync_strategy")
    group_max_bytes: Annotated[StrictInt, Field(ge=1, le=BIGINT_MAX)] | None = _default("group_max_bytes")
    dest_dir: PathValue | None = _default("dest_dir")
    dest_drive: Text | None = _default("dest_drive")
    dest_pool: Text | None = _default("dest_pool")
    verify_after_write: StrictBool = _default("verify_after_write")
    catalog_copy_to_tape: StrictBool = _default("catalog_copy_to_tape")
    job_timeout_s: Annotated[StrictInt, Field(ge=0, le=BIGINT_MAX)] | None = _default("job_timeout_s")
    # Bytes per second; its range (0: no limit) is project_checks.validate's, so the message names it.
    read_limit_bytes_s: Annotated[StrictInt, Field(le=BIGINT_MAX)] | None = _default("read_limit_bytes_s")
    max_age_h: Annotated[StrictInt, Field(ge=0, le=BIGINT_MAX)] | None = _default("max_age_h")
    schedule_cron: Text | None = _default("schedule_cron")
    schedule_timezone: Text | None = _default("schedule_timezone")
    schedule_enabled: StrictBool = _default("schedule_enabled")
    keep_last: Annotated[StrictInt, Field(ge=0, le=KEEP_MAX)] | None = _default("keep_last")
    keep_daily: Annotated[StrictInt, Field(ge=0, le=KEEP_MAX)] | None = _default("keep_daily")
    keep_weekly: Annotated[StrictInt, Field(ge=0, le=KEEP_MAX)] | None = _default("keep_weekly")
    keep_monthly: Annotated[StrictInt, Field(ge=0, le=KEEP_MAX)] | None = _default("keep_monthly")
    keep_yearly: Annotated[StrictInt, Field(ge=0, le=KEEP_MAX)] | None = _default("keep_yearly")
    keep_within_days: Annotated[StrictInt, Field(ge=0, le=KEEP_MAX)] | None = _default("keep_within_days")

    @property
    def needs_password(self) -> bool:
        return self.encrypted or self.password_required

    def to_spec(self, name: str, password: str | None) -> ProjectSpec:
        values = self.model_dump(exclude={"password_required"} | set(self.model_extra or {}))
        values.update(name=name, password=password, encrypted=self.needs_password)
        return ProjectSpec(**values)


class ExportDocument(BaseModel):
    """The whole file. Projects are checked one by one (``ProjectEntry``) so each error names its project."""

    model_config = ConfigDict(extra="allow", strict=True)

    format: StrictStr
    version: StrictInt
    projects: list[Any]

    @field_validator("format", "version")
    @classmethod
    def _known(cls, value: str | int, info: ValidationInfo) -> str | int:
        if info.field_name == "format" and value != FORMAT:
            raise ValueError(f'this is not a StageBackup project export ("format" must be "{FORMAT}")')
        if info.field_name == "version" and value != VERSION:
            raise ValueError(f"version {value} is not supported: this StageBackup reads version {VERSION}")
        return value
