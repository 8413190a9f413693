"""The admin CLI as operators and scripts use it: exit codes, one-line errors, JSON shapes."""

import json
import os

import pytest

from stagebackup.extensions import db
from stagebackup.models import AuditEvent


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_text("a")
    return src


def invoke(runner, *args):
    return runner.invoke(args=list(args))


def add(runner, tmp_path, tree, name="设计稿", *extra):
    return invoke(runner, "projects", "add", name, "--source", str(tree), "--dest-dir", str(tmp_path / "dest"),
                  "--exclude", "*.tmp", "--exclude", "cache/", *extra)


def test_project_lifecycle(runner, tmp_path, tree):
    result = add(runner, tmp_path, tree)
    assert result.exit_code == 0, result.output
    listed = json.loads(invoke(runner, "projects", "list", "--json").output)
    assert isinstance(listed, list) and [p["name"] for p in listed] == ["设计稿"]
    shown = json.loads(invoke(runner, "projects", "show", "设计稿", "--json").output)
    assert shown["sources"] == [str(tree)] and shown["excludes"] == ["*.tmp", "cache/"]
    assert shown["destination"] == {"kind": "directory", "path": str(tmp_path / "dest")}
    assert shown["format"] == "tgz" and shown["level"] == 6
    assert invoke(runner, "projects", "remove", "设计稿").exit_code == 0
    assert json.loads(invoke(runner, "projects", "list", "--json").output) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "/definitely/not/here", "--dest-dir", "/tmp/x"], "source /definitely/not/here does not exist"),
        (["--source", "{tree}", "--dest-dir", "{tree}/backups"], "is inside source"),
        (["--source", "{tree}", "--dest-dir", "/tmp/x", "--level", "12"], "0<=x<=9"),
        (["--source", "{tree}"], "a destination is needed"),
        (["--source", "{tree}", "--dest-dir", "/tmp/x", "--dest-tape", "vtape0"], "not both"),
        (["--source", "{tree}", "--dest-tape", "nst9"], "unknown tape drive 'nst9'"),
        (["--source", "{tree}", "--dest-tape", "vtape0", "--mode", "sync"], "cannot write to tape"),
        (["--source", "{tree}", "--dest-dir", "/tmp/x", "--group-max-bytes", "10"], "at least 1 MiB (1048576 bytes)"),
        (["--source", "{tree}", "--dest-dir", "/tmp/x", "--password-stdin"], "empty password"),
        (["--source", "{tree}", "--source", "{tree}/sub", "--dest-dir", "/tmp/x"], "sources overlap"),
        (["--source", "{tree}", "--dest-dir", "/tmp/x", "--format", "zip"], "Invalid value for '--format'"),
        (["--dest-dir", "/tmp/x"], "Missing option '--source'"),
    ],
)
def test_bad_project_input_is_a_one_line_error(runner, tree, args, message):
    args = [a.format(tree=tree) for a in args]
    result = invoke(runner, "projects", "add", "p", *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert json.loads(invoke(runner, "projects", "list", "--json").output) == []


def test_bad_names_are_refused(runner, tmp_path, tree):
    assert add(runner, tmp_path, tree, "   ").exit_code != 0
    assert "control characters" in add(runner, tmp_path, tree, "a\x07b").output
    assert "not valid UTF-8" in add(runner, tmp_path, tree, "bad\udcffname").output
    assert add(runner, tmp_path, tree, "dup").exit_code == 0
    result = add(runner, tmp_path, tree, "dup")
    assert result.exit_code == 4 and "already exists" in result.output  # conflict


def test_jobs_run_list_show_cancel(runner, app, tmp_path, tree):
    add(runner, tmp_path, tree)
    result = invoke(runner, "jobs", "run", "设计稿", "--remark", "首次全量", "--json")
    assert result.exit_code == 0, result.output
    queued = json.loads(result.output)
    assert queued == {"id": queued["id"], "status": "queued"}

    again = invoke(runner, "jobs", "run", "设计稿")
    assert again.exit_code == 4 and "already has a queued job" in again.output  # conflict

    listed = json.loads(invoke(runner, "jobs", "list", "--json").output)
    assert [j["id"] for j in listed] == [queued["id"]]
    shown = json.loads(invoke(runner, "jobs", "show", str(queued["id"]), "--json").output)
    for key in ("id", "project", "status", "progress", "remark", "stage_steps", "error", "archives", "log"):
        assert key in shown
    assert shown["remark"] == "首次全量" and shown["status"] == "queued" and shown["archives"] == []
    assert [s["state"] for s in shown["stage_steps"]] == ["pending"] * 4

    assert invoke(runner, "jobs", "cancel", str(queued["id"])).exit_code == 0
    assert json.loads(invoke(runner, "jobs", "show", str(queued["id"]), "--json").output)["status"] == "cancelled"
    ended = invoke(runner, "jobs", "cancel", str(queued["id"]))
    assert ended.exit_code == 4 and "had already finished" in ended.output  # conflict
    actions = [e.action for e in db.session.query(AuditEvent).order_by(AuditEvent.id)]
    assert actions == ["project.create", "job.run", "job.cancel"]
    assert db.session.query(AuditEvent).filter_by(action="job.run").one().remark == "首次全量"


def test_unknown_things_are_clear_errors(runner):
    assert "unknown project: nope" in invoke(runner, "jobs", "run", "nope").output
    assert "unknown project: \\xff" in invoke(runner, "jobs", "run", "\udcff").output
    assert "unknown job: 999" in invoke(runner, "jobs", "show", "999").output
    for bad_id in ("abc", "0", "99999999999999999999999"):
        result = invoke(runner, "jobs", "show", bad_id)
        assert result.exit_code == 2 and "Invalid value" in result.output
    assert invoke(runner, "jobs", "list", "--status", "bogus").exit_code == 2
    assert "unknown project: nope" in invoke(runner, "projects", "remove", "nope").output


@pytest.mark.parametrize(("args", "option"), [
    (["projects", "add", "p", "--source", "/tmp", "--dest-dir", "/srv/x", "--group-max-bytes", "9" * 23],
     "--group-max-bytes"),
    (["projects", "add", "p", "--source", "/tmp", "--dest-dir", "/srv/x", "--group-max-bytes", "-1"],
     "--group-max-bytes"),
    (["projects", "add", "p", "--source", "/tmp", "--dest-dir", "/srv/x", "--level", "9" * 23], "--level"),
    (["jobs", "list", "--limit", "9" * 23], "--limit"),
    (["jobs", "list", "--limit", "0"], "--limit"),
    (["jobs", "list", "--limit", "ten"], "--limit"),
    (["tape", "load", "vtape0", "BIG", "--capacity", "9" * 23], "--capacity"),
    (["tape", "read", "vtape0", "--file", "9" * 23], "--file"),
    (["tape", "verify", "vtape0", "--file", "-1"], "--file"),
])
def test_integer_options_out_of_range_are_usage_errors(runner, args, option):
    result = invoke(runner, *args)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, OverflowError)


