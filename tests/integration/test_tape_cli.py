"""``flask tape …`` on the virtual drive: what an operator types and reads."""

from __future__ import annotations

import json

from stagebackup.extensions import db
from stagebackup.tape.virtual import VirtualHandle
from stagebackup.tape_models import Drive


def invoke(runner, *args):
    return runner.invoke(args=["tape", *args], catch_exceptions=False)


def test_out_of_the_box_drive_has_a_blank_cartridge(runner):
    result = invoke(runner, "status", "vtape0", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["online"] and not data["door_open"] and data["label"] is None and data["block_size"] == 0
    assert "has no label" in data["message"]
    row = db.session.get(Drive, "vtape0")
    assert row.online and row.loaded_label is None and "has no label" in row.message


def test_label_refuses_a_labelled_tape_without_force(runner):
    assert invoke(runner, "label", "vtape0", "TAPE001", "--pool", "offsite").exit_code == 0
    again = invoke(runner, "label", "vtape0", "TAPE009")
    assert again.exit_code == 4  # conflict
    assert "already labelled TAPE001: add --force" in again.output
    forced = invoke(runner, "label", "vtape0", "TAPE009", "--force")
    assert forced.exit_code == 0, forced.output
    tapes = json.loads(invoke(runner, "list", "--json").output)
    states = {t["label"].split("~")[0]: t["state"] for t in tapes}
    assert states == {"TAPE001": "retired", "TAPE009": "labelled"}
    status = json.loads(invoke(runner, "status", "vtape0", "--json").output)
    assert (status["label"], status["pool"]) == ("TAPE009", "default")


def test_files_read_and_verify(runner, tmp_path):
    invoke(runner, "label", "vtape0", "TAPE001")
    files = json.loads(invoke(runner, "files", "vtape0", "--json").output)
    assert [(f["label"], f["file_number"], f["kind"], f["job"]) for f in files] == [("TAPE001", 0, "label", None)]
    assert set(files[0]) >= {"label", "file_number", "kind", "job", "bytes", "sha256"}
    out = tmp_path / "label.json"
    result = runner.invoke(args=["tape", "read", "vtape0", "--file", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_bytes())["label"] == "TAPE001"
    assert runner.invoke(args=["tape", "read", "vtape0", "--file", "0", "--out", str(out)]).exit_code == 1
    verify = invoke(runner, "verify", "vtape0", "--file", "0")
    assert verify.exit_code == 0 and "OK" in verify.output
    missing = invoke(runner, "verify", "vtape0", "--file", "5")
    assert missing.exit_code == 3 and "not in the catalog" in missing.output


def test_operator_errors(runner, app):
    unknown = invoke(runner, "status", "lto9")
    assert unknown.exit_code == 3 and "unknown tape drive lto9 (configured drives: vtape0)" in unknown.output
    assert invoke(runner, "eject", "vtape0").exit_code == 0
    empty = invoke(runner, "label", "vtape0", "X1")
    assert empty.exit_code == 1 and "no tape in drive vtape0" in empty.output
    invoke(runner, "load", "vtape0", "WP1", "--write-protect")
    wp = invoke(runner, "label", "vtape0", "WP1")
    assert wp.exit_code == 1 and "write-protected" in wp.output
    invoke(runner, "load", "vtape0", "WP1", "--no-write-protect")
    bad = invoke(runner, "label", "vtape0", "bad label!")
    assert bad.exit_code == 2 and "invalid tape label" in bad.output
    db.session.rollback()
    with VirtualHandle(app.config["VTAPE_DIR"], "vtape0"):  # another process has the drive open
        busy = invoke(runner, "rewind", "vtape0")
    assert busy.exit_code == 4 and "drive vtape0 is busy: another process has it open" in busy.output


def test_foreign_tape_is_recognised(runner, app):
    invoke(runner, "status", "vtape0")  # first use sets the drive up with a blank cartridge
    with VirtualHandle(app.config["VTAPE_DIR"], "vtape0") as tape:
        tape.write(b"not a label" * 100)
        tape.write_filemarks(1)
    status = json.loads(invoke(runner, "status", "vtape0", "--json").output)
    assert "not written by StageBackup" in status["message"]
    refused = invoke(runner, "label", "vtape0", "T1")
    assert refused.exit_code == 1 and "not written by StageBackup" in refused.output
    assert invoke(runner, "label", "vtape0", "T1", "--force").exit_code == 0
