"""The restore pages through the Flask test client: pick, browse, search, restore, verify, job page."""

from __future__ import annotations

import os
import re

from flask_babel import refresh

from stagebackup.catalog import MemberBatcher
from stagebackup.errors import human_bytes
from stagebackup.extensions import db
from stagebackup.jobs import queue, workers
from stagebackup.jobs.progress import JobReporter
from stagebackup.jobs.worker import Worker
from stagebackup.models import Archive, ArchiveMember, Job
from stagebackup.paths import path_token
from stagebackup.restore import service
from stagebackup.restore.tasks import run_restore
from tests.integration.test_restore_jobs import backup, create_project, inside, restore_root
from tests.integration.web_support import poll_costs


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
    assert 'data-picker-for="restore-target"' in root and "scope=restore" in root  # the folder picker
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
    assert re.fullmatch(r"/backup/jobs/\d+", response.headers["Location"])  # every job has the one job page
    restore_id = int(response.headers["Location"].rsplit("/", 1)[1])
    running = client.get(f"/backup/jobs/{restore_id}").get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in running  # polls while queued
    db.session.rollback()
    assert Worker(app, burst=True).run() == 0
    done = client.get(f"/backup/jobs/{restore_id}").get_data(as_text=True)
    assert 'hx-trigger="every 1s"' not in done and 'data-status="succeeded"' in done
    assert (inside(target, src) / "客户A" / "logo_v3.ai").read_bytes() == b"vector"
    assert not (inside(target, src) / "notes.txt").exists()

    response = client.post(f"{url}/verify", data={"csrf_token": token})
    verify_id = int(response.headers["Location"].rsplit("/", 1)[1])
    db.session.rollback()
    assert Worker(app, burst=True).run() == 0
    db.session.expire_all()
    assert db.session.get(Job, verify_id).status == "succeeded"
    assert response.headers["Location"] == f"/backup/jobs/{verify_id}"
    assert '<span class="job-kind">校验</span>' in client.get(f"/backup/jobs/{verify_id}").get_data(as_text=True)

    # The old addresses of restore and verify job pages lead to the shared job page.
    for old_id in (restore_id, verify_id):
        moved = client.get(f"/restore/jobs/{old_id}")
        assert moved.status_code == 301 and moved.headers["Location"] == f"/backup/jobs/{old_id}"
    assert client.get(f"/restore/jobs/{job_id}").status_code == 404  # a backup never had a restore job page


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


class CardWatcher(JobReporter):
    """The real reporter; it flushes and fetches the job's card through the web, as a browser's poll would,
    while the archive is read and again once some file data was extracted."""

    def __init__(self, app, job_id: int):
        super().__init__(job_id, flush_interval_s=0.05)
        self.client, self.reading_card, self.live_card = app.test_client(), None, None

    def _card(self) -> str:
        self.flush(force=True)
        return self.client.get(f"/backup/jobs/{self.job_id}/card").get_data(as_text=True)

    def checkpoint(self) -> None:
        super().checkpoint()
        if self.reading_card is None and self.open_stages == ["read"]:
            self.reading_card = self._card()
        if self.live_card is None and "extract" in self.open_stages and self.bytes_done:
            self.live_card = self._card()


def _badges(html: str) -> list[tuple[str, str, str]]:
    return re.findall(r'data-stage="(\w+)" data-state="(\w+)">([^<]+)<', html)