def test_projects_list_shows_a_tape_destination(runner, tree):
    assert invoke(runner, "projects", "add", "磁带", "--source", str(tree), "--dest-tape", "vtape0",
                  "--pool", "offsite").exit_code == 0
    result = invoke(runner, "projects", "list")
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("磁带  [archive/tgz] -> tape vtape0 (pool offsite)")


def test_project_with_an_active_job_cannot_be_removed(runner, tmp_path, tree):
    add(runner, tmp_path, tree)
    invoke(runner, "jobs", "run", "设计稿")
    result = invoke(runner, "projects", "remove", "设计稿")
    assert result.exit_code == 4 and "cancel it first" in result.output


def test_an_overlong_remark_is_refused(runner, tmp_path, tree):
    add(runner, tmp_path, tree)
    result = invoke(runner, "jobs", "run", "设计稿", "--remark", "x" * 2001)
    assert result.exit_code == 2 and "remark is longer than 2000" in result.output
    assert "not valid UTF-8" in invoke(runner, "jobs", "run", "设计稿", "--remark", "\udcfe").output
    assert json.loads(invoke(runner, "jobs", "list", "--json").output) == []


def test_a_project_password_is_stored_encrypted_and_never_shown(runner, app, tmp_path, tree):
    from stagebackup import keys
    from stagebackup.models import Project, Secret

    result = runner.invoke(args=["projects", "add", "secret", "--source", str(tree), "--dest-dir",
                                 str(tmp_path / "d"), "--format", "7z", "--password-stdin", "--json"],
                           input="pässwörd-42\nignored second line\n")
    assert result.exit_code == 0, result.output
    assert "pässwörd" not in result.output and json.loads(result.output)["encrypted"] is True
    db.session.rollback()
    project = db.session.scalar(db.select(Project).where(Project.name == "secret"))
    secret = db.session.get(Secret, project.secret_id)
    assert b"p\xc3\xa4ssw" not in secret.ciphertext
    assert keys.reveal(secret.id) == "pässwörd-42"
    secret_id, data_dir = secret.id, app.config["DATA_DIR"]
    db.session.rollback()
    assert oct(os.stat(os.path.join(data_dir, "master.key")).st_mode & 0o777) == "0o600"
    old_key = open(os.path.join(data_dir, "master.key"), "rb").read()
    shown = invoke(runner, "projects", "show", "secret").output
    assert "pässwörd" not in shown

    rotated = invoke(runner, "keys", "rotate")
    assert rotated.exit_code == 0 and "1 stored password(s) re-encrypted" in rotated.output
    assert open(os.path.join(data_dir, "master.key"), "rb").read() != old_key
    assert not os.path.exists(os.path.join(data_dir, "master.key.new"))
    db.session.rollback()
    assert keys.reveal(secret_id) == "pässwörd-42"


def test_a_worker_for_an_unknown_drive_is_refused(runner):
    result = runner.invoke(args=["worker", "run", "--drive", "nst9", "--burst"])
    assert result.exit_code != 0 and "unknown drive 'nst9'" in result.output and "vtape0" in result.output
