"""Export and import of project definitions through `flask projects export|import` (real SQLite)."""

from __future__ import annotations

import json
import os

from sqlalchemy import func, select

from stagebackup import keys, project_checks, projects, transfer
from stagebackup.extensions import db
from stagebackup.models import AuditEvent, Project, Secret
from tests.conftest import make_app
from tests.integration.web_support import make_project


def _state() -> tuple:
    """Everything an import may touch: the projects' settings, stored secrets, audit rows."""
    return (transfer.dumps(transfer.export_document()), db.session.scalar(select(func.count(Secret.id))),
            db.session.scalar(select(func.count(AuditEvent.id))))


def _full_projects(tmp_path) -> None:
    """Projects using every setting: archive with rules, encrypted, sync, tape, a source that is not UTF-8."""
    make_project(tmp_path, "设计稿", includes=["*.ai"], excludes=["*.tmp", "cache/"], archive_format="7z", level=9,
                 group_max_bytes=64 << 20, job_timeout_s=3600, read_limit_bytes_s=(1 << 20) // 2 + 1,
                 schedule_cron="0 2 * * *",
                 schedule_timezone="Asia/Shanghai", schedule_enabled=False)
    make_project(tmp_path, "财务", password="s3cret", dest_dir=str(tmp_path / "dest-enc"))
    make_project(tmp_path, "mirror", mode="sync", sync_strategy="incremental",
                 dest_dir=str(tmp_path / "mirror"))
    make_project(tmp_path, "tape", dest_dir=None, dest_drive="vtape0", dest_pool="weekly", verify_after_write=False)
    odd = os.fsencode(tmp_path) + b"/latin1-\xe9t\xe9"
    os.mkdir(odd)
    projects.create(project_checks.ProjectSpec(name="odd", sources=[os.fsdecode(odd)],
                                         dest_dir=os.fsdecode(os.fsencode(tmp_path) + b"/dest-\xff")), actor="test")


def test_export_holds_every_setting_and_no_secret(app, runner, tmp_path):
    _full_projects(tmp_path)
    result = runner.invoke(args=["projects", "export"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert (document["format"], document["version"]) == ("stagebackup-projects", 1)
    by_name = {p["name"]: p for p in document["projects"]}
    assert set(by_name) == {"设计稿", "财务", "mirror", "tape", "odd"}
    assert by_name["设计稿"]["excludes"] == ["*.tmp", "cache/"] and by_name["设计稿"]["level"] == 9
    assert by_name["设计稿"]["job_timeout_s"] == 3600 and by_name["设计稿"]["group_max_bytes"] == 64 << 20
    assert by_name["设计稿"]["read_limit_bytes_s"] == (1 << 20) // 2 + 1
    assert by_name["财务"]["read_limit_bytes_s"] is None
    design = by_name["设计稿"]
    assert (design["schedule_cron"], design["schedule_timezone"], design["schedule_enabled"]) == (
        "0 2 * * *", "Asia/Shanghai", False)
    assert by_name["财务"]["password_required"] is True and "password_required" not in by_name["设计稿"]
    assert "s3cret" not in result.output and "secret_id" not in result.output
    assert by_name["tape"]["dest_drive"] == "vtape0" and by_name["tape"]["dest_pool"] == "weekly"
    assert by_name["mirror"]["sync_strategy"] == "incremental"
    assert "allow_mass_delete" not in by_name["mirror"]  # confirmed run by run, never a standing setting
    # Bytes that are not UTF-8 travel as base64 of the exact bytes.
    assert by_name["odd"]["sources"] == [{"b64": __import__("base64").b64encode(
        os.fsencode(tmp_path) + b"/latin1-\xe9t\xe9").decode()}]
    only = json.loads(runner.invoke(args=["projects", "export", "--project", "tape"]).output)
    assert [p["name"] for p in only["projects"]] == ["tape"]
    missing = runner.invoke(args=["projects", "export", "--project", "nope"])
    assert missing.exit_code != 0 and "unknown project: nope" in missing.output


def test_round_trip_into_an_empty_database(app, runner, tmp_path):
    _full_projects(tmp_path)
    exported = tmp_path / "projects.json"
    assert runner.invoke(args=["projects", "export", str(exported)]).exit_code == 0
    other = make_app(tmp_path / "other")
    with other.app_context():
        result = other.test_cli_runner().invoke(
            args=["projects", "import", str(exported), "--password", "财务"], input="typed-again\n")
        assert result.exit_code == 0, result.output
        assert "imported: 5 create" in result.output
        again = other.test_cli_runner().invoke(args=["projects", "export"])
        assert again.output == exported.read_text(encoding="utf-8")
        assert projects.get_by_name("设计稿").read_limit_bytes_s == (1 << 20) // 2 + 1
        enc = db.session.scalar(select(Project).where(Project.name == "财务"))
        assert keys.reveal(enc.secret_id) == "typed-again"
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "project.import"))
        assert event.details["create"] == 5 and event.details["skip"] == 0
        db.session.remove()
        db.engine.dispose()


