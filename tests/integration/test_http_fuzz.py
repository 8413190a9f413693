"""Random values into every route of the URL map, every path variable and every parameter a view reads:
never a 500 (bad input is a 400/404/413 with a message)."""

from __future__ import annotations

import inspect
import io
import itertools
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stagebackup.extensions import db
from tests.conftest import make_app

from .web_support import make_project

PACKAGE = Path(__file__).resolve().parents[2] / "stagebackup"
# What a view reads: request.args/form .get/.getlist("x"), query_int("x"), _token_arg("x"), form fields.
PARAM_PATTERNS = (
    r"""(?:args|form)\.get(?:list)?\(\s*["'](\w+)["']""",
    r"""(?:args|form)\[\s*["'](\w+)["']\s*\]""",
    r"""query_int\(\s*["'](\w+)["']""",
    r"""_token_arg\(\s*["'](\w+)["']""",
    r"""^\s+(\w+)\s*=\s*(?:String|TextArea|Integer|Boolean|Password|Radio|Select)Field\(""",
)


def names_in(text: str) -> set[str]:
    return {name for pattern in PARAM_PATTERNS for name in re.findall(pattern, text, re.M)}


def parameter_names() -> list[str]:
    return sorted(set().union(*(names_in(source.read_text()) for source in PACKAGE.rglob("*.py"))))


# Helpers every page may call (forms, ?next=) read these too.
SHARED_SOURCES = [PACKAGE / "backup" / "forms.py", PACKAGE / "backup" / "web.py"]


def route_parameters(app, endpoint: str) -> list[str]:
    """The names the route's view module (and the shared helpers) read: the fuzzer's vocabulary for it."""
    module = sys.modules[app.view_functions[endpoint].__module__]
    texts = [inspect.getsource(module), *(p.read_text() for p in SHARED_SOURCES)]
    return sorted(set().union(*(names_in(text) for text in texts)))


def url_rules():
    """The URL map of an app built without a database (collection time: no schema, no data)."""
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(Path(tmp), SCHEMA_AUTO_UPGRADE=False)
        rules = [(r.rule, r.endpoint, sorted(r.methods - {"HEAD", "OPTIONS"})) for r in app.url_map.iter_rules()
                 if r.endpoint != "static"]
        with app.app_context():
            db.engine.dispose()
    return sorted((rule, endpoint, method) for rule, endpoint, methods in rules for method in methods)


NASTY = st.sampled_from([
    "", "0", "-1", "1", str(2**63 - 1), str(2**63), str(2**64), "9" * 40, "-" + "9" * 40, "1e309", "nan", "inf",
    " 1", "\n", "a\nb", "\r\nSet-Cookie: x=1", "\x00", "a\x00b", "../../etc/passwd", "//evil.example", "/\\evil",
    "%00", "客户A", "\udcff", "💾", "x" * 5000, "[", "{}", "*", "**/*", "p.1", "AAAA.99999999999999999999999",
])
VALUES = st.one_of(NASTY, NASTY, NASTY, st.text(max_size=40), st.integers().map(str))
UNIQUE = itertools.count()  # a fresh project name, so a plausible form is not refused as a duplicate
PATH_VALUES = st.one_of(NASTY, st.text(min_size=1, max_size=20), st.integers(min_value=0).map(str))


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("fuzz")
    app = make_app(tmp_path, WTF_CSRF_ENABLED=False)  # so that forms are reached, not stopped at the token
    with app.app_context():
        project = make_project(tmp_path, name="fuzz")
        from stagebackup.jobs import queue

        queue.enqueue(project, actor="test")
        db.session.commit()
        # A plausible value for every field, so a request with one bad value gets past the others to the
        # code that stores it (where an overflowing integer used to be a 500).
        app.config["FUZZ_BASE"] = {
            "name": "n", "sources": project.sources[0], "dest_dir": str(tmp_path / "dest"), "mode": "archive",
            "archive_format": "tgz", "level": "6", "dest_kind": "directory", "sync_strategy": "overwrite",
            "dest_drive": "vtape0", "dest_pool": "default", "target": app.config["RESTORE_ROOTS"][0] + "/t",
            "conflict": "skip", "remark": "r", "group_max_mib": "8", "job_timeout_min": "60",
        }
        db.session.remove()
    yield app  # no context pushed: every request gets its own, as in production
    with app.app_context():
        db.engine.dispose()


def fill(rule: str, draw) -> str:
    """The rule with a drawn value in each ``<converter:name>``."""
    def value_for(match: re.Match) -> str:
        name = match.group(1).split(":")[-1]
        return quote(draw(PATH_VALUES, label=name).encode("utf-8", "surrogatepass"), safe="")

    return re.sub(r"<([^>]+)>", value_for, rule)


@pytest.mark.parametrize(("rule", "endpoint", "method"), url_rules())
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_no_route_answers_500_to_any_value(fuzz_app, rule, endpoint, method, data):
    app = fuzz_app
    path = fill(rule, data.draw)
    names = route_parameters(app, endpoint)
    chosen = data.draw(st.lists(st.sampled_from(names), max_size=4, unique=True), label="params")
    params = {**app.config["FUZZ_BASE"], "name": f"n{next(UNIQUE)}"} if data.draw(st.booleans(), label="base") else {}
    params.update({name: data.draw(VALUES, label=name) for name in chosen})
    client = app.test_client()
    if method == "GET":
        response = client.get(path, query_string={k: v.encode("utf-8", "surrogatepass") for k, v in params.items()})
    else:
        as_files = data.draw(st.booleans(), label="multipart")
        form = {k: (io.BytesIO(v.encode("utf-8", "surrogatepass")), "x.txt") if as_files and i % 2 == 0
                else v.encode("utf-8", "surrogatepass") for i, (k, v) in enumerate(params.items())}
        response = client.post(path, data=form, content_type="multipart/form-data" if as_files else None)
    assert response.status_code < 500, (method, path, params, response.get_data(as_text=True)[:500])


ONE_BAD_VALUE = (str(2**64), "a\x00\nb", "-1", "FILE")


@pytest.mark.parametrize(("rule", "endpoint", "method"), url_rules())
def test_one_bad_value_in_an_otherwise_plausible_request_is_no_500(fuzz_app, rule, endpoint, method):
    """Every parameter the route reads, one at a time, set to each bad value while the others are plausible:
    the request gets past the checks of the other fields to wherever this one is used."""
    app = fuzz_app
    path = re.sub(r"<([^>]+)>", "1", rule)  # project 1 and job 1 exist
    client = app.test_client()
    for name in route_parameters(app, endpoint):
        for bad in ONE_BAD_VALUE:
            params = {**app.config["FUZZ_BASE"], "name": f"n{next(UNIQUE)}"}
            if method == "GET":
                params[name] = "0" if bad == "FILE" else bad
                response = client.get(path, query_string=params)
            elif bad == "FILE":
                params[name] = (io.BytesIO(b"payload"), "x.txt")
                response = client.post(path, data=params, content_type="multipart/form-data")
            else:
                params[name] = bad
                response = client.post(path, data=params)
            assert response.status_code < 500, (method, path, name, bad)


def test_the_fuzzer_knows_the_parameters_views_read(fuzz_app):
    assert len(url_rules()) > 20
    names = parameter_names()
    assert {"remark", "group_max_mib", "next"} <= set(route_parameters(fuzz_app, "backup.new_project"))
    for expected in ("after", "before", "page", "offset", "limit", "p", "q", "c", "next", "project", "target",
                     "remark", "sources", "level", "group_max_mib"):
        assert expected in names, expected
