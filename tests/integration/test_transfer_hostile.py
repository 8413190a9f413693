"""Import of hostile files: each is refused with a clear message and leaves the database as it was."""

from __future__ import annotations

import codecs
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stagebackup import transfer
from stagebackup.errors import ValidationError
from tests.integration.test_transfer import _state
from tests.integration.web_support import make_project

LIMIT = 5 * 1024 * 1024


def _import(raw: bytes, on_conflict: str = "skip", **kw):
    return transfer.import_projects(raw, on_conflict=on_conflict, max_bytes=LIMIT, actor="test", **kw)


@pytest.fixture
def document(app, tmp_path):
    """A valid export of one project ("设计稿"), which stays in the database."""
    make_project(tmp_path, "设计稿")
    return transfer.export_document()


def _refused(raw: bytes, expected: str, **kw) -> None:
    before = _state()
    with pytest.raises(transfer.ImportRejected) as caught:
        _import(raw, **kw)
    assert expected in str(caught.value)
    assert _state() == before


@pytest.mark.parametrize(("raw", "expected"), [
    (b"", "the file is empty"),
    (b"{\"format\": ", "the file is not valid JSON: Expecting value (line 1, column 12)"),
    (b"[1, 2", "the file is not valid JSON"),
    (b"\xff\xfe{\x00}\x00", "the file is not UTF-8 text (byte 0)"),
    (codecs.BOM_UTF16_LE + "{}".encode("utf-16-le"), "not UTF-8"),
    (b"{\"a\": \xe9}", "the file is not UTF-8 text (byte 6)"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b"[]", "it must be a JSON object"),
    (b"{\"format\": \"x\", \"version\": 1, \"projects\": []}", "this is not a StageBackup project export"),
    (b"{\"format\": \"stagebackup-projects\", \"version\": 2, \"projects\": []}", "version 2 is not supported"),
    (b"{\"format\": \"stagebackup-projects\", \"version\": 1}", "field projects: Field required"),
    (b"{\"format\": \"stagebackup-projects\", \"version\": 1, \"projects\": [], \"version\": 1}", "appears twice"),
    (b"{\"format\": \"stagebackup-projects\", \"version\": NaN, \"projects\": []}", "NaN is not a JSON number"),
    (b"{\"format\": \"stagebackup-projects\", \"version\": 1, \"projects\": [5]}", "project #1: a project is a JSON"),
    (b"{\"format\": \"stagebackup-projects\", \"version\": 1, \"projects\": {}}", "field projects: Input should be"),
])
def test_malformed_files_are_refused(document, raw, expected):
    _refused(raw, expected)


def test_a_file_over_the_limit_is_refused(document):
    padded = json.dumps({**document, "padding": "x" * (10 * 1024 * 1024)}).encode()  # 10 MB
    _refused(padded, f"the limit is {LIMIT}")


def test_wrong_types_and_huge_numbers(document):
    entry = dict(document["projects"][0], name="新")
    for field, value, expected in [
        ("level", "6", "field level: Input should be a valid integer"),
        ("encrypted", "yes", "field encrypted: Input should be a valid boolean"),
        ("sources", "/srv", "field sources: Input should be a valid list"),
        ("group_max_bytes", 2**64, "field group_max_bytes: Input should be less than or equal to"),
        ("dest_dir", {"b64": "@@"}, "field dest_dir: Value error, \"b64\" is not valid base64"),
        ("name", None, "field name: Input should be a valid string"),
    ]:
        raw = json.dumps({**document, "projects": [{**entry, field: value}]}).encode()
        _refused(raw, expected)
    too_long = json.dumps({**document, "projects": [{**entry, "level": 0}]}).encode().replace(
        b'"level": 0', b'"level": ' + b"9" * 5000)
    _refused(too_long, "the file is not valid JSON")


def test_duplicate_names_in_the_file_and_clashes_under_each_policy(document):
    entry = document["projects"][0]
    twice = json.dumps({**document, "projects": [dict(entry, name="一"), dict(entry, name="一")]}).encode()
    _refused(twice, "project #2 (一), field name: the name is also used by project #1")
    clash = json.dumps(document).encode()
    before = _state()
    assert _import(clash, "skip").count("skip") == 1
    assert _state()[0] == before[0]
    assert _import(clash, "replace").count("replace") == 1
    assert _state()[0] == before[0]  # the same settings: replacing changes nothing
    assert _import(clash, "rename").projects[0].final_name == "设计稿 (2)"
    _refused(clash, "unknown conflict policy 'merge'", on_conflict="merge")


def test_a_utf8_byte_order_mark_is_accepted(document):
    entry = dict(document["projects"][0], name="带BOM")
    raw = codecs.BOM_UTF8 + json.dumps({**document, "projects": [entry]}, ensure_ascii=False).encode()
    assert _import(raw).count("create") == 1


def _export_like():
    """JSON shaped like an export, with any value in any field (and unknown fields)."""
    scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(max_size=5), inner, max_size=3), max_leaves=8)
    keys = st.sampled_from(["name", "sources", "mode", "includes", "excludes", "archive_format", "level",
                            "encrypted", "password_required", "sync_strategy",
                            "group_max_bytes", "dest_dir", "dest_drive", "dest_pool", "verify_after_write",
                            "job_timeout_s", "extra"])
    entry = st.dictionaries(keys, values | st.just("/tmp") | st.just(["/tmp"]), max_size=10)
    return st.fixed_dictionaries({
        "format": st.sampled_from(["stagebackup-projects", "other"]) | values,
        "version": st.just(1) | values,
        "projects": st.lists(entry | values, max_size=4),
    })


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_export_like(), on_conflict=st.sampled_from(transfer.CONFLICT_POLICIES))
def test_random_documents_import_or_are_refused_whole(document, value, on_conflict):
    _succeeds_or_refused_whole(json.dumps(value).encode(), on_conflict)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_random_bytes_are_refused_whole(document, raw):
    _succeeds_or_refused_whole(raw, "skip")


def _succeeds_or_refused_whole(raw: bytes, on_conflict: str) -> None:
    before = _state()
    try:
        _import(raw, on_conflict)
    except ValidationError:
        assert _state() == before


def test_a_name_taken_between_plan_and_write_rolls_back_the_whole_import(document, tmp_path):
    """Another writer creates the second project's name after the plan: the first one is not kept either."""
    entry = document["projects"][0]
    raw = json.dumps({**document, "projects": [dict(entry, name="一"), dict(entry, name="二")]}).encode()
    ready = transfer.plan(raw, on_conflict="skip", max_bytes=LIMIT)
    make_project(tmp_path, "二")
    before = _state()
    with pytest.raises(transfer.ImportRejected, match=r"project #2 \(二\), field name: a project named '二'"):
        transfer.apply(ready, actor="test")
    assert _state() == before
