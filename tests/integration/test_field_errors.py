"""Every error ``projects`` raises for bad input names its form field and reads right in both languages.

The error carries the field and an English template (what the CLI prints); the page shows the catalog's
translation of that template with the same values. Checked here against the .po files themselves, so a
template that loses its translation, or a raise site that forgets its field, fails.
"""

import ast
import os
import re
import tempfile
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from stagebackup import project_checks, projects
from stagebackup.backup.forms import ProjectForm
from stagebackup.backup.messages import form_error
from stagebackup.errors import ValidationError
from stagebackup.extensions import db
from stagebackup.jobs import queue

from .web_support import csrf_token, make_project

REPO = Path(__file__).resolve().parents[2]
CJK = re.compile(r"[\u4e00-\u9fff]")
LANGS = ("zh_CN", "en")


def _catalog(lang):
    with open(REPO / "translations" / lang / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh)


CATALOGS = {lang: _catalog(lang) for lang in LANGS}


def _templates_raised_in(path: Path) -> set[str]:
    """The ``N_("…")`` templates of the ``ValidationError``s a module raises (concatenated literals joined)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("ValidationError", "PathRefused")
                and node.args
                and isinstance(node.args[0], ast.Call) and getattr(node.args[0].func, "id", None) == "N_"):
            found.add(node.args[0].args[0].value)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_check_choice":
            found.add(node.args[2].args[0].value)
    return found


def _bad_specs(tmp: Path) -> dict[str, tuple[dict, str]]:
    """case -> (ProjectSpec overrides, the form field its error belongs to)."""
    src = tmp / "srv"
    (src / "sub").mkdir(parents=True)
    os.mkfifo(tmp / "fifo")
    (tmp / "a-file").write_text("x")
    (tmp / "one" / "data").mkdir(parents=True)
    (tmp / "two" / "data").mkdir(parents=True)
    (tmp / "mirror" / "inner").mkdir(parents=True)
    return {
        "empty name": ({"name": " "}, "name"),
        "name not UTF-8": ({"name": os.fsdecode(b"p-\xff")}, "name"),
        "long name": ({"name": "n" * (project_checks.NAME_MAX + 1)}, "name"),
        "control character": ({"name": "a\tb"}, "name"),
        "unknown mode": ({"mode": "copy"}, "mode"),
        "unknown format": ({"archive_format": "zip"}, "archive_format"),
        "unknown strategy": ({"sync_strategy": "fast"}, "sync_strategy"),
        "level": ({"level": 12}, "level"),
        "group size": ({"group_max_bytes": 10}, "group_max_mib"),
        "huge group size": ({"group_max_bytes": 2**64}, "group_max_mib"),
        "job time limit": ({"job_timeout_s": 30}, "job_timeout_min"),
        "backup age limit": ({"max_age_h": 0}, "max_age_h"),
        "negative read limit": ({"read_limit_bytes_s": -1}, "read_limit_mib"),
        "huge read limit": ({"read_limit_bytes_s": project_checks.READ_LIMIT_MAX_MIB * (1 << 20) + 1},
                            "read_limit_mib"),
        "empty password": ({"password": ""}, "password"),
        "password line break": ({"password": "a\nb"}, "password"),
        "sync encrypted": ({"mode": "sync", "password": "pw"}, "encrypted"),
        "no source": ({"sources": []}, "sources"),
        "empty source": ({"sources": [""]}, "sources"),
        "missing source": ({"sources": [str(tmp / "nope")]}, "sources"),
        "relative source": ({"sources": ["static"]}, "sources"),
        "relative destination": ({"dest_dir": "backups"}, "dest_dir"),
        "fifo source": ({"sources": [str(tmp / "fifo")]}, "sources"),
        "overlap": ({"sources": [str(src), str(src / "sub")]}, "sources"),
        "same mirror name": ({"mode": "sync", "sources": [str(tmp / "one" / "data"), str(tmp / "two" / "data")]},
                             "sources"),
        "no destination": ({"dest_dir": None}, "dest_dir"),
        "destination is a file": ({"dest_dir": str(tmp / "a-file")}, "dest_dir"),
        "destination inside source": ({"dest_dir": str(src / "backups")}, "dest_dir"),
        "source inside mirror": ({"mode": "sync", "sources": [str(tmp / "mirror" / "inner")],
                                  "dest_dir": str(tmp / "mirror")}, "dest_dir"),
        "two destinations": ({"dest_drive": "vtape0"}, "dest_kind"),
        "sync to tape": ({"mode": "sync", "dest_dir": None, "dest_drive": "vtape0"}, "dest_kind"),
        "unknown drive": ({"dest_dir": None, "dest_drive": "lto9"}, "dest_drive"),
        "pool name": ({"dest_dir": None, "dest_drive": "vtape0", "dest_pool": " "}, "dest_pool"),
        "source in the data directory": ({"sources": [str(tmp / "data")]}, "sources"),
        "destination in the data directory": ({"dest_dir": str(tmp / "data" / "x")}, "dest_dir"),
        "mirror holding the data directory": ({"mode": "sync", "sources": [tempfile.mkdtemp()], "dest_dir": str(tmp)},
                                              "dest_dir"),
        "bad include": ({"includes": ["[z-a]"]}, "includes"),
        "bad exclude": ({"excludes": ["[z-a]"]}, "excludes"),
        "schedule minute 61": ({"schedule_cron": "61 * * * *"}, "schedule_cron"),
        "schedule hour 24": ({"schedule_cron": "0 24 * * *"}, "schedule_cron"),
        "schedule day 32": ({"schedule_cron": "0 0 32 * *"}, "schedule_cron"),
        "schedule month 13": ({"schedule_cron": "0 0 1 13 *"}, "schedule_cron"),
        "schedule step 0": ({"schedule_cron": "*/0 * * * *"}, "schedule_cron"),
        "schedule of 6 fields": ({"schedule_cron": "* * * * * *"}, "schedule_cron"),
        "empty schedule": ({"schedule_cron": " "}, "schedule_cron"),
        "schedule on 30 February": ({"schedule_cron": "0 0 30 2 *"}, "schedule_cron"),
        "schedule weekday 8": ({"schedule_cron": "0 2 * * 8"}, "schedule_cron"),
        "schedule day and weekday": ({"schedule_cron": "0 2 13 * 5"}, "schedule_cron"),
        "unknown time zone": ({"schedule_cron": "0 2 * * *", "schedule_timezone": "Mars/Olympus"},
                              "schedule_timezone"),
        "negative retention count": ({"keep_last": -1}, "keep_last"),
        "huge retention days": ({"keep_within_days": project_checks.KEEP_MAX + 1}, "keep_within_days"),
        "retention on a sync mirror": ({"mode": "sync", "keep_daily": 7}, "keep_daily"),
    }


def _raised(app, spec_overrides, tmp: Path) -> ValidationError:
    spec = {"name": "p", "sources": [str(tmp / "srv")], "dest_dir": str(tmp / "backups"), **spec_overrides}
    with pytest.raises(ValidationError) as raised:
        project_checks.validate(project_checks.ProjectSpec(**spec))
    return raised.value


def _shown(app, error, lang):
    # A fresh app context: Flask-Babel keeps the locale it chose in ``g``, which lives that long.
    with app.app_context(), app.test_request_context("/", headers={"Cookie": f"lang={lang}"}):
        return form_error(error)


def _assert_shown_right(app, error, field):
    assert error.field == field, (str(error), error.field)
    assert hasattr(ProjectForm, field) or field == "remark", field
    for lang in LANGS:
        entry = CATALOGS[lang].get(error.template)
        assert entry is not None and entry.string, f"{lang}: no translation of {error.template!r}"
        shown = _shown(app, error, lang)
        assert shown == type(shown)(field, entry.string % error.values), lang
        assert bool(CJK.search(shown.message.replace(str(error.values.get("name", "")), ""))) == (lang == "zh_CN")


def test_each_error_of_validate_lands_on_its_field_in_both_languages(app, tmp_path):
    cases = _bad_specs(tmp_path)
    seen = set()
    for case, (overrides, field) in cases.items():
        error = _raised(app, overrides, tmp_path)
        assert error.field == field, (case, str(error))
        _assert_shown_right(app, error, field)
        assert str(error) == error.template % error.values  # the CLI's English, unchanged by the page language
        seen.add(error.template)
    # The one check root can pass: a destination whose nearest existing folder is not writable.
    readonly = tmp_path / "readonly"
    readonly.mkdir(mode=0o500)
    if not os.access(readonly, os.W_OK):
        error = _raised(app, {"dest_dir": str(readonly / "b")}, tmp_path)
        _assert_shown_right(app, error, "dest_dir")
        seen.add(error.template)
    else:
        seen.add("destination %(path)s is not writable")  # running as root: os.access grants everything
    # Raised by create/update/remove (or, a read limit that is no number, the form and the CLI) rather than
    # validate: their own tests below.
    others = {"the read limit '%(value)s' is not a number of MiB/s (for example 20 or 0.5)",
              "a project named '%(name)s' already exists", "encryption needs a password (--password-stdin)",
              "project '%(name)s' has job #%(id)s %(status)s; cancel it first"}
    # The path policy's restore-target, browse and confinement refusals have their own tests (test_path_policy).
    elsewhere = {"restore target %(path)s is outside the allowed restore roots (%(roots)s; see "
                 "STAGEBACKUP_RESTORE_ROOTS)", "restore target %(path)s overlaps StageBackup's own %(what)s %(dir)s",
                 "%(path)s is StageBackup's own %(what)s: it is not browsable",
                 "%(kind)s %(path)s is outside the allowed roots (%(roots)s; see %(setting)s)"}
    from_validate = (_templates_raised_in(REPO / "stagebackup" / "project_checks.py")
                     | _templates_raised_in(REPO / "stagebackup" / "projects.py")
                     | _templates_raised_in(REPO / "stagebackup" / "schedule" / "cron.py")
                     | _templates_raised_in(REPO / "stagebackup" / "pathpolicy.py")) - others - elsewhere
    assert from_validate <= seen, f"no case for {from_validate - seen}"


def test_errors_of_create_update_and_remove(app, tmp_path):
    project = make_project(tmp_path, "taken")
    with pytest.raises(ValidationError) as raised:
        make_project(tmp_path, "taken")
    _assert_shown_right(app, raised.value, "name")
    db.session.rollback()
    spec = project_checks.ProjectSpec(name="locked", sources=[str(tmp_path)], dest_dir="/tmp/sb-b", encrypted=True)
    with pytest.raises(ValidationError) as raised:
        projects.create(spec, actor="test")
    _assert_shown_right(app, raised.value, "password")
    db.session.rollback()
    queue.enqueue(project, actor="test")
    with pytest.raises(ValidationError) as raised:
        projects.remove("taken", actor="test")
    assert raised.value.field is None  # about the project as a whole: shown at the top
    assert _shown(app, raised.value, "zh_CN").message == "项目 taken 有任务 #1 尚未结束；请先取消它"
    assert str(raised.value) == "project 'taken' has job #1 queued; cancel it first"


def test_a_read_limit_that_is_no_number_lands_on_its_field_in_both_languages(app):
    with pytest.raises(ValidationError) as raised:
        project_checks.read_limit_from_mib("20 MB/s")
    _assert_shown_right(app, raised.value, "read_limit_mib")
    assert str(raised.value) == "the read limit '20 MB/s' is not a number of MiB/s (for example 20 or 0.5)"


def test_a_remark_error_lands_on_the_remark_in_both_languages(app, tmp_path):
    project = make_project(tmp_path)
    with pytest.raises(ValidationError) as raised:
        queue.enqueue(project, remark="r" * (queue.REMARK_MAX + 1), actor="test")
    _assert_shown_right(app, raised.value, "remark")


def test_an_error_without_template_or_field_is_shown_as_it_is(app):
    error = ValidationError("a plain message with 100% of its words")
    for lang in LANGS:
        shown = _shown(app, error, lang)
        assert (shown.field, shown.message) == (None, "a plain message with 100% of its words")


@pytest.mark.parametrize(("lang", "expected"), [
    ("zh_CN", {"sources": "源 /no/such/dir 不存在", "level": "压缩级别必须在 0 到 9 之间",
               "name": "项目名称不能为空", "dest_drive": "未知的磁带机 lto9（已配置：vtape0）"}),
    ("en", {"sources": "Source /no/such/dir does not exist", "level": "The compression level must be between 0 and 9",
            "name": "The project name is empty", "dest_drive": "Unknown tape drive lto9 (configured: vtape0)"}),
])
def test_the_form_shows_each_error_by_its_field_in_the_page_language(client, tmp_path, lang, expected):
    (tmp_path / "srv").mkdir()
    client.set_cookie("lang", lang)
    base = {"name": "p", "sources": str(tmp_path / "srv"), "mode": "archive", "archive_format": "tgz",
            "level": "6", "sync_strategy": "overwrite", "dest_kind": "directory",
            "dest_dir": str(tmp_path / "b"), "dest_pool": "default", "csrf_token": csrf_token(client)}
    posts = {"sources": {"sources": "/no/such/dir"}, "level": {"level": "12"}, "name": {"name": ""},
             "dest_drive": {"dest_kind": "tape", "dest_drive": "lto9"}}
    for field, overrides in posts.items():
        response = client.post("/backup/projects/new", data={**base, **overrides})
        html = response.get_data(as_text=True)
        block = re.search(rf'<div class="mb-3 field-{field}">(.*?)</div>\s*(?:<div class="mb-3|</fieldset>|<button)',
                          html, re.S)
        assert response.status_code == 422 and block, field
        shown = re.findall(r'<div class="invalid-feedback[^"]*">(.*?)</div>', block.group(1))
        assert shown == [expected[field]], (field, shown)
        assert 'class="alert alert-danger form-error"' not in html
