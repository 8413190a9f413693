"""Operator errors raised by the shared services (``projects``, ``queue``), shown on web forms: which
field each belongs to, and its text in the page's language.

The services raise one English message (the CLI prints it as is); this table recognises the message,
names the form field it concerns and gives the translatable text with the same values. A message not in
the table is still shown, untranslated, at the top of the form: nothing an operator must read is lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import gettext as _

from ..errors import StageBackupError


def N_(text: str) -> str:
    """Marks a template for extraction; it is translated when shown (its values are filled in then)."""
    return text


@dataclass(frozen=True)
class FieldError:
    field: str | None  # None: about the form as a whole
    message: str


# (pattern on the English message, form field, Chinese template with the pattern's named groups)
PATTERNS: list[tuple[re.Pattern, str | None, str]] = [(re.compile(p + r"\Z", re.S), f, t) for p, f, t in [
    (r"the project name is empty", "name", N_("项目名称不能为空")),
    (r"the project name is not valid UTF-8", "name", N_("项目名称不是有效的 UTF-8")),
    (r"the project name is longer than (?P<n>\d+) characters", "name", N_("项目名称不能超过 %(n)s 个字符")),
    (r"the project name contains control characters", "name", N_("项目名称含有控制字符")),
    (r"a project named '(?P<name>.*)' already exists", "name", N_("已有名为 %(name)s 的项目")),
    (r"at least one source is needed.*", "sources", N_("至少需要一个源路径")),
    (r"a source path is empty", "sources", N_("源路径为空")),
    (r"source (?P<path>.*) does not exist", "sources", N_("源 %(path)s 不存在")),
    (r"source (?P<path>.*) is not a directory or regular file", "sources", N_("源 %(path)s 不是目录或普通文件")),
    (r"sources overlap: (?P<a>.*) and (?P<b>.*)", "sources", N_("源路径重叠：%(a)s 和 %(b)s")),
    (r"a destination directory is needed.*", "dest_dir", N_("需要一个目标目录")),
    (r"destination (?P<path>.*) exists and is not a directory", "dest_dir", N_("目标 %(path)s 已存在且不是目录")),
    (r"destination (?P<path>.*) is inside source (?P<source>.*): the backup would archive itself", "dest_dir",
     N_("目标 %(path)s 位于源 %(source)s 之内：备份会把自己也打包进去")),
    (r"destination (?P<path>.*) is not writable", "dest_dir", N_("目标 %(path)s 不可写")),
    (r"choose one destination.*", "dest_kind", N_("只能选择一个目标：目录或磁带")),
    (r"sync mode mirrors files into a directory; it cannot write to tape", "dest_kind",
     N_("同步模式把文件镜像到目录，不能写入磁带")),
    (r"unknown tape drive '(?P<drive>.*)' \(configured drives: (?P<known>.*)\)", "dest_drive",
     N_("未知的磁带机 %(drive)s（已配置：%(known)s）")),
    (r"unknown mode '(?P<value>.*)' \(one of: (?P<choices>.*)\)", "mode", N_("未知的模式 %(value)s")),
    (r"unknown archive format '(?P<value>.*)' \(one of: (?P<choices>.*)\)", "archive_format",
     N_("未知的归档格式 %(value)s")),
    (r"unknown sync strategy '(?P<value>.*)' \(one of: (?P<choices>.*)\)", "sync_strategy",
     N_("未知的同步策略 %(value)s")),
    (r"compression level must be between (?P<low>\d+) and (?P<high>\d+)", "level",
     N_("压缩级别必须在 %(low)s 到 %(high)s 之间")),
    (r"the archive group size must be at least (?P<n>\d+) bytes", "group_max_mib",
     N_("归档分组大小至少为 %(n)s 字节")),
    (r"the password is empty", "password", N_("密码为空")),
    (r"the password contains a line break", "password", N_("密码含有换行符")),
    (r"encryption needs a password.*", "password", N_("加密需要密码")),
    (r"sync mode copies files as they are; encryption needs archive mode", "encrypted",
     N_("同步模式按原样复制文件；加密需要归档模式")),
    (r"the tape pool name must be 1 to 64 characters", "dest_pool", N_("磁带池名称须为 1 到 64 个字符")),
    (r"invalid include/exclude pattern: (?P<reason>.*)", "excludes", N_("无效的包含/排除规则：%(reason)s")),
    (r"the remark is longer than (?P<n>\d+) characters", "remark", N_("备注不能超过 %(n)s 个字符")),
    (r"the remark is not valid UTF-8", "remark", N_("备注不是有效的 UTF-8")),
    (r"project '(?P<name>.*)' has job #(?P<id>\d+) (?P<status>\w+); cancel it first", None,
     N_("项目 %(name)s 有任务 #%(id)s 尚未结束；请先取消它")),
    (r"unknown project: (?P<name>.*)", None, N_("未知的项目：%(name)s")),
]]


def translate_error(error: StageBackupError | str) -> FieldError:
    text = str(error)
    for pattern, field, template in PATTERNS:
        match = pattern.match(text)
        if match:
            return FieldError(field, _(template, **match.groupdict()))
    return FieldError(None, text)
