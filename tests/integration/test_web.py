"""The backup page and the seed's JSON API."""

from stagebackup import project_checks, projects
from stagebackup.extensions import db
from stagebackup.jobs import queue, workers


def make_job(tmp_path, name="设计稿", remark=None):
    src = tmp_path / name
    src.mkdir()
    project = projects.create(
        project_checks.ProjectSpec(name=name, sources=[str(src)], dest_dir=str(tmp_path / "dest")), actor="test"
    )
    return queue.enqueue(project, remark=remark, actor="test")


def test_root_redirects_to_the_backup_page(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/backup")


def test_backup_page_lists_projects_and_job_badges_from_local_assets(client, tmp_path):
    make_job(tmp_path, remark="首次全量")
    html = client.get("/backup").get_data(as_text=True)
    assert "设计稿" in html and "首次全量" in html
    assert html.count('data-state="pending"') == 4
    assert "/static/vendor/bootstrap/bootstrap.min.css" in html
    assert "/static/vendor/htmx/htmx.min.js" in html and "cdn" not in html.lower()
    assert client.get("/static/vendor/htmx/htmx.min.js").status_code == 200


def test_running_tasks_api_has_the_seed_shape_and_only_active_jobs(client, tmp_path):
    running = make_job(tmp_path, "a", remark="r")
    done = make_job(tmp_path, "b")
    worker = workers.register_worker("h", 1, None)
    assert queue.claim(worker) == running.id
    queue.finish(done.id, "cancelled")
    tasks = client.get("/api/backup/running-tasks").get_json()["tasks"]
    assert [t["id"] for t in tasks] == [running.id]
    task = tasks[0]
    assert task["status"] == "running" and task["remark"] == "r" and task["progress"] == 0
    assert task["stage_steps"][0] == {"code": "scan", "label": "扫描文件", "state": "pending"}
    db.session.remove()


def test_pages_answer_while_a_worker_holds_the_sqlite_write_lock(app, client, tmp_path):
    import sqlite3
    import time

    make_job(tmp_path)
    db.session.remove()
    writer = sqlite3.connect(app.config["DATABASE_URL"][len("sqlite:///"):], isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a worker in the middle of a progress flush
    try:
        started = time.monotonic()
        assert client.get("/backup").status_code == 200
        assert client.get("/api/backup/running-tasks").status_code == 200
        assert time.monotonic() - started < 5  # not stuck behind the busy timeout
    finally:
        writer.execute("ROLLBACK")
        writer.close()