def test_a_restore_job_renders_through_the_shared_card_with_the_backup_card_s_poll_costs(app, client, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    sizes = {"a.bin": 300_000, "b.bin": 200_000, "c.bin": 100_000}
    for name, size in sizes.items():
        (src / name).write_bytes(os.urandom(size))
    source = backup(app, create_project("设计稿", [src], tmp_path / "dest"))
    ensure_catalog(source.id, src)
    restore_id = service.request_restore(source.id, target=str(restore_root(app) / "card")).id
    db.session.rollback()
    assert queue.claim(workers.register_worker("h", 1, None)) == restore_id

    reporter = CardWatcher(app, restore_id)
    run_restore(restore_id, reporter)
    reporter.flush(force=True)
    queue.finish(restore_id, "succeeded")

    # While it ran: the same card as a backup's, with the restore's own stages, figures and current file
    # (while the archive's checksum is checked, the archive).
    archive_path = db.session.scalar(db.select(Archive.path).where(Archive.job_id == source.id))
    assert f'title="{archive_path}">{archive_path}</code>' in reporter.reading_card  # with its copy button
    assert _badges(reporter.reading_card)[:3] == [("locate", "done", "定位"), ("read", "current", "读取"),
                                                  ("extract", "pending", "解压/还原")]
    live = reporter.live_card
    assert live.startswith(f'<div class="job-status" id="job-status-{restore_id}"') and 'hx-trigger="every 1s"' in live
    assert _badges(live) == [("locate", "done", "定位"), ("read", "current", "读取"),
                             ("extract", "current", "解压/还原"), ("finalize", "pending", "完成")]
    total = sum(sizes.values())
    done, of = re.search(rf'data-figure="bytes">([^<]+) / {re.escape(human_bytes(total))}', live).group(1), total
    assert done != human_bytes(0) and done != human_bytes(of)
    files_done, files_total, folders = re.search(r"\((\d+) / (\d+) 个文件, (\d+) 个文件夹\)", live).groups()
    files_done, files_total = int(files_done), int(files_total)
    assert 0 < files_done < files_total
    assert 'data-figure="elapsed">0:00:0' in live
    assert re.search(r'class="small current-file".*<code class="long-text"[^>]*>[^<]*src/[abc]\.bin</code>', live)
    assert '<span class="job-kind">还原</span> · 设计稿' in live

    # Ended: every badge green, all bytes and files counted, the average rate; no more polling.
    card = client.get(f"/backup/jobs/{restore_id}/card").get_data(as_text=True)
    assert _badges(card) == [("locate", "done", "定位"), ("read", "done", "读取"),
                             ("extract", "done", "解压/还原"), ("finalize", "done", "完成")]
    assert f'data-figure="bytes">{human_bytes(total)} / {human_bytes(total)}' in card
    assert f"({files_total} / {files_total} 个文件, {folders} 个文件夹)" in card
    assert 'data-figure="rate">—' not in card and "hx-trigger" not in card
    page = client.get(f"/backup/jobs/{restore_id}").get_data(as_text=True)
    assert card in page  # the page includes the very partial the poll returns

    # The shared card poll with the log's cursor: lines after a sequence number, the restore's summary among them.
    lines = client.get(f"/backup/jobs/{restore_id}/card?after=0").get_data(as_text=True)
    assert "restored 3 file(s)" in lines
    last = int(re.findall(r'data-seq="(\d+)"', lines)[-1])
    assert 'data-seq="' not in client.get(f"/backup/jobs/{restore_id}/card?after={last}").get_data(as_text=True)

    source_id = source.id
    assert poll_costs(client, restore_id) == poll_costs(client, source_id) == (1, 2)


def test_restore_form_errors_sit_on_their_field_at_the_page_s_own_address(app, tmp_path):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    job = backup(app, create_project("p", [src], tmp_path / "dest"))
    url = f"/restore/backups/{job.id}"
    token = csrf_token(client, url)
    htmx = {"HX-Request": "true"}
    refused = client.post(url, data={"target": "relative/dir", "csrf_token": token}, headers=htmx)
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    error = re.search(r'id="restore-target-error">([^<]*)<', html)
    assert error and "不是绝对路径" in error.group(1)
    assert 'id="restore-error"' not in html  # not a banner
    refused = client.post(url, data={"target": str(restore_root(app) / "x"), "path": [path_token("a/../b")],
                                     "csrf_token": token}, headers=htmx)
    assert refused.status_code == 400 and 'id="restore-path-error"' in refused.get_data(as_text=True)
    started = client.post(url, data={"target": str(restore_root(app) / "ok"), "csrf_token": token}, headers=htmx)
    assert started.status_code == 204
    assert re.fullmatch(r"/backup/jobs/\d+", started.headers["HX-Redirect"])
