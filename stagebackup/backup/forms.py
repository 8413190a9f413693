"""Flask-WTF forms (CSRF included). Field checks here are only the shape of the input; what makes a
project valid is decided once, by ``projects.validate`` (a remark: by ``queue.enqueue``), and its errors
are placed next to the fields. ``render_kw`` gives the browser the same limits as hints; the server's
messages are the services' own, so no wording is repeated here.
"""

from __future__ import annotations

from flask import current_app, request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import NumberRange, Optional

from ..jobs.queue import REMARK_MAX
from ..models import Project
from ..paths import display
from ..projects import LEVEL_RANGE, NAME_MAX, ProjectSpec

MIB = 1024 * 1024
SUBMIT_METHODS = ("POST", "PUT", "PATCH", "DELETE")  # as Flask-WTF's is_submitted()

try:  # WTForms >= 3.3 wants choice objects; tuples are deprecated there (and all older versions have)
    from wtforms.fields.choices import SelectChoice as _Choice
except ImportError:  # pragma: no cover - older WTForms
    def _Choice(value, label):  # noqa: N802 - stands in for the class
        return (value, label)


class TextForm(FlaskForm):
    """A form of text fields: only the urlencoded/multipart *fields* are read. Flask-WTF would also hand the
    fields uploaded files and JSON values, which no text field can take (a file in a text field was a 500)."""

    class Meta:
        def wrap_formdata(self, form, formdata):
            if formdata is not _Auto:
                return formdata
            return request.form if request.method in SUBMIT_METHODS else None


def choices(*pairs) -> list:
    return [_Choice(value, label) for value, label in pairs]


class RunForm(TextForm):
    remark = TextAreaField(_l("备注"), render_kw={"maxlength": REMARK_MAX})


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class ProjectForm(TextForm):
    name = StringField(_l("名称"), render_kw={"required": True, "maxlength": NAME_MAX})
    sources = TextAreaField(_l("源路径（每行一个）"), render_kw={"required": True})
    includes = TextAreaField(_l("包含规则（gitignore 语法，每行一个）"))
    excludes = TextAreaField(_l("排除规则（gitignore 语法，每行一个）"))
    mode = RadioField(_l("模式"), choices=choices(("archive", _l("归档")), ("sync", _l("同步"))), default="archive")
    archive_format = SelectField(_l("格式"), choices=choices(("tgz", "tar.gz"), ("7z", "7z")), default="tgz")
    level = IntegerField(_l("压缩级别"), default=6, render_kw={
        "min": min(low for low, _high in LEVEL_RANGE.values()), "max": max(high for _low, high in LEVEL_RANGE.values()),
    })
    encrypted = BooleanField(_l("加密"))
    password = PasswordField(_l("密码"), validators=[Optional()])
    group_max_mib = IntegerField(_l("归档分组大小 (MiB)"), validators=[Optional(), NumberRange(min=1)])
    sync_strategy = SelectField(
        _l("同步策略"), choices=choices(("overwrite", _l("覆盖（镜像）")), ("incremental", _l("增量（mtime+大小）"))),
        default="overwrite",
    )
    dest_kind = RadioField(
        _l("目标"), choices=choices(("directory", _l("目录")), ("tape", _l("磁带"))), default="directory",
    )
    dest_dir = StringField(_l("目标目录"))
    dest_drive = SelectField(_l("磁带机"), choices=[], validate_choice=False)
    dest_pool = StringField(_l("磁带池"), default="default")
    verify_after_write = BooleanField(_l("写入后校验"), default=True)
    job_timeout_min = IntegerField(_l("任务时限（分钟）"), validators=[Optional()])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.dest_drive.choices = choices(*[(name, name) for name in sorted(current_app.config["DRIVES"] or {})])

    def fill_from(self, project: Project) -> None:
        """Show a stored project. The password is never sent back: an empty field keeps it."""
        self.name.data = project.name
        self.sources.data = "\n".join(display(s) for s in project.sources)
        self.includes.data = "\n".join(project.includes or [])
        self.excludes.data = "\n".join(project.excludes or [])
        self.mode.data, self.archive_format.data = project.mode, project.archive_format
        self.level.data, self.encrypted.data = project.compression_level, project.encrypted
        self.group_max_mib.data = project.group_max_bytes // MIB if project.group_max_bytes else None
        self.sync_strategy.data = project.sync_strategy
        self.dest_kind.data = project.dest_kind
        self.dest_dir.data = display(project.dest_path) if project.dest_path else ""
        self.dest_drive.data, self.dest_pool.data = project.dest_drive, project.dest_pool or "default"
        self.verify_after_write.data = project.verify_after_write
        self.job_timeout_min.data = project.job_timeout_s // 60 if project.job_timeout_s else None

    def to_spec(self, stored: Project | None = None) -> ProjectSpec:
        """The operator's input as a spec. A source shown in its display form (a name with bytes that
        are not UTF-8 appears as ``\\xNN``) and sent back unchanged keeps its exact stored bytes."""
        originals = {display(s): s for s in (stored.sources if stored else [])}
        if stored is not None and stored.dest_path:
            originals[display(stored.dest_path)] = stored.dest_path
        tape = self.dest_kind.data == "tape"
        dest_dir = (self.dest_dir.data or "").strip()
        password = self.password.data or None
        return ProjectSpec(
            name=self.name.data or "",
            sources=[originals.get(line, line) for line in _lines(self.sources.data)],
            includes=_lines(self.includes.data),
            excludes=_lines(self.excludes.data),
            mode=self.mode.data,
            archive_format=self.archive_format.data,
            level=self.level.data if self.level.data is not None else 6,
            password=password,
            encrypted=bool(self.encrypted.data or password),
            group_max_bytes=self.group_max_mib.data * MIB if self.group_max_mib.data else None,
            sync_strategy=self.sync_strategy.data,
            dest_dir=None if tape else originals.get(dest_dir, dest_dir),
            dest_drive=self.dest_drive.data if tape else None,
            dest_pool=((self.dest_pool.data or "").strip() or None) if tape else None,
            verify_after_write=bool(self.verify_after_write.data),
            job_timeout_s=self.job_timeout_min.data * 60 if self.job_timeout_min.data is not None else None,
        )


class ConfirmForm(TextForm):
    """A body-less POST (delete, cancel): the form exists for its CSRF token."""
