"""The disaster-recovery commands of docs/restore-and-recovery.md, run literally on a virtual cartridge after a
real backup.

An operator without StageBackup has `dd`, `sha256sum`, `openssl`, `tar`, `7z` and a JSON reader. These
tests find every archive the way its "Disaster recovery" section says (label in file 0, the
index as the last file of a session, `pieces[].file_number`), copy it off with `dd`, check its SHA-256
against the index and open it with the real tools. A virtual cartridge's `00000N.data` is exactly
what `dd if=/dev/nst0 bs=256K` returns for tape file N, so the commands are the ones for a real tape.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from stagebackup.extensions import db
from stagebackup.tape import admin
from tests.conftest import build_hostile_tree, make_app
from tests.integration.test_tape_backup import cartridge_dir, errors_of, run_one, tape_project
from tests.treecompare import assert_same_tree

PASSWORD = "correct horse 电池 staple"
KDF_ITERATIONS = 1_000  # the count is read back from the index, so any value exercises `-iter`
INDEX_PREFIX = b'{"format": "stagebackup-tape-index/1"'
NOT_UTF8 = {b"latin1-\xe9t\xe9-\xff.bin", b"dir-\xfe\xfd", b"dir-\xfe\xfd/inner\nnewline.txt"}


@pytest.fixture
def tape_app(tmp_path):
    application = make_app(tmp_path, KDF_ITERATIONS=KDF_ITERATIONS)
    with application.app_context():
        admin.label(application.config, "vtape0", "TAPE001")
        yield application
        db.session.remove()
        db.engine.dispose()


def sh(command: str, cwd: Path, stdin: bytes | None = None) -> bytes:
    """One line of those docs, run by a shell; stdin carries what the operator would type."""
    # The operator's shell has the usual umask (StageBackup's own processes run with 077).
    done = subprocess.run(f"umask 022; {command}", shell=True, cwd=cwd, input=stdin if stdin is not None else b"",
                          capture_output=True)
    assert done.returncode == 0, (command, done.stderr.decode(errors="replace"))
    return done.stdout


def tape_file(cart: Path, n: int) -> str:
    return shlex.quote(str(cart / f"{n:06d}.data"))


def read_label(cart: Path, workdir: Path) -> dict:
    return json.loads(sh(f"dd if={tape_file(cart, 0)} bs=256K 2>/dev/null", workdir))


def file_numbers(cart: Path) -> list[int]:
    """`mt eod; mt status` on a real tape; on a cartridge, the `.data` files."""
    return sorted(int(p.name[:6]) for p in cart.glob("*.data"))


def indexes_on_tape(cart: Path, workdir: Path) -> list[dict]:
    """The docs' loop: the first 60 bytes of each file say which files are index files."""
    found = []
    for n in file_numbers(cart)[1:]:
        head = sh(f"dd if={tape_file(cart, n)} bs=256K count=1 2>/dev/null | head -c 60", workdir)
        if head.startswith(INDEX_PREFIX):
            found.append(json.loads(sh(f"dd if={tape_file(cart, n)} bs=256K 2>/dev/null", workdir)))
    return found


def copy_off(cart: Path, entry: dict, workdir: Path) -> Path:
    """`dd` each piece of an archive (appended in order) and check the SHA-256 the index gives."""
    out = workdir / entry["name"]
    assert not out.exists()
    for piece in entry["pieces"]:
        assert piece["label"] == "TAPE001"
        sh(f"dd if={tape_file(cart, piece['file_number'])} bs=256K 2>/dev/null >> {shlex.quote(out.name)}", workdir)
    digest = sh(f"sha256sum {shlex.quote(out.name)}", workdir).split()[0].decode()
    assert digest == entry["sha256"], entry["name"]
    return out


def test_encrypted_tgz_comes_back_with_dd_openssl_and_tar(tape_app, tmp_path):
    app = tape_app
    tree = build_hostile_tree(tmp_path / "src")
    job = run_one(app, tape_project("dr-enc", [tree], password=PASSWORD))
    assert job.status == "succeeded", (job.error_message, errors_of(job.id))
    db.session.rollback()
    cart, work = cartridge_dir(app), tmp_path / "dr"
    work.mkdir()

    assert read_label(cart, work)["label"] == "TAPE001"
    last = file_numbers(cart)[-1]
    index = json.loads(sh(f"dd if={tape_file(cart, last)} bs=256K 2>/dev/null", work))
    assert index["project"] == "dr-enc" and index["job"] == job.id
    [entry] = index["archives"]
    assert entry["format"] == "tgz" and entry["encrypted"] and entry["name"].endswith(".tar.gz.enc")
    assert entry["kdf_iterations"] == KDF_ITERATIONS
    archive = copy_off(cart, entry, work)
    assert archive.read_bytes()[:8] == b"Salted__"

    out = tmp_path / "restore"
    out.mkdir()
    sh(f"openssl enc -d -aes-256-cbc -pbkdf2 -iter {entry['kdf_iterations']} -md sha256 "
       f"-in {shlex.quote(archive.name)} -pass stdin | tar -xz -C {shlex.quote(str(out))}",
       work, stdin=(PASSWORD + "\n").encode())
    assert_same_tree(tree, out / str(tree).lstrip("/"))

    # The same with `-pass file:` (the password never on a command line either way).
    (work / "pw").write_text(PASSWORD + "\n")
    again = tmp_path / "restore-file"
    again.mkdir()
    sh(f"openssl enc -d -aes-256-cbc -pbkdf2 -iter {entry['kdf_iterations']} -md sha256 "
       f"-in {shlex.quote(archive.name)} -pass file:pw | tar -xz -C {shlex.quote(str(again))}", work)
    assert_same_tree(tree, again / str(tree).lstrip("/"))


