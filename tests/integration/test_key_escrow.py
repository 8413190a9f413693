"""Key escrow: ``flask keys export-paper`` writes the master key and project passwords as a sheet (text and
an HTML page with a QR code), ``flask keys import`` brings them back after the key file is lost, and admins
see where the key is until they confirm it is saved."""

from __future__ import annotations

import re
import stat

from sqlalchemy import select

from stagebackup import escrow, keys
from stagebackup.extensions import db
from stagebackup.models import Project
from tests.conftest import make_app

from .web_support import csrf_token, make_project

BANNER = 'id="master-key-banner"'


def _export(app, tmp_path, answer="y\n"):
    return app.test_cli_runner().invoke(args=["keys", "export-paper", "--to", str(tmp_path / "sheet")], input=answer)


def test_export_asks_first_then_writes_a_private_sheet_with_the_key_and_passwords(app, tmp_path):
    make_project(tmp_path, "加密项目", password="pässwörd 秘密")
    refused = _export(app, tmp_path, answer="n\n")
    assert refused.exit_code == 1 and not (tmp_path / "sheet").exists()
    done = _export(app, tmp_path)
    assert done.exit_code == 0, done.output
    key = (tmp_path / "data" / "master.key").read_text().strip()
    [text_file] = (tmp_path / "sheet").glob("*.txt")
    [html_file] = (tmp_path / "sheet").glob("*.html")
    text = text_file.read_text()
    assert f"master-key: {key}" in text
    assert escrow.parse_sheet(text).passwords == [{"project": "加密项目", "password": "pässwörd 秘密"}]
    page = html_file.read_text()
    assert page.count("<svg") == 1 and escrow._qr_svg(f"master-key: {key}") in page
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in (text_file, html_file))
    assert escrow.is_saved()  # exporting is saving


def test_a_lost_key_comes_back_from_the_sheet_and_opens_the_stored_passwords(tmp_path):
    app = make_app(tmp_path)
    with app.app_context():
        secret_id = make_project(tmp_path, "加密项目", password="s3cret").secret_id
        assert _export(app, tmp_path).exit_code == 0
        db.session.remove()
    (tmp_path / "data" / "master.key").unlink()  # lost
    app = make_app(tmp_path)  # starts with a new, different key
    with app.app_context():
        try:
            keys.reveal(secret_id)
            raise AssertionError("the old secret opened with a new key")
        except keys.MasterKeyError:
            pass
        [sheet] = (tmp_path / "sheet").glob("*.txt")
        done = app.test_cli_runner().invoke(args=["keys", "import", str(sheet)])
        assert done.exit_code == 0, done.output
        assert "written to" in done.output
        assert keys.reveal(secret_id) == "s3cret"
        db.session.remove()


def test_import_restores_a_password_the_catalog_lost_and_refuses_to_orphan_a_key_in_use(app, tmp_path):
    make_project(tmp_path, "加密项目", password="s3cret")
    assert _export(app, tmp_path).exit_code == 0
    [sheet] = (tmp_path / "sheet").glob("*.txt")
    project = db.session.scalar(select(Project))
    project.secret_id = None  # e.g. imported from an export, which never carries passwords
    db.session.commit()
    done = app.test_cli_runner().invoke(args=["keys", "import", str(sheet)])
    assert done.exit_code == 0 and "1 project(s): 加密项目" in done.output
    assert keys.reveal(db.session.scalar(select(Project)).secret_id) == "s3cret"

    other = tmp_path / "other.txt"
    other.write_text(sheet.read_text())
    keys.rotate(actor="test")  # the stored passwords now use a key the sheet does not have
    refused = app.test_cli_runner().invoke(args=["keys", "import", str(other)])
    assert refused.exit_code == 4 and "unreadable" in refused.output
    mistyped = tmp_path / "mistyped.txt"
    mistyped.write_text(re.sub(r"master-key: (.)", lambda m: "master-key: " + ("A" if m[1] != "A" else "B"),
                               sheet.read_text()))
    assert app.test_cli_runner().invoke(args=["keys", "import", str(mistyped)]).exit_code == 2


def test_admins_see_where_the_key_is_until_they_confirm_and_again_after_a_rotation(app, client):
    where = app.test_cli_runner().invoke(args=["keys", "where", "--unsaved-only"])
    assert str(tmp_key := escrow.key_path()) in where.output and "export-paper" in where.output
    assert BANNER in client.get("/backup").get_data(as_text=True)
    assert BANNER not in app.test_client(user="operator").get("/backup").get_data(as_text=True)
    response = client.post("/settings/master-key/saved", data={"csrf_token": csrf_token(client),
                                                               "next": "/backup/history"})
    assert response.status_code == 302 and response.location.endswith("/backup/history")
    assert BANNER not in client.get("/backup").get_data(as_text=True)
    assert app.test_cli_runner().invoke(args=["keys", "where", "--unsaved-only"]).output == ""
    assert str(tmp_key) in client.get("/settings").get_data(as_text=True)
    keys.rotate(actor="test")
    assert BANNER in client.get("/backup").get_data(as_text=True)


def test_the_settings_page_adds_tests_and_removes_a_target_without_showing_its_secret(app, client):
    token = csrf_token(client, "/settings")
    client.post("/settings/notifications", data={
        "csrf_token": token, "name": "ops", "url": "json://u:hunter2secret@127.0.0.1:9/hook", "language": "en",
        "events": ["failed", "stale"], "stale_after_hours": "24"})
    page = client.get("/settings").get_data(as_text=True)
    assert "ops" in page and "hunter2secret" not in page and 'id="notification-targets"' in page
    bad = client.post("/settings/notifications", data={"csrf_token": token, "name": "x", "url": "nonsense://"},
                      follow_redirects=True)
    assert bad.status_code == 200 and "Apprise" in bad.get_data(as_text=True)
    target_id = re.search(r"/settings/notifications/(\d+)/test", page)[1]
    tested = client.post(f"/settings/notifications/{target_id}/test", data={"csrf_token": token},
                         follow_redirects=True)
    assert "Connection error" in tested.get_data(as_text=True)
    client.post(f"/settings/notifications/{target_id}/remove", data={"csrf_token": token})
    assert 'id="no-targets"' in client.get("/settings").get_data(as_text=True)
    assert app.test_client(user="operator").get("/settings").status_code == 403
