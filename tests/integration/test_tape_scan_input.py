"""``flask tape scan`` treats a tape as input: damaged or hostile index files are reported and skipped,
never a traceback, and a huge file that looks like an index costs bounded memory."""

from __future__ import annotations

import copy
import gzip
import hashlib
import itertools
import json
import tracemalloc

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from stagebackup.extensions import db
from stagebackup.models import Archive
from stagebackup.tape import vlibrary
from stagebackup.tape.label import encode_index, encode_label, new_label
from stagebackup.tape.scan import scan
from stagebackup.tape.virtual import VirtualHandle

BLOCK = 256 * 1024
_labels = itertools.count(1)


def archive_bytes(seed: str) -> bytes:
    return gzip.compress(seed.encode() * 50)


def index_for(label: str, file_number: int, data: bytes, name: str) -> dict:
    """A session index as ``sink.session_index`` writes it, for one archive in tape file ``file_number``."""
    sha = hashlib.sha256(data).hexdigest()
    return {
        "label": label, "job": 7, "project": "项目 p", "remark": "nightly", "project_format": "tgz",
        "written_at": "2026-01-01T00:00:00Z",
        "archives": [{
            "archive_id": 3, "name": name, "format": "tgz", "encrypted": False, "kdf_iterations": None,
            "size": len(data), "sha256": sha, "seq": 1, "input_bytes": 2000,
            "pieces": [{"label": label, "file_number": file_number, "piece": 1, "bytes": len(data), "blocks": 1,
                        "block_size": len(data), "sha256": sha}],
            "members": [["dir", "dir", 0, 1.5e9, 0o40755, None], ["dir/a.txt", "file", 2000, 1.6e9, 0o100644, None],
                        ["dir/l\udce9", "symlink", 0, 1.6e9, 0o120777, "a.txt"]],
        }],
    }


def fresh_label() -> str:
    return f"S{next(_labels):05d}"


def write_cartridge(app, label: str, files: list[bytes]) -> None:
    """A new cartridge ``label`` in vtape0: its StageBackup label, then one tape file per entry of ``files``."""
    vdir = app.config["VTAPE_DIR"]
    vlibrary.create_cartridge(vdir, label, capacity_bytes=512 * 1024**2, early_warning_bytes=2 * 1024**2)
    vlibrary.insert(vdir, "vtape0", label)
    with VirtualHandle(vdir, "vtape0") as tape:
        tape.write(encode_label(new_label(label, "default", BLOCK)))
        tape.write_filemarks(1)
        for data in files:
            for start in range(0, len(data), BLOCK):
                tape.write(data[start:start + BLOCK])
            tape.write_filemarks(1)


def tape_with(app, hostile: bytes) -> tuple[str, str]:
    """Label; file 1 an archive; file 2 ``hostile``; file 3 another archive; file 4 its valid index."""
    label = fresh_label()
    second = archive_bytes("two")
    write_cartridge(app, label, [archive_bytes("one"), hostile, second,
                                 encode_index(index_for(label, 3, second, f"{label}-good.tar.gz"))])
    return label, f"{label}-good.tar.gz"


def scan_cli(runner):
    return runner.invoke(args=["tape", "scan", "vtape0"])


def assert_scanned_past(result, label: str, good_name: str) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 1:  # only for a file reported as a damaged index
        assert f"[ERROR] {label} file 2: not a StageBackup index (" in result.output
        assert result.output.strip().splitlines()[-1].startswith("Error: ")
    db.session.rollback()
    assert db.session.scalar(select(Archive).where(Archive.name == good_name)) is not None, result.output


def test_a_damaged_index_is_reported_and_the_scan_goes_on(runner, app):
    good = index_for("X", 1, b"x", "a.tar.gz")
    del good["archives"][0]["members"][1][2]
    label, good_name = tape_with(app, encode_index(good))
    result = scan_cli(runner)
    assert result.exit_code == 1
    assert (f"[ERROR] {label} file 2: not a StageBackup index (archives.0.members.1.2: Input should be a valid integer "
            "(and 2 more problem(s)))\n"
            in result.output)
    assert "2 archive(s) catalogued" not in result.output and "1 archive(s) catalogued" in result.output
    assert result.output.strip().splitlines()[-1] == (
        f"Error: tape drive vtape0: 1 damaged index file(s) on {label} skipped (reported above); "
        "their archives are not catalogued")
    assert_scanned_past(result, label, good_name)
    files = json.loads(runner.invoke(args=["tape", "files", label, "--json"]).output)
    assert [(f["file_number"], f["kind"]) for f in files] == [
        (0, "label"), (1, "archive"), (2, "index"), (3, "archive"), (4, "index")]


