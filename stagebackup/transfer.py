"""Export and import of project definitions (seed 001 §3.3): one versioned JSON document.

Export writes every setting of each project (``projects.SETTINGS``), never a secret: an encrypted project
carries ``"password_required": true`` and its password must be given again on import.

Import is all or nothing. ``plan`` reads the file (size limit, UTF-8, JSON, the pydantic models), runs every
project through ``project_checks.validate`` — the same rules as the form — and decides, per project, create,
replace, skip or rename; it writes nothing and collects every problem, each naming its project (position in
the file and name) and field. ``apply`` writes a plan in one transaction with one audit row.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError as PydanticError
from sqlalchemy import select

from . import audit, project_checks, projects
from .errors import N_, StageBackupError, ValidationError
from .extensions import db
from .models import Project
from .transfer_models import FORMAT, VERSION, ExportDocument, ProjectEntry, encode_path

CONFLICT_POLICIES = ("skip", "replace", "rename")
PATH_SETTINGS = ("sources", "includes", "excludes", "dest_dir")


# ---- export -------------------------------------------------------------------------------------------

def export_document(names: list[str] | None = None) -> dict:
    """Every project (or the named ones), by name."""
    if names:
        rows = sorted({p.id: p for p in map(projects.get_by_name, names)}.values(), key=lambda p: p.name)
    else:
        rows = db.session.scalars(select(Project).order_by(Project.name)).all()
    return {"format": FORMAT, "version": VERSION, "projects": [export_entry(p) for p in rows]}


def export_entry(project: Project) -> dict:
    entry = projects.settings(project)
    for key in PATH_SETTINGS:
        value = entry[key]
        entry[key] = [encode_path(v) for v in value] if isinstance(value, list) else (
            encode_path(value) if value is not None else None)
    if project.encrypted:
        entry["password_required"] = True
    return entry


def dumps(document: dict) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


# ---- import: reading and checking ---------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """Why a file cannot be imported: ``index`` is the project's position in the file (1-based)."""

    error: StageBackupError
    index: int | None = None
    name: str | None = None

    def __str__(self) -> str:
        where = []
        if self.index is not None:
            where.append(f"project #{self.index}" + (f" ({self.name})" if self.name else ""))
        if self.error.field:
            where.append(f"field {self.error.field}")
        return (", ".join(where) + ": " if where else "") + str(self.error)


class ImportRejected(ValidationError):
    """The file was not imported; ``problems`` lists every reason (nothing was written)."""

    template = N_("nothing was imported: %(problems)s")
    params = ("problems",)

    def __init__(self, problems: list[Problem] | str):
        """``problems`` as a list (written out one per line), or already written out (as every error class
        takes its values)."""
        self.problems = [] if isinstance(problems, str) else list(problems)
        text = problems if isinstance(problems, str) else "".join(f"\n  - {p}" for p in self.problems)
        Exception.__init__(self, text)
        self.values, self.field = {"problems": text}, None

    def __str__(self) -> str:
        return self.template % self.values


def _refuse(template: str, **values) -> ImportRejected:
    return ImportRejected([Problem(ValidationError(template, **values))])


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def read_document(raw: bytes, max_bytes: int) -> object:
    """The file's JSON value; a UTF-8 byte order mark is allowed (some editors write one)."""
    if len(raw) > max_bytes:
        raise _refuse(N_("the file is %(size)s bytes; the limit is %(limit)s (STAGEBACKUP_IMPORT_MAX_BYTES)"),
                      size=len(raw), limit=max_bytes)
    raw = raw.removeprefix(codecs.BOM_UTF8)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _refuse(N_("the file is not UTF-8 text (byte %(offset)s)"), offset=exc.start) from None
    if not text.strip():
        raise _refuse(N_("the file is empty"))
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise _refuse(N_("the file is not valid JSON: %(reason)s (line %(line)s, column %(column)s)"),
                      reason=exc.msg, line=exc.lineno, column=exc.colno) from None
    except _DuplicateKey as exc:
        raise _refuse(N_("the key \"%(key)s\" appears twice in one object"), key=str(exc)[:100]) from None
    except RecursionError:
        raise _refuse(N_("the file is nested too deeply to be a project export")) from None
    except ValueError as exc:  # NaN/Infinity, or an integer with thousands of digits
        raise _refuse(N_("the file is not valid JSON: %(reason)s"), reason=str(exc)[:200]) from None


def _pydantic_problems(error: PydanticError, index: int | None = None, name: str | None = None) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"]) or None
        problems.append(Problem(ValidationError(item["msg"], field=where), index, name))
    return problems


def _unknown(model) -> list[str]:
    return sorted(model.model_extra or {})


# ---- import: the plan ---------------------------------------------------------------------------------

@dataclass
class PlannedProject:
    index: int  # position in the file, 1-based
    name: str  # as in the file
    action: str  # create | replace | skip | rename
    final_name: str  # the name it gets (rename: a free one)
    entry: ProjectEntry
    spec: project_checks.ProjectSpec | None  # validated; None when skipped
    unknown_fields: list[str] = field(default_factory=list)

    @property
    def needs_password(self) -> bool:
        return self.action != "skip" and self.entry.needs_password and self.spec.password is None


@dataclass
class ImportPlan:
    on_conflict: str
    projects: list[PlannedProject]
    unknown_fields: list[str]  # at the top level of the file

    def count(self, action: str) -> int:
        return sum(1 for p in self.projects if p.action == action)

    @property
    def missing_passwords(self) -> list[PlannedProject]:
        return [p for p in self.projects if p.needs_password]


