"""The drive card: what workers reported in `drives`, and a prompt when a job waits for media."""

from stagebackup.extensions import db
from stagebackup.models import Job, Project
from stagebackup.tape_models import Drive

from .web_support import running_job


def _drive_panel(html):
    start = html.index('<div class="card mb-3" id="drive-panel"')
    return html[start:html.index("</ul>", start)]


def test_configured_drive_not_reported_yet(client):
    panel = _drive_panel(client.get("/backup").get_data(as_text=True))
    assert 'data-drive="vtape0"' in panel and "尚未报告" in panel
    assert "hx-trigger" not in panel  # the panel does not poll itself: the page's live poller refreshes it


def test_drive_state_and_a_media_prompt(client, tmp_path):
    job_id = running_job(tmp_path, done=("scan", "compress"), current=("copy",))
    job = db.session.get(Job, job_id)
    job.status, job.drive = "waiting_media", "vtape0"
    db.session.get(Project, job.project_id).dest_pool = "night"
    db.session.add(Drive(name="vtape0", device="/data/vtape/vtape0", loaded_label="L00002", online=True,
                         write_protected=True, busy_job_id=job_id))
    db.session.commit()
    panel = _drive_panel(client.get("/backup").get_data(as_text=True))
    assert "<code class=\"drive-label\">L00002</code>" in panel
    assert "在线" in panel and "写保护" in panel and f"忙：任务 #{job_id}" in panel
    assert "请在 vtape0 中装入新磁带（池 night）" in panel and f"#{job_id} 设计稿" in panel
    fragment = _drive_panel(client.get("/backup/live?after=0&v=stale").get_data(as_text=True))
    assert fragment.startswith('<div class="card mb-3" id="drive-panel" hx-swap-oob="true">') and "L00002" in fragment


def test_a_drive_reported_by_a_worker_but_not_configured_here_is_still_shown(app, client):
    db.session.add(Drive(name="lto-b", device="/dev/nst1", online=False))
    db.session.commit()
    panel = _drive_panel(client.get("/backup").get_data(as_text=True))
    assert 'data-drive="lto-b"' in panel and "离线" in panel and "未装入" in panel
