"""Job kinds on the pages: history, card and job page name 备份 / 同步 / 还原 / 校验 in the page's language,
and the history filters by kind (an unknown kind is a 400 that says so)."""

from __future__ import annotations

import re

import pytest

from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.models import Job

from .web_support import make_project


@pytest.fixture
def jobs_of_every_kind(tmp_path) -> dict[str, int]:
    """A finished job of each kind; the restore failed (its failure is the restore's, not the project's)."""
    design = make_project(tmp_path, "设计稿")
    mirror = make_project(tmp_path, "镜像", mode="sync")
    ids = {}
    for kind, project, extra in [
        ("backup", design, {}),
        ("sync", mirror, {}),
        ("restore", design, {"kind": "restore", "params": {"target": "/r/x", "conflict": "rename", "paths": []}}),
        ("verify", design, {"kind": "verify"}),
    ]:
        job = queue.enqueue(project, actor="test", source_job_id=ids.get("backup"), **extra)
        ids[kind] = job.id
        if kind == "restore":
            queue.finish(job.id, "failed", error_class="IntegrityError", message="archive x: SHA-256 differs")
        else:
            queue.finish(job.id, "succeeded")
    return ids


def _history_rows(html: str) -> dict[int, str]:
    """{job id: the kind column's text}."""
    return {int(job_id): kind for job_id, kind in
            re.findall(r'<tr data-job="(\d+)">\s*<td><a [^>]*>\d+</a></td>\s*<td class="job-kind">([^<]*)</td>', html)}


def _card_title(html: str, job_id: int) -> str:
    heading = re.search(rf'<h3 class="h6 mb-0[^"]*"[^>]*><a href="/backup/jobs/{job_id}">#{job_id}</a> (.*?)</h3>',
                        html)
    return re.sub(r"<[^>]+>", "", heading.group(1))


@pytest.mark.parametrize("lang, labels", [
    ("zh_CN", {"backup": "备份", "sync": "同步", "restore": "还原", "verify": "校验"}),
    ("en", {"backup": "Backup", "sync": "Sync", "restore": "Restore", "verify": "Verify"}),
])
def test_history_card_and_job_page_name_the_kind_in_the_page_s_language(app, jobs_of_every_kind, lang, labels):
    client = app.test_client()
    client.set_cookie("lang", lang)
    ids = jobs_of_every_kind

    def get(url: str) -> str:
        with app.app_context():  # Flask-Babel caches the locale on the app context: one per request
            response = client.get(url)
        assert response.status_code == 200, url
        return response.get_data(as_text=True)

    assert _history_rows(get("/backup/history")) == {ids[kind]: labels[kind] for kind in ids}
    for kind, job_id in ids.items():
        project = "镜像" if kind == "sync" else "设计稿"
        assert _card_title(get(f"/backup/jobs/{job_id}/card"), job_id) == f"{labels[kind]} · {project}"
        page = get(f"/backup/jobs/{job_id}")
        assert f"<title>#{job_id} {labels[kind]} · {project} · StageBackup</title>" in page
        assert _card_title(page, job_id) == f"{labels[kind]} · {project}"
    restore_card = get(f"/backup/jobs/{ids['restore']}/card")
    assert 'data-status="failed"' in restore_card and "archive x: SHA-256 differs" in restore_card
    assert f'href="/backup/jobs/{ids["backup"]}"' in restore_card  # the backup it reads
    assert "<code>/r/x</code>" in restore_card
    assert ("保留两者（还原的文件改名）" if lang == "zh_CN" else "Keep both (rename the restored file)") in restore_card


def test_history_filters_by_kind(client, jobs_of_every_kind):
    ids = jobs_of_every_kind
    for kind, job_id in ids.items():
        html = client.get(f"/backup/history?kind={kind}").get_data(as_text=True)
        assert list(_history_rows(html)) == [job_id], kind
        assert f'<option value="{kind}" selected>' in html
    both = client.get("/backup/history?kind=restore&project=设计稿&status=failed").get_data(as_text=True)
    assert list(_history_rows(both)) == [ids["restore"]]
    none = client.get("/backup/history?kind=restore&status=succeeded").get_data(as_text=True)
    assert _history_rows(none) == {}


def test_history_with_an_unknown_kind_is_a_400_that_says_so(app, client, jobs_of_every_kind):
    response = client.get("/backup/history?kind=<b>nope</b>")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="history-filter-error">未知的任务类型：&lt;b&gt;nope&lt;/b&gt;</div>' in html
    assert len(_history_rows(html)) == len(jobs_of_every_kind)  # the other filters still apply: all jobs
    client.set_cookie("lang", "en")
    with app.app_context():
        html = client.get("/backup/history?kind=nope").get_data(as_text=True)
    assert "Unknown job kind: nope" in html


def test_a_failed_restore_is_never_titled_as_its_project(client, jobs_of_every_kind):
    job = db.session.get(Job, jobs_of_every_kind["restore"])
    assert job.project_name == "设计稿" and job.status == "failed"
    text = " ".join(re.sub(r"<[^>]+>", " ", client.get(f"/backup/jobs/{job.id}").get_data(as_text=True)).split())
    assert f"#{job.id} 设计稿" not in text and f"#{job.id} 还原 · 设计稿 失败" in text


def test_the_overview_s_recent_jobs_name_the_kind(client, jobs_of_every_kind):
    html = client.get("/backup").get_data(as_text=True)
    recent = html[html.index('class="table table-sm align-middle recent-jobs"'):]
    for kind, label in {"backup": "备份", "sync": "同步", "restore": "还原", "verify": "校验"}.items():
        project = "镜像" if kind == "sync" else "设计稿"
        job_id = jobs_of_every_kind[kind]
        assert re.search(rf'>{job_id}</a></td><td><span class="job-kind">{label}</span> · {project}</td>', recent)
