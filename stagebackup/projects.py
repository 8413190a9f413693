"""Project definitions: validation and persistence shared by the CLI and the web forms."""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field

from sqlalchemy import select, update

from . import audit
from .errors import ProjectNotFound, ValidationError
from .extensions import db
from .jobs import queue
from .models import Job, Project
from .paths import display, is_text, is_within
from .pipeline.scan import Rules

FORMATS = ("tgz",)
LEVEL_RANGE = {"tgz": (0, 9)}
NAME_MAX = 200


@dataclass
class ProjectSpec:
    name: str
    sources: list[str]
    dest_dir: str
    includes: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    archive_format: str = "tgz"
    level: int = 6


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError("the project name is empty")
    if not is_text(name):
        raise ValidationError("the project name is not valid UTF-8")
    if len(name) > NAME_MAX:
        raise ValidationError(f"the project name is longer than {NAME_MAX} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise ValidationError("the project name contains control characters")
    return name


def _check_sources(sources: list[str]) -> list[str]:
    if not sources:
        raise ValidationError("at least one source is needed (--source PATH)")
    result: list[str] = []
    for raw in sources:
        if not raw or "\0" in raw:
            raise ValidationError("a source path is empty")
        path = os.path.abspath(os.path.expanduser(raw))
        if not os.path.exists(path):
            raise ValidationError(f"source {display(path)} does not exist")
        if not (os.path.isdir(path) or os.path.isfile(path)):
            raise ValidationError(f"source {display(path)} is not a directory or regular file")
        if path in result:
            continue
        for other in result:
            if is_within(path, other) or is_within(other, path):
                raise ValidationError(f"sources overlap: {display(path)} and {display(other)}")
        result.append(path)
    return result


def _check_dest_dir(dest: str, sources: list[str]) -> str:
    if not dest or "\0" in dest:
        raise ValidationError("a destination directory is needed (--dest-dir PATH)")
    path = os.path.abspath(os.path.expanduser(dest))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValidationError(f"destination {display(path)} exists and is not a directory")
    for source in sources:
        if is_within(path, source):
            raise ValidationError(
                f"destination {display(path)} is inside source {display(source)}: the backup would archive itself"
            )
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValidationError(f"destination {display(path)} is not writable")
    return path


def validate(spec: ProjectSpec) -> ProjectSpec:
    name = _check_name(spec.name)
    if spec.archive_format not in FORMATS:
        raise ValidationError(f"unknown archive format {spec.archive_format!r} (one of: {', '.join(FORMATS)})")
    low, high = LEVEL_RANGE[spec.archive_format]
    if not low <= spec.level <= high:
        raise ValidationError(f"compression level must be between {low} and {high}")
    sources = _check_sources(spec.sources)
    dest = _check_dest_dir(spec.dest_dir, sources)
    Rules(spec.includes, spec.excludes)  # raises on a bad pattern
    return ProjectSpec(name, sources, dest, list(spec.includes), list(spec.excludes), spec.archive_format,
                       spec.level)


def get_by_name(name: str) -> Project:
    if not is_text(name):
        raise ProjectNotFound(display(name))
    project = db.session.scalar(select(Project).where(Project.name == name))
    if project is None:
        raise ProjectNotFound(name)
    return project


def create(spec: ProjectSpec, *, actor: str) -> Project:
    spec = validate(spec)
    if db.session.scalar(select(Project.id).where(Project.name == spec.name)) is not None:
        raise ValidationError(f"a project named {spec.name!r} already exists")
    project = Project(
        name=spec.name, sources=spec.sources, includes=spec.includes, excludes=spec.excludes,
        mode="archive", archive_format=spec.archive_format, compression_level=spec.level,
        dest_kind="directory", dest_path=spec.dest_dir,
    )
    db.session.add(project)
    db.session.flush()
    audit.record(actor, "project.create", project.name)
    db.session.commit()
    return project


def remove(name: str, *, actor: str) -> None:
    project = get_by_name(name)
    active = queue.active_job_for_project(project.id)
    if active is not None:
        raise ValidationError(f"project {name!r} has job #{active.id} {active.status}; cancel it first")
    # History keeps the jobs (they carry the project's name); they just lose the link.
    db.session.execute(update(Job).where(Job.project_id == project.id).values(project_id=None))
    db.session.delete(project)
    audit.record(actor, "project.remove", name)
    db.session.commit()


def to_dict(project: Project) -> dict:
    return {
        "id": project.id,
        "name": project.name,
        "mode": project.mode,
        "sources": [display(s) for s in project.sources],
        "includes": project.includes,
        "excludes": project.excludes,
        "format": project.archive_format,
        "level": project.compression_level,
        "destination": {"kind": project.dest_kind, "path": display(project.dest_path or "")},
        "created_at": project.created_at.isoformat() + "Z",
    }
