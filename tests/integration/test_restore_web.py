"""The restore pages through the Flask test client: pick, browse, search, restore, verify, job page."""

from __future__ import annotations

import os
import re

from flask_babel import refresh

from stagebackup.catalog import MemberBatcher
from stagebackup.extensions import db
from stagebackup.jobs.worker import Worker
from stagebackup.models import Archive, ArchiveMember, Job
from stagebackup.paths import path_token
from tests.integration.test_restore_jobs import backup, create_project, inside, restore_root


def ensure_catalog(job_id: int, source) -> None:
    """The pipeline writes member rows; a backup that wrote none gets them here, the way it would."""
    if db.session.query(ArchiveMember).filter_by(job_id=job_id).count():
        return
    [archive] = db.session.query(Archive).filter_by(job_id=job_id).all()
    batcher = MemberBatcher(job_id, archive.id)
    for dirpath, dirnames, filenames in os.walk(os.fsencode(source)):
        st = os.lstat(dirpath)
        batcher.add(dirpath.lstrip(b"/"), "dir", mtime=st.st_mtime, mode=st.st_mode & 0o7777)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            kind = "symlink" if os.path.islink(full) else "file"
            batcher.add(full.lstrip(b"/"), kind, size=st.st_size if kind == "file" else 0, mtime=st.st_mtime,
                        mode=st.st_mode & 0o7777, link_target=os.readlink(full) if kind == "symlink" else None)
    batcher.flush()
    db.session.commit()


def csrf_token(client, url) -> str:
    html = client.get(url).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_pick_browse_search_restore_and_verify(app, tmp_path):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    src = tmp_path / "src"
    (src / "客户A").mkdir(parents=True)
    (src / "客户A" / "logo_v3.ai").write_bytes(b"vector")
    (src / "notes.txt").write_text("n")
    job = backup(app, create_project("设计稿", [src], tmp_path / "dest"))
    ensure_catalog(job.id, src)
    project_id, job_id = job.project_id, job.id

    page = client.get("/restore").get_data(as_text=True)
    assert "设计稿" in page
    page = client.get(f"/restore?project={project_id}").get_data(as_text=True)
    assert f'data-job="{job_id}"' in page

    # The root shows the folders above the source (implied by the members' paths), one level at a time.
    root = client.get(f"/restore/backups/{job_id}").get_data(as_text=True)
    top = str(src).lstrip("/").split("/")[0]
    assert f">{top}</a>" in root
    inner = client.get(f"/restore/backups/{job_id}?p={path_token(str(src).lstrip('/'))}").get_data(as_text=True)
    assert ">客户A</a>" in inner and "notes.txt" in inner

    results = client.get(f"/restore/backups/{job_id}?q=logo_v3").get_data(as_text=True)
    logo = str(src / "客户A" / "logo_v3.ai").lstrip("/")
    assert logo in results and "notes.txt" not in results

    url = f"/restore/backups/{job_id}"
    token = csrf_token(client, url)
    assert client.post(f"{url}/restore", data={"target": "/etc", "csrf_token": token}).status_code == 400
    refused = client.post(f"{url}/restore", data={"target": "/etc", "csrf_token": token}).get_data(as_text=True)
    assert "恢复目标 /etc 不在允许的恢复根目录之内" in refused  # the service's error, in the page's language
    assert 'id="restore-target" name="target" value="/etc"' in refused  # shown again as typed, to correct
    client.set_cookie("lang", "en")
    refresh()  # the test holds one app context for all requests, and Flask-Babel caches the locale in its g
    refused = client.post(f"{url}/restore", data={"target": "/etc", "csrf_token": token}).get_data(as_text=True)
    assert "Restore target /etc is outside the allowed restore roots" in refused
    client.delete_cookie("lang")
    refresh()
    assert client.post(f"{url}/restore", data={"target": str(restore_root(app) / "x")}).status_code == 400  # no CSRF

    target = restore_root(app) / "web"
    response = client.post(f"{url}/restore", data={
        "csrf_token": token, "target": str(target), "conflict": "rename", "path": [path_token(logo)]})
    assert response.status_code == 302
    restore_id = int(response.headers["Location"].rsplit("/", 1)[1])
    running = client.get(f"/restore/jobs/{restore_id}").get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in running  # polls while queued
    db.session.rollback()
    assert Worker(app, burst=True).run() == 0
    done = client.get(f"/restore/jobs/{restore_id}").get_data(as_text=True)
    assert 'hx-trigger="every 1s"' not in done and 'data-status="succeeded"' in done
    assert (inside(target, src) / "客户A" / "logo_v3.ai").read_bytes() == b"vector"
    assert not (inside(target, src) / "notes.txt").exists()

    response = client.post(f"{url}/verify", data={"csrf_token": token})
    verify_id = int(response.headers["Location"].rsplit("/", 1)[1])
    db.session.rollback()
    assert Worker(app, burst=True).run() == 0
    db.session.expire_all()
    assert db.session.get(Job, verify_id).status == "succeeded"
    assert "校验" in client.get(f"/restore/jobs/{verify_id}").get_data(as_text=True)


def test_damaged_query_strings_are_400_and_unknown_jobs_404(client):
    assert client.get("/restore/backups/999").status_code == 404
    assert client.get("/restore/jobs/999").status_code == 404


def test_pages_are_chinese_by_default_and_fully_english_on_request(app, client, tmp_path):
    import re as _re

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    job = backup(app, create_project("night", [src], tmp_path / "dest"))
    ensure_catalog(job.id, src)
    db.session.rollback()
    token = csrf_token(client, f"/restore/backups/{job.id}")
    verify = client.post(f"/restore/backups/{job.id}/verify", data={"csrf_token": token})
    assert verify.status_code == 302, verify.get_data(as_text=True)
    pages = ["/restore", f"/restore?project={job.project_id}", f"/restore/backups/{job.id}",
             f"/restore/backups/{job.id}?q=a", verify.headers["Location"]]
    zh = client.get(pages[2]).get_data(as_text=True)
    assert "校验此备份" in zh and "目标目录" in zh and "跳过已存在的文件" in zh
    client.set_cookie("lang", "en")
    refresh()  # the test holds one app context for all requests, and Flask-Babel caches the locale in its g
    cjk = _re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
    for url in pages:
        with app.app_context():  # Flask-Babel caches the locale on the app context: one per request
            html = client.get(url).get_data(as_text=True)
        html = _re.sub(r'<ul class="navbar-nav" id="language-switch">.*?</ul>', "", html, flags=_re.S)
        shown = _re.findall(r'(?:placeholder|aria-label|title)="([^"]*)"', html)
        text = " ".join([_re.sub(r"<[^>]+>", " ", html), *shown])
        assert not cjk.findall(text), (url, "".join(cjk.findall(text)))
    with app.app_context():
        assert ">Verify<" in client.get(verify.headers["Location"]).get_data(as_text=True)
