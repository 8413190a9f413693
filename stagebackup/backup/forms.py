"""Flask-WTF forms (CSRF included). Field checks here are only the shape of the input; what makes a
project valid is decided once, by ``project_checks.validate`` (a remark: by ``queue.enqueue``), and its errors
are placed next to the fields. ``render_kw`` gives the browser the same limits as hints; the server's
messages are the services' own, so no wording is repeated here.
"""

from __future__ import annotations

from datetime import time

from flask import current_app, request
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from flask_wtf.form import _Auto
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import NumberRange, Optional
from wtforms.validators import ValidationError as FieldError

from ..catalogue import lazy_gettext as _l
from ..errors import ValidationError
from ..jobs.queue import REMARK_MAX
from ..models import Project
from ..paths import display
from ..project_checks import (
    GROUP_MIN_BYTES,
    KEEP_FIELDS,
    KEEP_MAX,
    LEVEL_RANGE,
    MIB,
    NAME_MAX,
    ProjectSpec,
    read_limit_as_mib,
    read_limit_from_mib,
)
from ..schedule import cron
from .messages import form_error

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


PASSWORD_NEEDED = _l("加密项目需要密码：请输入密码（出于安全，提交被拒后密码不会保留）。")
PASSWORD_NOT_KEPT = _l("已输入的密码未保留（出于安全不回显）：请重新输入。")


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
    group_max_mib = IntegerField(_l("归档分组大小 (MiB)"), validators=[Optional()],
                                 render_kw={"min": GROUP_MIN_BYTES // MIB})
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
    catalog_copy_to_tape = BooleanField(_l("每次写完后把目录库副本也写到磁带"), default=False)
    job_timeout_min = IntegerField(_l("任务时限（分钟）"), validators=[Optional()])
    # Text, not a number field: "0.5" is a valid limit, and a wrong one gets project_checks' own message.
    read_limit_mib = StringField(_l("读取限速 (MiB/s)"), render_kw={"inputmode": "decimal", "maxlength": 40})
    max_age_h = IntegerField(_l("无定时计划时的备份期限（小时）"), validators=[Optional()], render_kw={"min": 1})
    schedule_preset = RadioField(_l("定时计划"), default="", choices=choices(
        ("", _l("不定时")), ("daily", _l("每天")), ("weekly", _l("每周")), ("monthly", _l("每月")),
        ("cron", _l("自定义 (cron)")),
    ))
    schedule_time = StringField(_l("时间"), default="02:00", render_kw={"type": "time"})
    schedule_weekday = SelectField(_l("星期"), default="1", choices=choices(
        ("1", _l("周一")), ("2", _l("周二")), ("3", _l("周三")), ("4", _l("周四")), ("5", _l("周五")),
        ("6", _l("周六")), ("0", _l("周日")),
    ))
    schedule_day = IntegerField(_l("日期（每月第几日）"), default=1, validators=[Optional(), NumberRange(1, 31)],
                                render_kw={"min": 1, "max": 31})
    schedule_cron = StringField(_l("cron 表达式"), render_kw={"placeholder": "0 2 * * *", "maxlength": 100})
    schedule_timezone = StringField(_l("时区"), render_kw={"maxlength": cron.TIMEZONE_MAX})
    schedule_enabled = BooleanField(_l("启用定时"), default=True)
    keep_last = IntegerField(_l("保留最近几个备份"), validators=[Optional()], render_kw={"min": 0, "max": KEEP_MAX})
    keep_daily = IntegerField(_l("按天保留（天数）"), validators=[Optional()], render_kw={"min": 0, "max": KEEP_MAX})
    keep_weekly = IntegerField(_l("按周保留（周数）"), validators=[Optional()], render_kw={"min": 0, "max": KEEP_MAX})
    keep_monthly = IntegerField(_l("按月保留（月数）"), validators=[Optional()], render_kw={"min": 0, "max": KEEP_MAX})
    keep_yearly = IntegerField(_l("按年保留（年数）"), validators=[Optional()], render_kw={"min": 0, "max": KEEP_MAX})
    keep_within_days = IntegerField(_l("全部保留（最近天数）"), validators=[Optional()],
                                    render_kw={"min": 0, "max": KEEP_MAX})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.dest_drive.choices = choices(*[(name, name) for name in sorted(current_app.config["DRIVES"] or {})])

    def validate_schedule_time(self, field) -> None:
        if self.schedule_preset.data in cron.PRESET_KINDS and self._time() is None:
            raise FieldError(_l("请填写时间（时:分）"))

    def validate_read_limit_mib(self, field) -> None:
        try:
            read_limit_from_mib(field.data)
        except ValidationError as exc:
            raise FieldError(form_error(exc).message) from None

    def _read_limit(self) -> int | None:
        """The limit in bytes per second; None when it is not a number (``validate_read_limit_mib`` says so)."""
        try:
            return read_limit_from_mib(self.read_limit_mib.data)
        except ValidationError:
            return None

    def _time(self) -> time | None:
        try:
            return time.fromisoformat((self.schedule_time.data or "").strip()[:5])
        except ValueError:
            return None

    def _schedule_cron(self) -> str | None:
        """The chosen preset as a cron expression, the free expression, or None for no schedule."""
        kind = self.schedule_preset.data
        if kind in cron.PRESET_KINDS:
            at = self._time()
            if at is None:
                return None  # validate_schedule_time reports it on its field
            return cron.Preset(kind, at.hour, at.minute, weekday=int(self.schedule_weekday.data or 1),
                               day=self.schedule_day.data or 1).cron()
        return (self.schedule_cron.data or "") if kind == "cron" else None

    def _fill_schedule(self, project: Project) -> None:
        preset = cron.preset_of(project.schedule_cron)
        self.schedule_preset.data = preset.kind if preset else ("cron" if project.schedule_cron else "")
        if preset:
            self.schedule_time.data = preset.time
            self.schedule_weekday.data = str(preset.weekday if preset.weekday is not None else 1)
            self.schedule_day.data = preset.day or 1
        self.schedule_cron.data = project.schedule_cron or ""
        self.schedule_timezone.data = project.schedule_timezone or ""
        self.schedule_enabled.data = project.schedule_enabled

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
        self.catalog_copy_to_tape.data = project.catalog_copy_to_tape
        self.job_timeout_min.data = project.job_timeout_s // 60 if project.job_timeout_s else None
        self.read_limit_mib.data = read_limit_as_mib(project.read_limit_bytes_s) if project.read_limit_bytes_s else ""
        self.max_age_h.data = project.max_age_h
        self._fill_schedule(project)
        for name in KEEP_FIELDS:
            getattr(self, name).data = getattr(project, name)

    def check_password(self, stored: Project | None) -> bool:
        """An encrypted project needs a password: typed now, or kept from the stored project. Never saved
        unencrypted because the password field came back empty."""
        if self.encrypted.data and not self.password.data and not (stored is not None and stored.encrypted):
            self.password.errors = [*self.password.errors, str(PASSWORD_NEEDED)]
            return False
        return True

    def ask_password_again(self) -> None:
        """A refused form never sends the password back: the field says it must be typed again."""
        if self.password.data and not self.password.errors:
            self.password.errors = [str(PASSWORD_NOT_KEPT)]

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
            group_max_bytes=self.group_max_mib.data * MIB if self.group_max_mib.data is not None else None,
            sync_strategy=self.sync_strategy.data,
            dest_dir=None if tape else originals.get(dest_dir, dest_dir),
            dest_drive=self.dest_drive.data if tape else None,
            dest_pool=((self.dest_pool.data or "").strip() or None) if tape else None,
            verify_after_write=bool(self.verify_after_write.data),
            catalog_copy_to_tape=bool(self.catalog_copy_to_tape.data) and tape,
            job_timeout_s=self.job_timeout_min.data * 60 if self.job_timeout_min.data is not None else None,
            read_limit_bytes_s=self._read_limit(),
            max_age_h=self.max_age_h.data,
            schedule_cron=self._schedule_cron(),
            schedule_timezone=(self.schedule_timezone.data or "").strip() or None,
            schedule_enabled=bool(self.schedule_enabled.data),
            # The retention fields are hidden in sync mode: what they still hold is not applied.
            **{name: getattr(self, name).data if self.mode.data != "sync" else None for name in KEEP_FIELDS},
        )


class ConfirmForm(TextForm):
    """A body-less POST (delete, cancel): the form exists for its CSRF token."""


class ImportUploadForm(FlaskForm):
    """The first step of an import: the file and what to do with names that exist."""

    file = FileField(_l("导出文件 (JSON)"), render_kw={"accept": ".json,application/json"})
    on_conflict = RadioField(_l("同名项目"), choices=choices(
        ("skip", _l("跳过（保留现有项目）")), ("replace", _l("替换现有项目")), ("rename", _l("以新名称导入")),
    ), default="skip")


class ImportConfirmForm(FlaskForm):
    """The second step: the staged file's token; passwords come as ``password-<index>`` fields."""

    token = HiddenField()
    on_conflict = HiddenField()
