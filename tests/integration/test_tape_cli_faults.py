"""Every ``flask tape`` command on a cartridge whose folder vanished, a drive that went offline, or a tape
taken out mid-operation: one ``Error: …`` line naming the problem and exit code 1, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stagebackup.extensions import db
from stagebackup.tape import cartridge
from stagebackup.tape.virtual import VirtualHandle
from tests.conftest import make_app

# Every command of cli/tape.py that touches a drive, with the arguments an operator would give.
DRIVE_COMMANDS = [
    ["status", "{drive}"], ["status", "{drive}", "--json"], ["label", "{drive}", "NEW1"],
    ["label", "{drive}", "NEW1", "--force"], ["rewind", "{drive}"], ["eject", "{drive}"], ["load", "{drive}"],
    ["files", "{drive}"], ["read", "{drive}", "--file", "0", "--out", "{tmp}/out.bin"],
    ["verify", "{drive}", "--file", "0"], ["scan", "{drive}"], ["scan", "{drive}", "--json"],
]


def run(runner, args, drive, tmp_path):
    argv = ["tape", *(a.format(drive=drive, tmp=tmp_path) for a in args)]
    result = runner.invoke(args=argv)
    db.session.rollback()
    return result


def assert_one_line_error(result, *expected):
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: "), result.output
    for words in expected:
        assert words in last, result.output


@pytest.fixture
def labelled_cartridge(app, runner) -> Path:
    assert runner.invoke(args=["tape", "label", "vtape0", "TAPE001"]).exit_code == 0
    state = json.loads((Path(app.config["VTAPE_DIR"]) / "drives" / "vtape0.json").read_text())
    return Path(app.config["VTAPE_DIR"]) / "cartridges" / state["cartridge"]


@pytest.mark.parametrize("args", DRIVE_COMMANDS, ids=" ".join)
def test_a_vanished_cartridge(runner, labelled_cartridge, tmp_path, args):
    shutil.rmtree(labelled_cartridge)
    result = run(runner, args, "vtape0", tmp_path)
    if args[0] == "files":  # the catalog knows which tape the drive last held: no device needed
        assert result.exit_code == 0 and "label" in result.output
        return
    assert_one_line_error(result, f"cartridge {labelled_cartridge.name} in virtual drive vtape0 is gone",
                          "flask tape load vtape0 NAME")


def test_after_a_vanished_cartridge_another_one_loads(runner, labelled_cartridge, tmp_path):
    shutil.rmtree(labelled_cartridge)
    loaded = run(runner, ["load", "vtape0", "SPARE"], "vtape0", tmp_path)
    assert loaded.exit_code == 0 and "blank cartridge SPARE loaded" in loaded.output
    assert run(runner, ["label", "vtape0", "TAPE002"], "vtape0", tmp_path).exit_code == 0
    assert run(runner, ["list"], "vtape0", tmp_path).exit_code == 0


@pytest.mark.parametrize("args", DRIVE_COMMANDS, ids=" ".join)
def test_a_real_drive_whose_device_is_gone(tmp_path, args):
    app = make_app(tmp_path, DRIVES={"vtape0": "virtual", "lto0": "/dev/nonexistent-nst0"})
    with app.app_context():
        result = run(app.test_cli_runner(), args, "lto0", tmp_path)
        assert_one_line_error(result, "drive lto0 is offline or not present (No such file or directory)")
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize("args", DRIVE_COMMANDS, ids=" ".join)
def test_a_virtual_drive_whose_directory_is_gone(app, runner, tmp_path, args):
    vtape_dir = Path(app.config["VTAPE_DIR"])
    shutil.rmtree(vtape_dir, ignore_errors=True)
    vtape_dir.write_text("a file where the virtual tapes were")
    result = run(runner, args, "vtape0", tmp_path)
    assert_one_line_error(result, f"virtual drive vtape0 is offline: its directory {vtape_dir} is unusable "
                                  "(Not a directory); check STAGEBACKUP_VTAPE_DIR")
    assert run(runner, ["list"], "vtape0", tmp_path).exit_code == 0  # the inventory needs no drive


MID_OPERATION = [
    ["label", "vtape0", "NEW1", "--force"], ["read", "vtape0", "--file", "1", "--out", "{tmp}/out.bin"],
    ["verify", "vtape0", "--file", "1"], ["scan", "vtape0"],
]


@pytest.mark.parametrize("args", MID_OPERATION, ids=" ".join)
def test_a_tape_taken_out_mid_operation(app, runner, labelled_cartridge, tmp_path, monkeypatch, args):
    with VirtualHandle(app.config["VTAPE_DIR"], "vtape0") as tape:  # file 1 after the label
        tape.to_end_of_data()
        for i in range(3):
            tape.write(bytes([i]) * 4096)
        tape.write_filemarks(1)
    assert run(runner, ["scan", "vtape0"], "vtape0", tmp_path).exit_code == 0  # file 1 in the catalog
    original = cartridge.Medium.read_block

    def read_then_pull_the_tape(self, index, block):
        data = original(self, index, block)
        shutil.rmtree(labelled_cartridge, ignore_errors=True)  # the folder goes while the drive is open
        return data

    monkeypatch.setattr(cartridge.Medium, "read_block", read_then_pull_the_tape)
    result = run(runner, args, "vtape0", tmp_path)
    assert_one_line_error(result, "no tape in drive vtape0")