def plan(raw: bytes, *, on_conflict: str, max_bytes: int, passwords: Mapping[str, str] | None = None) -> ImportPlan:
    """Check the whole file and decide what happens to each project; raises ImportRejected."""
    if on_conflict not in CONFLICT_POLICIES:
        raise _refuse(N_("unknown conflict policy '%(value)s' (one of: %(choices)s)"),
                      value=on_conflict, choices=", ".join(CONFLICT_POLICIES))
    document = _read_export(raw, max_bytes)
    passwords = dict(passwords or {})
    problems: list[Problem] = []
    planned = _plan_projects(_entries(document.projects, problems), on_conflict, passwords, problems)
    for name in passwords:  # those left were not used by any project
        problems.append(Problem(ValidationError(N_("a password was given for %(name)s, which is not an encrypted "
                                                   "project in this file"), field="password", name=name)))
    if problems:
        raise ImportRejected(problems)
    return ImportPlan(on_conflict, planned, _unknown(document))


def _read_export(raw: bytes, max_bytes: int) -> ExportDocument:
    value = read_document(raw, max_bytes)
    if not isinstance(value, dict):
        raise _refuse(N_("the file is not a project export: it must be a JSON object with \"format\", "
                         "\"version\" and \"projects\""))
    try:
        return ExportDocument.model_validate(value)
    except PydanticError as exc:
        raise ImportRejected(_pydantic_problems(exc)) from None


def _plan_projects(entries: list[tuple[int, ProjectEntry]], on_conflict: str, passwords: dict[str, str],
                   problems: list[Problem]) -> list[PlannedProject]:
    """Each entry's action and validated spec; uses up the passwords it needs."""
    existing = set(db.session.scalars(select(Project.name)))
    taken = existing | {entry.name.strip() for _index, entry in entries}
    planned: list[PlannedProject] = []
    seen: dict[str, int] = {}
    for index, entry in entries:
        name = entry.name.strip()
        if name in seen:
            problems.append(Problem(ValidationError(
                N_("the name is also used by project #%(other)s in this file"), field="name", other=seen[name]),
                index, name))
            continue
        seen[name] = index
        action, final_name = _decide(name, existing, taken, on_conflict)
        taken.add(final_name)
        item = PlannedProject(index, name, action, final_name, entry, None, _unknown(entry))
        password = passwords.pop(name, None)  # a skipped project's password is simply not needed
        if action != "skip":
            item.spec = _validated(item, password, problems)
        planned.append(item)
    return planned


def _entries(values: list, problems: list[Problem]) -> list[tuple[int, ProjectEntry]]:
    entries = []
    for index, value in enumerate(values, start=1):
        name = value.get("name") if isinstance(value, dict) else None
        name = name if isinstance(name, str) else None
        if not isinstance(value, dict):
            problems.append(Problem(ValidationError(N_("a project is a JSON object")), index))
            continue
        try:
            entries.append((index, ProjectEntry.model_validate(value)))
        except PydanticError as exc:
            problems.extend(_pydantic_problems(exc, index, name))
    return entries


def _decide(name: str, existing: set[str], taken: set[str], on_conflict: str) -> tuple[str, str]:
    if name not in existing:
        return "create", name
    if on_conflict != "rename":
        return on_conflict, name
    number = 2
    while True:
        suffix = f" ({number})"
        candidate = name[:project_checks.NAME_MAX - len(suffix)] + suffix
        if candidate not in taken:
            return "rename", candidate
        number += 1


def _validated(item: PlannedProject, password: str | None,
               problems: list[Problem]) -> project_checks.ProjectSpec | None:
    if password is not None and not item.entry.needs_password:
        problems.append(Problem(ValidationError(N_("a password was given, but the project is not encrypted"),
                                                field="password"), item.index, item.name))
        return None
    try:
        return project_checks.validate(item.entry.to_spec(item.final_name, password))
    except ValidationError as exc:
        problems.append(Problem(exc, item.index, item.name))
        return None


# ---- import: writing ----------------------------------------------------------------------------------

def apply(import_plan: ImportPlan, *, actor: str) -> dict:
    """Write the plan in one transaction; returns the counts recorded in the audit log."""
    missing = import_plan.missing_passwords
    if missing:
        raise ImportRejected([Problem(ValidationError(N_("the password is needed (passwords are not exported)"),
                                                      field="password"), p.index, p.name) for p in missing])
    try:
        for item in import_plan.projects:
            _write(item, actor)
        counts = {action: import_plan.count(action) for action in ("create", "replace", "skip", "rename")}
        audit.record(actor, "project.import", None, details={
            **counts, "on_conflict": import_plan.on_conflict,
            "projects": [p.final_name for p in import_plan.projects if p.action != "skip"],
        })
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return counts


def _write(item: PlannedProject, actor: str) -> None:
    if item.action == "skip":
        return
    details = {"import": True}
    try:
        if item.action == "replace":
            projects.replace(projects.get_by_name(item.name), item.spec, actor=actor, details=details)
        else:
            projects.add(item.spec, actor=actor, details=details)
    except ValidationError as exc:  # another writer took the name since the plan was made
        raise ImportRejected([Problem(exc, item.index, item.name)]) from None


def import_projects(raw: bytes, *, on_conflict: str, max_bytes: int, actor: str, dry_run: bool = False,
                    passwords: Mapping[str, str] | None = None) -> ImportPlan:
    result = plan(raw, on_conflict=on_conflict, max_bytes=max_bytes, passwords=passwords)
    if not dry_run:
        apply(result, actor=actor)
    return result
