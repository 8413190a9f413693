"""``flask db backup --to-tape``: the catalog copy appended to a labelled (virtual) tape, read back with
``flask tape read``, restored into an empty data directory, and recognised by ``flask tape scan``."""

from __future__ import annotations

import json
import shutil
import tarfile

from sqlalchemy import select

from stagebackup import keys
from stagebackup.extensions import db
from stagebackup.models import Project
from stagebackup.tape_models import TapeFile
from tests.conftest import make_app

from .web_support import make_project

PASSPHRASE = "correct horse battery staple"


def _app(tmp_path):
    return make_app(tmp_path, VTAPE_DIR=str(tmp_path / "vtape"))  # the tapes outlive the data directory


def _cli(app, *args, input=None):
    result = app.test_cli_runner().invoke(args=list(args), input=input)
    assert result.exit_code == 0, result.output
    return result.output


def test_catalog_copy_on_tape_restores_into_an_empty_data_directory(tmp_path):
    app = _app(tmp_path)
    with app.app_context():
        _cli(app, "tape", "label", "vtape0", "CAT001")
        make_project(tmp_path, "加密项目", password="s3cret")
        out = _cli(app, "db", "backup", "--to-tape", "vtape0", "--with-key-sealed", "--json", input=PASSPHRASE + "\n")
        copy = json.loads(out[out.index("{"):])
        assert (copy["label"], copy["file_number"]) == ("CAT001", 1)
        row = db.session.scalar(select(TapeFile).where(TapeFile.file_number == 1))
        assert (row.kind, row.void, row.sha256) == ("catalog", False, copy["sha256"])
        tar_path = tmp_path / "copy.tar"
        app.test_cli_runner().invoke(args=["tape", "read", "vtape0", "--file", "1", "--out", str(tar_path)])
        db.session.remove()
        db.engine.dispose()
    with tarfile.open(tar_path) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    shutil.rmtree(tmp_path / "data")  # the server is lost; the tape is not

    app = _app(tmp_path)
    with app.app_context():
        restored = app.test_cli_runner().invoke(
            args=["db", "restore", str(tmp_path / "unpacked" / copy["folder_name"]), "--key-passphrase-stdin"],
            input=PASSPHRASE + "\n")
        assert restored.exit_code == 0, restored.output
        project = db.session.scalar(select(Project).where(Project.name == "加密项目"))
        assert keys.reveal(project.secret_id) == "s3cret"
        db.session.remove()
        db.engine.dispose()


def test_scan_recognises_a_catalog_copy_and_a_full_or_unknown_tape_is_refused(tmp_path):
    app = _app(tmp_path)
    with app.app_context():
        refused = app.test_cli_runner().invoke(args=["db", "backup", "--to-tape", "vtape0"])
        assert refused.exit_code != 0 and "no label" in refused.output.lower()
        _cli(app, "tape", "label", "vtape0", "CAT001")
        _cli(app, "db", "backup", "--to-tape", "vtape0")
        db.session.execute(TapeFile.__table__.delete().where(TapeFile.file_number == 1))
        db.session.commit()
        scanned = _cli(app, "tape", "scan", "vtape0")
        assert "file 1: a catalog copy" in scanned
        row = db.session.scalar(select(TapeFile).where(TapeFile.file_number == 1))
        assert (row.kind, row.void) == ("catalog", False)
        assert "no session index names them" not in scanned
        both = app.test_cli_runner().invoke(args=["db", "backup", "--to-tape", "vtape0", "--to", str(tmp_path)])
        assert both.exit_code == 2
        db.session.remove()
        db.engine.dispose()


def test_a_tape_project_with_the_option_appends_a_catalog_copy_after_each_session(app, tmp_path):
    from stagebackup.tape import admin

    from .test_tape_backup import errors_of, run_one, tape_project

    admin.label(app.config, "vtape0", "TAPE001")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a\n")
    project = tape_project("带目录库副本", [tmp_path / "src"], catalog_copy_to_tape=True)
    assert project.catalog_copy_to_tape
    job = run_one(app, project)
    assert job.status == "succeeded", errors_of(job.id)
    files = db.session.scalars(select(TapeFile).order_by(TapeFile.file_number))
    kinds = [(f.file_number, f.kind, f.void) for f in files]
    assert kinds == [(0, "label", False), (1, "archive", False), (2, "index", False), (3, "catalog", False)]
    plain = tape_project("无副本", [tmp_path / "src"])
    assert run_one(app, plain).status == "succeeded"  # a project without the option appends no copy
    later = db.session.scalars(select(TapeFile).where(TapeFile.file_number > 3).order_by(TapeFile.file_number))
    assert [f.kind for f in later] == ["archive", "index"]
