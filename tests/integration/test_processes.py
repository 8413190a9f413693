"""The process set `make run` starts (Procfile under honcho), and the worker's cold shutdown."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.models import Job, Worker
from stagebackup.schedule import lease
from tests.conftest import REPO, flask_cmd, flask_env
from tests.integration.test_worker_processes import slow_project, wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_procfile_starts_web_worker_and_scheduler_and_ctrl_c_stops_them(app):
    port = free_port()
    honcho = Path(sys.executable).with_name("honcho")
    proc = subprocess.Popen(
        [str(honcho), "start", "-f", "Procfile", "--port", str(port)], cwd=REPO, env=flask_env(app),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        def page():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/backup", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(page, timeout=60, interval=0.3)
        wait_for(lambda: db.session.query(Worker).filter(Worker.stopped_at.is_(None)).count() == 1, timeout=30)
        wait_for(lambda: lease.holder_of() is not None, timeout=30)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        output, _ = proc.communicate(timeout=30)
    assert "web.1 stopped" in output and "worker.1 stopped (rc=0)" in output, output[-2000:]
    assert "scheduler.1 stopped (rc=0)" in output, output[-2000:]
    assert db.session.query(Worker).one().stopped_at is not None
    assert lease.holder_of() is None


def test_a_second_signal_stops_the_worker_at_once_and_the_job_ends_interrupted(app, tmp_path):
    # The first signal cannot stop a job stuck inside one read (a hung NAS, say): the worker only stops
    # at checkpoints. A sitecustomize in the worker's process makes every read hang for a minute.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import time\n"
        "from stagebackup.pipeline import source\n"
        "real = source.ExactReader.read\n"
        "def hanging_read(self, n=-1):\n"
        "    data = real(self, n)\n"
        "    if self.path.endswith(b'disk.img'):\n"
        "        time.sleep(60)\n"
        "    return data\n"
        "source.ExactReader.read = hanging_read\n"
    )
    job_id = queue.enqueue(slow_project(tmp_path), actor="test").id
    db.session.commit()
    env = flask_env(app)
    env["PYTHONPATH"] = f"{hook}{os.pathsep}{REPO}"
    worker = subprocess.Popen(flask_cmd("worker", "run"), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    staging = Path(app.config["CACHE_DIR"], f"job-{job_id}")
    staged = wait_for(lambda: next(staging.glob("*.tar.gz"), None), timeout=60)  # compressing, stuck
    time.sleep(0.5)
    worker.send_signal(signal.SIGTERM)
    time.sleep(1)
    assert worker.poll() is None  # warm shutdown waits for the stuck read
    worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=20)
    assert worker.returncode == 1, output
    assert "second signal: exiting now" in output
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    assert job.status == "interrupted" and job.error_message == "the worker was stopped"
    assert not staged.exists()


def _nice_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _registered(pid: int) -> bool:
    try:
        return db.session.query(Worker).filter_by(pid=pid).count() > 0
    finally:
        db.session.rollback()  # the next look must see the worker's commit (SQLite keeps a read's snapshot)


def test_the_worker_runs_jobs_below_the_web_pages_cpu_priority(app):
    own = os.nice(0)
    for setting, lower_by in ((None, 10), ("7", 7), ("0", 0)):  # the default, a chosen value, none
        env = flask_env(app)
        env.pop("STAGEBACKUP_WORKER_NICE", None)
        if setting is not None:
            env["STAGEBACKUP_WORKER_NICE"] = setting
        worker = subprocess.Popen(flask_cmd("worker", "run"), env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            wait_for(lambda: _registered(worker.pid), timeout=60)  # noqa: B023 (called in this iteration)
            assert _nice_of(worker.pid) == min(19, own + lower_by)
        finally:
            worker.send_signal(signal.SIGTERM)
            output, _ = worker.communicate(timeout=30)
        assert f"jobs run at nice {min(19, own + lower_by)}" in output


def test_a_worker_priority_out_of_range_is_refused_with_the_setting_named(app):
    for bad in ("20", "-5", "ten"):
        env = {**flask_env(app), "STAGEBACKUP_WORKER_NICE": bad}
        done = subprocess.run(flask_cmd("worker", "run", "--burst"), env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode != 0
        assert "invalid STAGEBACKUP_WORKER_NICE" in done.stderr + done.stdout, done.stderr
        assert "Traceback" not in done.stderr
