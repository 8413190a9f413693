"""Languages: Chinese by default (the seeds' labels), English complete, switched per browser."""

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.models import Job
from tests.conftest import make_app

from .web_support import csrf_token, make_project, running_job

REPO = Path(__file__).resolve().parents[2]
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def _visible_text(html: str) -> str:
    """Text a person reads: no tags, no attribute values except titles, placeholders, labels, confirms."""
    # The language switch names each language in itself ("中文"), as switches do.
    html = re.sub(r'<ul class="navbar-nav" id="language-switch">.*?</ul>', "", html, flags=re.S)
    shown = re.findall(r'(?:hx-confirm|data-confirm|placeholder|aria-label|title)="([^"]*)"', html)
    body = re.sub(r"<[^>]+>", " ", html)
    return " ".join([body, *shown])


def _en(client):
    client.set_cookie("lang", "en")
    return client


def test_chinese_is_the_default(client, tmp_path):
    running_job(tmp_path, "p")
    html = client.get("/backup").get_data(as_text=True)
    assert '<html lang="zh-CN">' in html and "立即运行" in html and "扫描文件" in html and "运行中" in html


def test_the_switch_sets_a_cookie_and_english_follows(client):
    response = client.get("/lang/en?next=/backup/history")
    assert response.status_code == 302 and response.headers["Location"] == "/backup/history"
    assert "lang=en" in response.headers["Set-Cookie"]
    html = client.get("/backup/history").get_data(as_text=True)
    assert '<html lang="en">' in html and ">History<" in html
    client.get("/lang/xx")  # unknown: cookie unchanged
    assert '<html lang="en">' in client.get("/backup").get_data(as_text=True)


@pytest.mark.parametrize("page", ["/backup", "/backup/jobs/{job}", "/backup/history", "/backup/projects/new",
                                  "/backup/projects/{project}/edit", "/backup/jobs/{job}/card", "/explorer",
                                  "/settings"])
def test_english_pages_have_no_chinese_left(client, tmp_path, page):
    job_id = running_job(tmp_path, "night-run", done=("scan", "compress", "copy"), current=("finalize",))
    job = db.session.get(Job, job_id)
    project_id, job.current_file = job.project_id, "/srv/a.txt"  # operator data may be Chinese; labels not
    db.session.commit()
    queue.append_log(job_id, "INFO", "started")
    done = queue.enqueue(make_project(tmp_path, "other"), actor="test")
    queue.finish(done.id, "failed", error_class="X", message="boom")
    html = _en(client).get(page.format(job=job_id, project=project_id)).get_data(as_text=True)
    leftovers = CJK.findall(_visible_text(html))
    assert not leftovers, "".join(leftovers)
    if "job" in page:
        assert "Scan files" in html and "Finish" in html


def test_english_validation_messages_and_stage_labels(client, tmp_path):
    (tmp_path / "srv").mkdir()
    _en(client)
    html = client.post("/backup/projects/new", data={
        "name": "x", "sources": "/no/such/dir", "mode": "archive", "archive_format": "tgz", "level": "6",
        "dest_kind": "directory", "dest_dir": str(tmp_path / "b"), "csrf_token": csrf_token(client),
    }).get_data(as_text=True)
    assert "Source /no/such/dir does not exist" in html
    job_id = running_job(tmp_path)
    card = client.get(f"/backup/jobs/{job_id}/card").get_data(as_text=True)
    assert ">Scan files<" in card and ">Compress/pack<" in card and ">Write to destination<" in card
    assert "Running" in card and "seconds ago" in card or "second ago" in card


def _catalog(lang):
    with open(REPO / "translations" / lang / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh)


def test_every_extracted_string_is_translated_in_both_catalogs_and_compiled():
    with open(REPO / "babel.cfg") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    extracted = {
        msg[2] for msg in extract_from_dir(str(REPO), method_map, options_map, keywords={
            "_": None, "gettext": None, "_l": None, "N_": None, "lazy_gettext": None,
        })
    }
    assert "扫描文件" in extracted and "写入磁带" in extracted and "立即运行" in extracted
    for lang in ("zh_CN", "en"):
        catalog = _catalog(lang)
        missing = [m for m in extracted if not (catalog.get(m) and catalog.get(m).string)]
        assert not missing, f"{lang}: untranslated {missing[:10]} (run `make translations`)"
        with open(REPO / "translations" / lang / "LC_MESSAGES" / "messages.mo", "rb") as fh:
            compiled = {m.id: m.string for m in read_mo(fh) if m.id}
        assert all(compiled.get(m.id) == m.string for m in catalog if m.id), f"{lang}: .mo is stale"
    assert _catalog("en").get("扫描文件").string == "Scan files"


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_each_language_loads_its_compiled_catalog(app, lang):
    # Babel parses zh_CN as zh_Hans_CN and gettext looks for that folder (a symlink to zh_CN).
    from flask_babel import get_translations

    with app.test_request_context("/", headers={"Cookie": f"lang={lang}"}):
        files = getattr(get_translations(), "files", [])
        assert any(f.endswith("messages.mo") for f in files), files


def test_each_request_is_in_its_own_language_when_languages_alternate(tmp_path):
    """The catalogue is kept per locale (stagebackup/catalogue.py): browsers in two languages polling the same
    process each keep theirs, in the templates' _() (a macro imported from _names.html included) and in the
    labels made with lazy_gettext. (An app of its own: the ``app`` fixture's application context would keep
    Flask-Babel's locale in ``g`` from one request to the next, which a server never does.)"""
    application = make_app(tmp_path)
    with application.app_context():
        job_id = running_job(tmp_path, "p")
        db.session.remove()
    chinese, english = application.test_client(), _en(application.test_client())
    for _round in range(3):
        zh = chinese.get(f"/backup/jobs/{job_id}/card").get_data(as_text=True)
        en = english.get(f"/backup/jobs/{job_id}/card").get_data(as_text=True)
        assert all(label in zh for label in ("已用时间", "运行中", 'title="复制"')) and "Elapsed" not in zh
        assert all(label in en for label in ("Elapsed", "Running", 'title="Copy"')) and "已用时间" not in en


def test_a_forced_locale_is_followed_inside_a_request_and_left_after_it(app):
    from flask import render_template_string
    from flask_babel import force_locale

    from stagebackup.backup.web import STATUS_LABELS

    with app.test_request_context("/", headers={"Cookie": "lang=zh_CN"}):
        assert render_template_string("{{ _('已用时间') }}") == "已用时间"
        with force_locale("en"):
            assert render_template_string("{{ _('已用时间') }}") == "Elapsed"
            assert str(STATUS_LABELS["running"]) == "Running"
        assert render_template_string("{{ _('已用时间') }}") == "已用时间"
        assert str(STATUS_LABELS["running"]) == "运行中"