def test_a_valid_index_with_unknown_keys_is_adopted(runner, app):
    label = fresh_label()
    data = archive_bytes("fwd")
    index = index_for(label, 1, data, "fwd.tar.gz")
    index["from_a_newer_version"] = {"x": [1, 2]}
    index["archives"][0]["cipher"] = "aes-256-cbc"
    write_cartridge(app, label, [data, encode_index(index)])
    result = scan_cli(runner)
    assert result.exit_code == 0, result.output
    assert "1 archive(s) catalogued" in result.output


@pytest.mark.parametrize(("blob", "reason"), [
    (b'{"format": "stagebackup-tape-index/1", "archives": ' + b"[" * 200_000, "nested too deeply"),
    (b'{"format": "stagebackup-tape-index/1", "job": ' + b"9" * 5000 + b"}", "not valid JSON: Exceeds the limit"),
    (b'{"format": "stagebackup-tape-index/1", "project": "\xff\xfe"}', "not UTF-8 text: byte 51"),
    (b'{"format": "stagebackup-tape-index/2", "archives": []}', "format: Input should be 'stagebackup-tape-index/1'"),
    (b'{"format": "stagebackup-tape-index/1", "job": 1e999}', "job: Input should be a valid integer"),
    (b'{"format": "stagebackup-tape-index/1", "archives": [{"members": [["a", "file", 1, NaN, 0, null]]}]}',
     "archives.0.members.0.3: Input should be a finite number"),
    (b'{"format": "stagebackup-tape-index/1", "job": 99999999999999999999}',
     "job: Input should be less than or equal to 9223372036854775807"),
    (b'{"format": "stagebackup-tape-index/1", "archives": [{"pieces": [{"label": "../x", "file_number": 1, '
     b'"piece": 1}]}]}', "archives.0.pieces.0.label: Value error, not a tape label"),
    (b'{"format": "stagebackup-tape-index/1", "archives": [{"members": [["\\ud800", "file", 1, 1, 0, null]]}]}',
     "archives.0.members.0.0: Value error, path with a character no file name can hold"),
    (b'   {"format": "stagebackup-tape-index/1", "archives": [', "not valid JSON: Expecting value"),
])
def test_hostile_index_files_are_reported_with_their_reason(runner, app, blob, reason):
    label, good_name = tape_with(app, blob)
    result = scan_cli(runner)
    assert f"[ERROR] {label} file 2: not a StageBackup index ({reason}" in result.output
    assert_scanned_past(result, label, good_name)


def test_an_index_that_names_itself_as_an_archive_is_not_adopted(runner, app):
    label = fresh_label()
    data = archive_bytes("self")
    selfish = index_for(label, 2, data, "selfish.tar.gz")  # file 2 is this index, not an archive
    write_cartridge(app, label, [data, encode_index(selfish)])
    result = scan_cli(runner)
    assert result.exit_code == 0, result.output
    assert "selfish.tar.gz: its index names a tape file that is not an archive; not catalogued" in result.output
    files = json.loads(runner.invoke(args=["tape", "files", label, "--json"]).output)
    assert [(f["file_number"], f["kind"], f["archive"]) for f in files] == [
        (0, "label", None), (1, "archive", None), (2, "index", None)]


def test_an_index_larger_than_the_limit_is_reported_within_bounded_memory(app):
    app.config["TAPE_INDEX_MAX_BYTES"] = 4 * 1024**2
    filler = b"x" * BLOCK
    blob = b'{"format": "stagebackup-tape-index/1", "archives": ["' + filler * 160  # 40 MiB that starts like one
    label, good_name = tape_with(app, blob)
    del blob
    errors: list[str] = []
    tracemalloc.start()
    try:
        summary = scan(app.config, "vtape0", echo=lambda _m: None, error=errors.append)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert errors == [f"[ERROR] {label} file 2: not a StageBackup index (larger than the 4.0 MiB an index may have "
                      "(STAGEBACKUP_TAPE_INDEX_MAX_BYTES))"]
    assert summary["files"] == 4 and summary["archives"] == 1
    assert peak < 12 * 1024**2, f"scan peaked at {peak / 1024**2:.1f} MiB"
    assert db.session.scalar(select(Archive).where(Archive.name == good_name)) is not None


def test_the_default_index_limit_is_256_mib(app):
    assert app.config["TAPE_INDEX_MAX_BYTES"] == 256 * 1024**2


# -- Hypothesis: mutated valid indexes and random blobs -----------------------------------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["\ud800", "\udcff", "x" * 300, "tgz", "7z", "file", "../../etc"]),
)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


