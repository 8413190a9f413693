"""The read limit (读取限速) through every entry point: the form and the CLI take MiB/s (a decimal too, empty or 0
for no limit), the JSON file bytes per second; a bad value is refused with a message naming it and changes
nothing."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from stagebackup import project_checks, projects, transfer
from stagebackup.extensions import db
from stagebackup.models import AuditEvent, Project

from .web_support import csrf_token, make_project

MIB = 1 << 20
RANGE_ZH = "读取限速必须在 0（不限速）到 100000 MiB/s（104857600000 字节/秒）之间"
RANGE_EN = "the read limit must be between 0 (no limit) and 100000 MiB/s (104857600000 bytes per second)"


def _form(tmp_path, **overrides) -> dict:
    src = tmp_path / "srv"
    src.mkdir(exist_ok=True)
    return {"name": "设计稿", "sources": f"{src}\n", "mode": "archive", "archive_format": "tgz", "level": "6",
            "sync_strategy": "overwrite", "dest_kind": "directory", "dest_dir": str(tmp_path / "backups"),
            "dest_pool": "default", **overrides}


def _shown_limit(client, project_id: int) -> str:
    html = client.get(f"/backup/projects/{project_id}/edit").get_data(as_text=True)
    return re.search(r'<input[^>]*name="read_limit_mib"[^>]*value="([^"]*)"', html).group(1)


def _limit(name="设计稿") -> int | None:
    db.session.expire_all()
    return projects.get_by_name(name).read_limit_bytes_s


def test_the_form_takes_mib_per_second_and_shows_them_back(client, tmp_path):
    token = csrf_token(client)
    response = client.post("/backup/projects/new",
                           data={**_form(tmp_path, read_limit_mib=" 0.5 "), "csrf_token": token})
    assert response.status_code == 302
    project_id = projects.get_by_name("设计稿").id
    assert _limit() == MIB // 2 and _shown_limit(client, project_id) == "0.5"
    card = client.get("/backup").get_data(as_text=True).split(f'id="project-{project_id}"')[1]
    assert '<span class="project-read-limit">读取限速 512.0 KiB/s</span>' in card  # the project card says it
    for typed, stored, shown in [("20", 20 * MIB, "20"), ("0.3", 314573, "0.3"), ("", None, ""), ("0", None, "")]:
        response = client.post(f"/backup/projects/{project_id}/edit",
                               data={**_form(tmp_path, read_limit_mib=typed), "csrf_token": token})
        assert response.status_code == 302, typed
        assert _limit() == stored and _shown_limit(client, project_id) == shown, typed
    assert "project-read-limit" not in client.get("/backup").get_data(as_text=True)  # no limit: nothing said


@pytest.mark.parametrize(("typed", "message"), [
    ("-1", RANGE_ZH),
    ("100000.5", RANGE_ZH),
    ("1e9", RANGE_ZH),
    ("fast", "读取限速“fast”不是数字（单位 MiB/s，例如 20 或 0.5）"),
    ("1,5", "读取限速“1,5”不是数字"),
    ("NaN", "读取限速“NaN”不是数字"),
])
def test_the_form_refuses_a_bad_limit_on_its_field_and_saves_nothing(client, tmp_path, typed, message):
    token = csrf_token(client)
    project_id = make_project(tmp_path, read_limit_bytes_s=2 * MIB).id
    audit_rows = db.session.scalar(select(func.count(AuditEvent.id)))
    response = client.post(f"/backup/projects/{project_id}/edit",
                           data={**_form(tmp_path, read_limit_mib=typed, level="3"), "csrf_token": token})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    field = re.search(r'<div class="mb-3 field-read_limit_mib">(.*?)</div>\s*<div class="mb-3', html, re.S).group(1)
    assert message in field, field
    db.session.expire_all()
    project = db.session.get(Project, project_id)
    assert (project.read_limit_bytes_s, project.compression_level) == (2 * MIB, 6)
    assert db.session.scalar(select(func.count(AuditEvent.id))) == audit_rows


def test_the_english_page_shows_the_english_message(client, tmp_path):
    client.set_cookie("lang", "en")
    response = client.post("/backup/projects/new",
                           data={**_form(tmp_path, read_limit_mib="-2"), "csrf_token": csrf_token(client)})
    assert response.status_code == 422
    assert "The read limit must be between 0 (no limit) and 100000 MiB/s" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Project.id))) == 0


def test_validate_refuses_a_limit_out_of_range_or_not_an_integer(app, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for bad in (-1, project_checks.READ_LIMIT_MAX_MIB * MIB + 1, 1.5, "1048576", True):
        spec = project_checks.ProjectSpec(name="p", sources=[str(src)], dest_dir=str(tmp_path / "d"),
                                          read_limit_bytes_s=bad)
        with pytest.raises(project_checks.ValidationError) as raised:
            project_checks.validate(spec)
        assert (raised.value.field, str(raised.value)) == ("read_limit_mib", RANGE_EN), bad


def test_the_cli_takes_mib_per_second_and_edit_changes_only_what_is_given(runner, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    result = runner.invoke(args=["projects", "add", "p", "--source", str(src), "--dest-dir", str(tmp_path / "d"),
                                 "--read-limit-mib", "0.5", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["read_limit_bytes_s"] == MIB // 2
    assert runner.invoke(args=["projects", "edit", "p", "--level", "3"]).exit_code == 0
    assert _limit("p") == MIB // 2  # not given: kept
    assert runner.invoke(args=["projects", "edit", "p", "--read-limit-mib", "25"]).exit_code == 0
    assert _limit("p") == 25 * MIB
    assert runner.invoke(args=["projects", "edit", "p", "--read-limit-mib", "0"]).exit_code == 0
    assert _limit("p") is None


@pytest.mark.parametrize(("typed", "message"), [
    ("-1", RANGE_EN),
    ("100001", RANGE_EN),
    ("abc", "the read limit 'abc' is not a number of MiB/s (for example 20 or 0.5)"),
    ("inf", "the read limit 'inf' is not a number of MiB/s"),
])
def test_the_cli_refuses_a_bad_limit_and_changes_nothing(runner, tmp_path, typed, message):
    src = tmp_path / "src"
    src.mkdir()
    add = ["projects", "add", "p", "--source", str(src), "--dest-dir", str(tmp_path / "d")]
    refused = runner.invoke(args=[*add, "--read-limit-mib", typed])
    assert refused.exit_code == 2 and message in refused.output, refused.output
    assert "Traceback" not in refused.output
    assert db.session.scalar(select(func.count(Project.id))) == 0
    assert runner.invoke(args=[*add, "--read-limit-mib", "3"]).exit_code == 0
    refused = runner.invoke(args=["projects", "edit", "p", "--read-limit-mib", typed, "--level", "1"])
    assert refused.exit_code == 2 and message in refused.output, refused.output
    db.session.expire_all()
    project = projects.get_by_name("p")
    assert (project.read_limit_bytes_s, project.compression_level) == (3 * MIB, 6)


def _import(runner, tmp_path, limit, *, on_conflict="replace"):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    entry = {"name": "p", "sources": [str(src)], "dest_dir": str(tmp_path / "d")}
    if limit != "missing":
        entry["read_limit_bytes_s"] = limit
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"format": "stagebackup-projects", "version": 1, "projects": [entry]}))
    return runner.invoke(args=["projects", "import", str(path), "--on-conflict", on_conflict])


@pytest.mark.parametrize(("limit", "message"), [
    (-1, f"field read_limit_mib: {RANGE_EN}"),
    (project_checks.READ_LIMIT_MAX_MIB * MIB + 1, f"field read_limit_mib: {RANGE_EN}"),
    (1.5, "field read_limit_bytes_s: Input should be a valid integer"),
    ("1048576", "field read_limit_bytes_s: Input should be a valid integer"),
    (2**64, "field read_limit_bytes_s: Input should be less than or equal to"),
])
def test_an_import_refuses_a_bad_limit_and_changes_nothing(runner, tmp_path, limit, message):
    assert _import(runner, tmp_path, 7 * MIB).exit_code == 0
    before = transfer.dumps(transfer.export_document())
    result = _import(runner, tmp_path, limit)
    assert result.exit_code == 2 and f"project #1 (p), {message}" in result.output, result.output
    db.session.expire_all()
    assert transfer.dumps(transfer.export_document()) == before and _limit("p") == 7 * MIB


def test_an_import_takes_bytes_per_second_and_0_or_nothing_is_no_limit(runner, tmp_path):
    for limit, stored in [(MIB + 1, MIB + 1), (0, None), (3 * MIB, 3 * MIB), ("missing", None), (None, None)]:
        result = _import(runner, tmp_path, limit)
        assert result.exit_code == 0, (limit, result.output)
        assert _limit("p") == stored, limit


def test_the_largest_limit_fits_the_column_on_every_database(any_db_app, tmp_path):
    """100000 MiB/s is past a 32-bit INTEGER: the column is a BIGINT on SQLite, PostgreSQL and MariaDB alike."""
    largest = project_checks.READ_LIMIT_MAX_MIB * MIB
    make_project(tmp_path, "fast", read_limit_bytes_s=largest)
    db.session.remove()
    assert _limit("fast") == largest