def test_encrypted_project_without_its_password_is_refused(app, runner, tmp_path):
    make_project(tmp_path, "财务", password="s3cret")
    exported = tmp_path / "p.json"
    runner.invoke(args=["projects", "export", str(exported)])
    projects.remove("财务", actor="test")
    before = _state()
    dry = runner.invoke(args=["projects", "import", str(exported), "--dry-run"])
    assert dry.exit_code == 0 and "needs its password" in dry.output and "1 need their passwords" in dry.output
    result = runner.invoke(args=["projects", "import", str(exported)])
    assert result.exit_code != 0
    assert "project #1 (财务), field password: the password is needed" in result.output
    assert _state() == before
    unknown = runner.invoke(args=["projects", "import", str(exported), "--password", "other"], input="x\n")
    assert "a password was given for other" in unknown.output and _state() == before


def test_conflict_policies(app, runner, tmp_path):
    make_project(tmp_path, "设计稿", level=3)
    exported = tmp_path / "p.json"
    runner.invoke(args=["projects", "export", str(exported)])
    document = json.loads(exported.read_text())
    document["projects"][0]["level"] = 8
    exported.write_text(json.dumps(document))

    skipped = runner.invoke(args=["projects", "import", str(exported), "--on-conflict", "skip"])
    assert "skip (exists): 设计稿" in skipped.output and projects.get_by_name("设计稿").compression_level == 3

    renamed = runner.invoke(args=["projects", "import", str(exported), "--on-conflict", "rename"])
    assert "设计稿 -> 设计稿 (2)" in renamed.output
    assert projects.get_by_name("设计稿 (2)").compression_level == 8
    assert projects.get_by_name("设计稿").compression_level == 3

    replaced = runner.invoke(args=["projects", "import", str(exported), "--on-conflict", "replace", "--json"])
    assert json.loads(replaced.output)["projects"][0]["action"] == "replace"
    db.session.expire_all()
    assert projects.get_by_name("设计稿").compression_level == 8
    change = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "project.update")).all()[-1]
    assert change.details["changes"] == {"level": [3, 8]} and change.project == "设计稿"


def test_missing_fields_take_defaults_and_unknown_fields_are_reported(app, runner, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    hand_written = {"format": "stagebackup-projects", "version": 1, "comment": "by hand", "projects": [
        {"name": "最小", "sources": [str(src)], "dest_dir": str(tmp_path / "d"), "colour": "blue"}]}
    path = tmp_path / "hand.json"
    path.write_text(json.dumps(hand_written, ensure_ascii=False), encoding="utf-8")
    result = runner.invoke(args=["projects", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "unknown fields ignored: colour" in result.output
    assert "unknown top-level fields ignored: comment" in result.output
    project = projects.get_by_name("最小")
    defaults = project_checks.ProjectSpec(name="x", sources=[])
    assert (project.mode, project.archive_format, project.compression_level, project.verify_after_write) == (
        defaults.mode, defaults.archive_format, defaults.level, defaults.verify_after_write)


def test_every_error_names_the_project_and_the_field(app, runner, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    good = {"name": "好", "sources": [str(src)], "dest_dir": str(tmp_path / "d")}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"format": "stagebackup-projects", "version": 1, "projects": [
        good, {**good, "name": "坏", "level": "6"}, {**good, "name": "远", "sources": ["/does/not/exist"]},
        {**good, "name": "好"},
    ]}), encoding="utf-8")
    before = _state()
    result = runner.invoke(args=["projects", "import", str(path)])
    assert result.exit_code != 0
    assert "project #2 (坏), field level: Input should be a valid integer" in result.output
    assert "project #3 (远), field sources: source /does/not/exist does not exist" in result.output
    assert "project #4 (好), field name: the name is also used by project #1" in result.output
    assert _state() == before