def _containers(value, path=()):
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _containers(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _containers(item, (*path, i))


@st.composite
def mutated_index(draw) -> bytes:
    index = {"format": "stagebackup-tape-index/1", **index_for("X", 1, b"x", "m.tar.gz")}
    for _ in range(draw(st.integers(1, 3))):
        targets = [(p, v) for p, v in _containers(index) if isinstance(v, dict | list) and v]
        path, container = draw(st.sampled_from(targets))
        key = draw(st.sampled_from(sorted(container) if isinstance(container, dict) else range(len(container))))
        action = draw(st.sampled_from(["replace", "delete", "extra", "nest"]))
        if action == "replace":
            container[key] = draw(json_values)
        elif action == "delete":
            del container[key]
        elif action == "extra" and isinstance(container, dict):
            container[draw(st.text(max_size=8))] = draw(json_values)
        elif action == "nest":
            container[key] = copy.deepcopy([[[container[key]]]])
    text = json.dumps(index, ensure_ascii=draw(st.booleans()), allow_nan=True)
    data = text.encode("utf-8", "surrogatepass")
    tail = draw(st.sampled_from(["whole", "truncated", "bad bytes", "gzip"]))
    if tail == "truncated":
        data = data[:draw(st.integers(0, len(data)))]
    elif tail == "bad bytes":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    elif tail == "gzip":
        data = gzip.compress(data)
    return data


hostile_files = st.one_of(
    mutated_index(),
    st.binary(min_size=1, max_size=3000),
    st.binary(max_size=200).map(lambda b: b'{"format": "stagebackup-tape-index/1"' + b),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(blob=hostile_files)
@example(blob=b'{"format": "stagebackup-tape-index/1", "archives": [{"members": [["a", "file", 1, 1e308, 0, 7]]}]}')
@example(blob=b'{"format": "stagebackup-tape-index/1", "archives": [{"name": "n", "pieces": '
              b'[{"label": "NOWHERE", "file_number": 2147483647, "piece": 1}]}]}')
def test_no_tape_file_makes_the_scan_raise(runner, app, blob):
    label, good_name = tape_with(app, blob)
    result = scan_cli(runner)
    event("reported as a damaged index" if "[ERROR]" in result.output else "taken as an archive or an index")
    assert_scanned_past(result, label, good_name)


# -- the label is tape input too -----------------------------------------------------------------------------

def write_first_block(app, block: bytes) -> None:
    name = fresh_label()
    vdir = app.config["VTAPE_DIR"]
    vlibrary.create_cartridge(vdir, name, capacity_bytes=64 * 1024**2, early_warning_bytes=2 * 1024**2)
    vlibrary.insert(vdir, "vtape0", name)
    with VirtualHandle(vdir, "vtape0") as tape:
        tape.write(block)
        tape.write_filemarks(1)


def label_commands_answer(runner) -> list:
    results = [runner.invoke(args=["tape", *args]) for args in (
        ["status", "vtape0", "--json"], ["scan", "vtape0"], ["read", "vtape0", "--file", "0", "--out", "-"],
        ["label", "vtape0", "L1"])]
    db.session.rollback()
    for result in results:
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return results


@pytest.mark.parametrize(("change", "reason"), [
    ({"uuid": None}, "uuid: Input should be a valid string"),
    ({"label": ["T1"]}, "label: Input should be a valid string"),
    ({"pool": "p" * 65}, "pool: String should have at most 64 characters"),
    ({"block_size": 2**40}, "block_size: Input should be less than or equal to 2147483647"),
])
def test_a_damaged_label_is_a_foreign_tape(runner, app, change, reason):
    label = {**new_label("T1", "default", BLOCK), **change}
    write_first_block(app, json.dumps(label, sort_keys=True).encode())
    status, scanned, _, relabel = label_commands_answer(runner)
    assert json.loads(status.output)["message"] == (
        f"the tape in drive vtape0 was not written by StageBackup (its label is damaged: {reason}); "
        "label it with --force to reuse it")
    assert scanned.exit_code == 1 and f"its label is damaged: {reason}" in scanned.output
    assert relabel.exit_code == 1 and "label it with --force" in relabel.output


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(block=st.one_of(
    st.binary(min_size=1, max_size=500),
    st.binary(max_size=300).map(lambda b: b'{"format": "stagebackup-tape-label/1"' + b),
    st.dictionaries(st.sampled_from(["format", "label", "pool", "uuid", "created", "block_size", "x"]), json_values)
    .map(lambda d: json.dumps({"format": "stagebackup-tape-label/1", **d}).encode("utf-8", "surrogatepass")),
))
@example(block=b'{"format": "stagebackup-tape-label/1", "x": ' + b"[" * 100_000)
def test_no_first_block_makes_a_tape_command_raise(runner, app, block):
    write_first_block(app, block)
    label_commands_answer(runner)