def test_7z_with_a_password_comes_back_with_dd_and_7z(tape_app, tmp_path):
    app = tape_app
    app.config["ERROR_FAIL_RATIO"] = 0.5  # 7z leaves out 3 names of this small tree: a warning here
    tree = build_hostile_tree(tmp_path / "src")
    job = run_one(app, tape_project("dr-7z", [tree], archive_format="7z", level=1, password=PASSWORD))
    # 7z stores UTF-16 names: the members whose names are not UTF-8 are left out, loudly.
    assert job.status == "warning", (job.error_message, errors_of(job.id))
    errors = errors_of(job.id)
    assert any(r"latin1-\xe9t\xe9-\xff.bin" in e and "not valid UTF-8" in e for e in errors), errors
    db.session.rollback()
    cart, work = cartridge_dir(app), tmp_path / "dr"
    work.mkdir()

    [index] = indexes_on_tape(cart, work)
    [entry] = index["archives"]
    assert entry["format"] == "7z" and entry["encrypted"] and entry["name"].endswith("_part001.7z")
    archive = copy_off(cart, entry, work)
    assert PASSWORD.encode() not in archive.read_bytes()
    # The index lists what the archive holds: the names left out are not in it either.
    listing = sh(f"7z l -slt -ba {shlex.quote(archive.name)}", work, stdin=(PASSWORD + "\n").encode())
    stored = {line[len("Path = "):] for line in listing.decode().splitlines() if line.startswith("Path = ")}
    assert stored == {m[0] for m in entry["members"]}

    out = tmp_path / "restore"
    # 7z asks for the password (here on its standard input): `-p` with nothing after it would be an
    # empty password, and `-pSECRET` would put it in the process list.
    sh(f"7z x {shlex.quote(archive.name)} -o{shlex.quote(str(out))} -snld", work, stdin=(PASSWORD + "\n").encode())
    restored = out / str(tree).lstrip("/")
    # 7-Zip re-roots an absolute link target under -o (the docs say so): checked, then set aside.
    assert os.readlink(restored / "dangling-link").endswith("/nonexistent/target")
    (restored / "dangling-link").unlink()
    assert_same_tree(tree, restored, ignore={b"dangling-link"} | NOT_UTF8)
    assert not any(os.fsencode(p.name) in NOT_UTF8 for p in restored.iterdir())


def test_archive_groups_of_an_earlier_session_are_found_through_its_index(tape_app, tmp_path):
    """Several groups in one session, then another session: the operator walks the tape for its indexes."""
    app = tape_app
    tree = build_hostile_tree(tmp_path / "src")  # sparse.img (8 MiB) alone exceeds a group
    for i in range(3):
        (tree / f"random{i}.bin").write_bytes(os.urandom(700 * 1024))
    job = run_one(app, tape_project("dr-groups", [tree], group_max_bytes=1024 * 1024))
    assert job.status == "succeeded", (job.error_message, errors_of(job.id))
    other = tmp_path / "other"
    other.mkdir()
    (other / "later.txt").write_text("a later session\n")
    later = run_one(app, tape_project("dr-later", [other]))
    assert later.status == "succeeded", later.error_message
    db.session.rollback()
    cart, work = cartridge_dir(app), tmp_path / "dr"
    work.mkdir()

    indexes = indexes_on_tape(cart, work)
    assert [i["project"] for i in indexes] == ["dr-groups", "dr-later"]
    index = indexes[0]
    entries = index["archives"]
    assert len(entries) >= 3, [e["name"] for e in entries]
    numbers = [p["file_number"] for e in entries for p in e["pieces"]]
    assert numbers == list(range(1, len(entries) + 1))  # one tape file each, in order after the label

    out = tmp_path / "restore"
    out.mkdir()
    for entry in entries:  # every group extracts on its own; together they are the whole tree
        archive = copy_off(cart, entry, work)
        sh(f"tar -xzf {shlex.quote(archive.name)} -C {shlex.quote(str(out))}", work)
    assert_same_tree(tree, out / str(tree).lstrip("/"))
    members = {m[0] for e in entries for m in e["members"]}
    assert os.fsencode(str(tree).lstrip("/") + "/random2.bin") in {os.fsencode(m) for m in members}

    # The catalog names the same tape files (`flask tape files`), for an operator who still has it.
    listed = app.test_cli_runner().invoke(args=["tape", "files", "TAPE001", "--json"])
    assert listed.exit_code == 0, listed.output
    by_archive = {r["archive"]: r["file_number"] for r in json.loads(listed.output) if r["kind"] == "archive"}
    assert {e["name"]: e["pieces"][0]["file_number"] for e in entries}.items() <= by_archive.items()
