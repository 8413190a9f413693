"""Every operator error has an English message, a translatable template with named values, and an exit code."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest
from babel.support import Translations

import stagebackup
from stagebackup.errors import (
    N_,
    AlreadyQueued,
    CacheFull,
    ConflictError,
    DestinationError,
    JobNotFound,
    ProjectNotFound,
    SourceMissing,
    StageBackupError,
    ValidationError,
)
from stagebackup.tape.errors import DriveBusy, TapeError, UnknownDrive, UnknownTape

TRANSLATIONS = Path(__file__).resolve().parents[2] / "translations"
CJK = re.compile(r"[\u4e00-\u9fff]")


def _all_errors() -> list[type[StageBackupError]]:
    for module in pkgutil.walk_packages(stagebackup.__path__, "stagebackup."):
        importlib.import_module(module.name)
    found, todo = {StageBackupError}, [StageBackupError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__name__}")


ERRORS = _all_errors()


def _sample(cls: type[StageBackupError]) -> StageBackupError:
    if cls.template is None:  # free-form: the raise site passes the template
        return cls(N_("sample %(value)s"), value="<value>")
    return cls(*[f"<{name}>" for name in cls.params])


def _gettext(locale: str):
    return Translations.load(str(TRANSLATIONS), [locale]).gettext


def test_the_package_has_the_errors_we_expect():
    names = {cls.__name__ for cls in ERRORS}
    assert {"CacheFull", "SourceMissing", "DestinationError", "UnknownTape", "ArchiveMissing", "VerifyFailed",
            "ExplorerError", "MasterKeyError"} <= names


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
def test_every_error_has_a_named_template(cls):
    # A class inheriting "no template" by accident (say a borg-style docstring "... {0}") fails here.
    assert cls.template is not None or "template" in vars(cls), f"{cls.__name__}: add template = N_('… %(name)s …')"
    error = _sample(cls)
    message = str(error)
    if cls.template is not None:
        names = set(re.findall(r"%\((\w+)\)", cls.template))
        assert names <= set(cls.params), f"{cls.__name__}: positional values cannot fill {names - set(cls.params)}"
        assert all(f"<{name}>" in message for name in names), message
    assert "{" not in message and "%(" not in message, message
    assert error.translate(_gettext("en")).lower() == message.lower()  # English stays English


@pytest.mark.parametrize("cls", [cls for cls in ERRORS if cls.template is not None], ids=lambda cls: cls.__name__)
def test_every_class_template_reads_in_chinese(cls):
    error = _sample(cls)
    chinese = error.translate(_gettext("zh_CN"))
    assert CJK.search(chinese), f"{cls.__name__}: no zh_CN translation for {cls.template!r}"
    assert all(f"<{name}>" in chinese for name in re.findall(r"%\((\w+)\)", cls.template)), chinese


def test_common_job_errors_in_chinese():
    zh = _gettext("zh_CN")
    assert CacheFull("/cache", "2 GiB", "1 GiB").translate(zh) == "缓存目录 /cache 空间不足：需要 2 GiB，可用 1 GiB"
    assert ProjectNotFound("设计稿").translate(zh) == "未知的项目：设计稿"
    assert "/srv/a" in SourceMissing("/srv/a", "No such file").translate(zh)
    assert "磁带机" in TapeError("vtape0", "x").translate(zh)


def test_a_translation_that_does_not_fit_its_values_falls_back_to_english():
    error = DestinationError("/backups", "disk full")
    assert error.translate(lambda template: "坏的 %(nope)s 翻译 %d") == str(error)


def test_positional_and_named_values_and_literal_percent():
    assert str(CacheFull(path="/c", needed="1 B", available="0 B")) == str(CacheFull("/c", "1 B", "0 B"))
    assert str(ValidationError(N_("100% sure"))) == "100% sure"  # no values: no %-formatting
    with pytest.raises(TypeError):
        JobNotFound(1, 2)


@pytest.mark.parametrize(("error", "code"), [
    (ValidationError(N_("bad")), 2), (ProjectNotFound("p"), 3), (JobNotFound(7), 3), (UnknownDrive("x", "y"), 3),
    (UnknownTape("T1", ""), 3), (AlreadyQueued("p", 1), 4), (DriveBusy("d", ""), 4), (ConflictError(N_("c")), 4),
    (StageBackupError(N_("other")), 1), (CacheFull("/c", "1", "0"), 1),
])
def test_exit_codes(error, code):
    assert error.exit_code == code
