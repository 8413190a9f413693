"""The basket through the test client: ticks kept per user and backup across folders and searches, the
restore panel's count and total, the restore of what it holds, and restoring to the original location
under each conflict policy (overwrite only once confirmed)."""

from __future__ import annotations

import re

from stagebackup.paths import path_token
from tests.integration.test_restore_jobs import backup, create_project, log_lines, restore_root, run_queued
from tests.integration.web_support import csrf_token


def basket_panel(html: str) -> str:
    end = html.find('id="restore-where-folder"')
    return html[html.index('id="restore-basket"'):end if end >= 0 else None]


def test_ticks_survive_folders_and_searches_and_the_restore_takes_them(app, client, tmp_path):
    src = tmp_path / "src"
    (src / "客户A").mkdir(parents=True)
    (src / "客户A" / "logo_v3.ai").write_bytes(b"v" * 3000)
    (src / "客户A" / "notes.txt").write_text("n")
    (src / "客户B").mkdir()
    (src / "客户B" / "plan.pdf").write_bytes(b"p" * 2000)
    (src / "客户B" / "big.bin").write_bytes(b"b" * 5000)
    job_id = backup(app, create_project("篮子", [src], tmp_path / "dest")).id
    url = f"/restore/backups/{job_id}"
    token = csrf_token(client, url)
    folder_b = str(src / "客户B").lstrip("/")
    logo = str(src / "客户A" / "logo_v3.ai").lstrip("/")

    def tick(path: str, on: bool = True):
        return client.post(f"{url}/basket?path={path_token(path)}", data={"on": "1" if on else "0"},
                           headers={"X-CSRFToken": token, "HX-Request": "true"})

    panel = tick(folder_b).get_data(as_text=True)  # a whole folder, from its parent's listing
    assert "1 项" in panel and "6.8 KiB" in panel
    search = client.get(f"{url}?q=logo_v3").get_data(as_text=True)
    assert "1 项" in basket_panel(search)  # still there on the search page
    tick(logo)
    tick(str(src / "客户A" / "notes.txt").lstrip("/"))
    tick(str(src / "客户A" / "notes.txt").lstrip("/"), on=False)
    assert tick("no/such/thing").status_code == 200  # refused in the panel, not with a 500
    assert "no/such/thing" in basket_panel(tick("no/such/thing").get_data(as_text=True))
    other = client.get(f"{url}?p={path_token(str(src / '客户A').lstrip('/'))}").get_data(as_text=True)
    panel = basket_panel(other)
    assert "2 项" in panel and "9.8 KiB" in panel and "客户B/" in panel and "logo_v3.ai" in panel
    [box] = re.findall(rf'<input[^>]*value="{path_token(logo)}"[^>]*>', other)
    assert " checked" in box  # the page's box shows the tick kept in the basket

    target = restore_root(app) / "basket"
    post = client.post(url, data={"csrf_token": token, "target": str(target), "conflict": "skip"})
    assert post.status_code == 302, post.get_data(as_text=True)
    job = run_queued(app, int(post.headers["Location"].rsplit("/", 1)[1]))
    assert job.status == "succeeded", (job.error_message, log_lines(job.id))
    assert (target / logo).read_bytes() == b"v" * 3000 and (target / folder_b / "big.bin").exists()
    assert not (target / str(src / "客户A" / "notes.txt").lstrip("/")).exists()
    assert "0 项" in basket_panel(client.get(url).get_data(as_text=True))  # emptied once the restore is queued


def test_restoring_to_the_original_location_follows_the_conflict_policy(app, client, tmp_path):
    src = tmp_path / "site" / "src"
    src.mkdir(parents=True)
    (src / "a.txt").write_text("backed up")
    (src / "b.txt").write_text("b")
    job_id = backup(app, create_project("原位", [src], tmp_path / "dest")).id
    url = f"/restore/backups/{job_id}"
    token = csrf_token(client, url)
    member = str(src / "a.txt").lstrip("/")

    def restore(conflict: str, **extra):
        data = {"csrf_token": token, "where": "original", "conflict": conflict, "path": [path_token(member)], **extra}
        return client.post(url, data=data)

    refused = restore("skip")  # the source is outside every restore root
    assert refused.status_code == 400 and "不在允许的恢复根目录之内" in refused.get_data(as_text=True)
    app.config["RESTORE_ROOTS"] = [*app.config["RESTORE_ROOTS"], str(tmp_path / "site")]
    (src / "a.txt").write_text("edited since")

    def run(response):
        assert response.status_code == 302, response.get_data(as_text=True)
        job = run_queued(app, int(response.headers["Location"].rsplit("/", 1)[1]))
        assert job.status == "succeeded", (job.error_message, log_lines(job.id))
        return job

    skipped = run(restore("skip"))
    assert (src / "a.txt").read_text() == "edited since" and log_lines(skipped.id, "SKIP") == ["a.txt: already exists"]
    run(restore("rename"))
    assert (src / "a.restored-1.txt").read_text() == "backed up" and (src / "a.txt").read_text() == "edited since"
    unconfirmed = restore("overwrite")
    assert unconfirmed.status_code == 400 and 'id="restore-conflict-error"' in unconfirmed.get_data(as_text=True)
    assert (src / "a.txt").read_text() == "edited since"
    run(restore("overwrite", confirm_overwrite="y"))
    assert (src / "a.txt").read_text() == "backed up" and sorted(p.name for p in src.iterdir()) == [
        "a.restored-1.txt", "a.txt", "b.txt"]
