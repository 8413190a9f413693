"""The image, for real: built from the Dockerfile with Debian's docker.io on a base made with debootstrap, run
with a folder mounted read-only under /sources, backed up (to a directory and to the virtual tape) and
restored with the CLI inside the container, nginx and /healthz checked from the host, and stopped with one
SIGTERM in the middle of a job. Skipped, saying why, only when dockerd cannot start."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from pathlib import Path

import pytest

from ..treecompare import assert_same_tree
from .engine import base_image, build_image, docker, start_engine, stop_engine

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

UID = 10001  # the image's user (Dockerfile)
PROGRAMS = {"nginx", "web", "worker", "scheduler"}  # docker/supervisord.conf
GRACE_S = 60  # the stop grace period docs/deployment.md asks for
TAG = f"stage-backup:image-test-{os.getpid()}"


def _owned_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    os.chown(path, UID, UID)
    return path


def _source_tree(root: Path) -> Path:
    (root / "场景" / "sub").mkdir(parents=True)
    (root / "场景" / "shot 01.txt").write_text("第一镜\n")
    (root / "场景" / "sub" / "data.bin").write_bytes(os.urandom(300_000))
    (root / "readme.md").write_text("hello\n")
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


def _big_tree(root: Path) -> Path:
    """Incompressible data that takes the worker some seconds: a SIGTERM lands mid-job."""
    root.mkdir()
    root.chmod(0o755)  # not mkdir's mode: the suite's in-process apps leave this process with umask 077
    for n in range(48):
        (root / f"part{n:02d}.bin").write_bytes(os.urandom(2 * 1024 * 1024))
        (root / f"part{n:02d}.bin").chmod(0o644)
    return root


class Container:
    def __init__(self, name: str, image: str, root: Path):
        self.name, self.image, self.volume = name, image, f"{name}-data"
        self.src = _source_tree(root / "src")
        self.big = _big_tree(root / "big")
        self.dest = _owned_dir(root / "dest")
        self.restore = _owned_dir(root / "restore")
        self.url = ""

    def mounts(self) -> list[str]:
        return ["-v", f"{self.volume}:/data", "-e", "STAGEBACKUP_RESTORE_ROOTS=/restore",
                "-v", f"{self.dest}:/backups", "-v", f"{self.restore}:/restore",
                "-v", f"{self.src}:/sources/src:ro", "-v", f"{self.big}:/sources/big:ro"]

    def start(self) -> None:
        docker("run", "-d", "--name", self.name, "--stop-timeout", str(GRACE_S), "-p", "127.0.0.1::5555",
               *self.mounts(), self.image)
        host_port = docker("port", self.name, "5555").stdout.split()[0].rsplit(":", 1)[1]
        self.url = f"http://127.0.0.1:{host_port}"
        self.wait_for(lambda: self.get("/healthz")[0] == 200, "/healthz to answer 200", 180)

    def get(self, path: str) -> tuple[int, dict, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()
        except OSError:
            return 0, {}, b""

    def flask(self, *args: str) -> str:
        return docker("exec", self.name, "flask", *args, timeout=180).stdout

    def flask_json(self, *args: str):
        return json.loads(self.flask(*args, "--json"))

    def job_status(self, job_id: int) -> str:
        """Straight from the SQLite file, cheaply enough to poll several times a second."""
        query = f"import sqlite3; print(sqlite3.connect('/data/backup_system.db').execute(" \
                f"'SELECT status FROM jobs WHERE id = {int(job_id)}').fetchone()[0])"
        return docker("exec", self.name, "python", "-c", query).stdout.strip()

    def wait_for(self, condition, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                logs = docker("logs", "--tail", "40", self.name, check=False)
                pytest.fail(f"no {what} within {timeout} s; container log:\n{logs.stdout}{logs.stderr}")
            time.sleep(0.2)

    def run_job(self, project: str) -> int:
        job_id = self.flask_json("jobs", "run", project)["id"]
        self.wait_for(lambda: self.job_status(job_id) not in ("queued", "running"), f"end of job {job_id}", 300)
        return job_id

    def remove(self) -> None:
        docker("rm", "-f", self.name, check=False)
        docker("volume", "rm", "-f", self.volume, check=False)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    proc = start_engine(tmp_path_factory.mktemp("dockerd") / "dockerd.log")
    yield
    stop_engine(proc)


@pytest.fixture(scope="module")
def image(engine):
    build_image(TAG, base_image())
    yield TAG
    docker("rmi", "-f", TAG, check=False)


@pytest.fixture(scope="module")
def container(image, tmp_path_factory):
    box = Container(f"stagebackup-image-test-{os.getpid()}", image, tmp_path_factory.mktemp("image"))
    box.start()
    box.flask("tape", "label", "vtape0", "IMG001")
    yield box
    box.remove()


def test_nginx_serves_static_files_with_cache_headers_and_healthz_says_only_ok(container):
    status, headers, body = container.get("/static/css/app.css")
    assert status == 200 and body == (Path(__file__).parents[2] / "static/css/app.css").read_bytes()
    assert headers["Cache-Control"] == "max-age=3600" and headers["ETag"] and headers["Server"] == "nginx"
    assert "X-Frame-Options" not in headers  # the app sets it on all it answers: this came from nginx alone
    assert container.get("/healthz")[:3:2] == (200, b"ok")
    status, headers, _body = container.get("/sign-in")
    assert status == 200 and headers["X-Frame-Options"] == "DENY"  # proxied to the app


def test_the_first_start_says_where_the_keys_are(container):
    log = docker("logs", container.name).stdout
    assert "stagebackup: created the session secret key /data/secret_key\n" in log
    assert "stagebackup: created the master key /data/master.key:" in log
    keys = docker("exec", container.name, "stat", "-c", "%a %u", "/data/secret_key", "/data/master.key").stdout
    assert keys.split("\n")[:2] == [f"600 {UID}"] * 2


def test_the_images_health_check_passes(container):
    """The HEALTHCHECK's own command, run now rather than after its 30 s interval."""
    check = json.loads(docker("inspect", "-f", "{{json .Config.Healthcheck}}", container.image).stdout)
    assert check["Test"][0] == "CMD"
    docker("exec", container.name, *check["Test"][1:])


def test_every_process_runs_unprivileged(container):
    rows = docker("top", container.name, "-eo", "pid,uid,comm").stdout.splitlines()[1:]
    assert {row.split()[2] for row in rows} >= {"supervisord", "nginx", "gunicorn", "flask"}
    assert {row.split()[1] for row in rows} == {str(UID)}


def test_a_mounted_folder_is_backed_up_to_a_directory_and_to_tape_and_restored(container):
    container.flask("projects", "add", "场景-dir", "--source", "/sources/src", "--dest-dir", "/backups")
    container.flask("projects", "add", "场景-tape", "--source", "/sources/src", "--dest-tape", "vtape0")
    for project, target in (("场景-dir", "dir"), ("场景-tape", "tape")):
        backup = container.run_job(project)
        assert container.job_status(backup) == "succeeded", container.flask("jobs", "show", str(backup))
        restore = container.flask_json("restore", "run", str(backup), "--to", f"/restore/{target}")["id"]
        container.wait_for(lambda job=restore: container.job_status(job) not in ("queued", "running"),
                           f"end of restore {restore}", 300)
        assert container.job_status(restore) == "succeeded", container.flask("jobs", "show", str(restore))
        assert_same_tree(container.src, container.restore / target / "sources/src")
    assert any(container.dest.rglob("*.tar.gz"))
    container.flask("db", "backup", "--to", "/backups/catalog")  # docs/deployment.md's copy of the catalog
    assert len(list((container.dest / "catalog").glob("stagebackup-catalog-*/manifest.json"))) == 1


def test_start_refuses_an_unwritable_data_folder_and_an_unreachable_database(image, tmp_path):
    read_only = tmp_path / "root-owned"
    read_only.mkdir()
    read_only.chmod(0o755)  # readable, not writable, by the image's user whatever this process's umask
    refused = docker("run", "--rm", "-v", f"{read_only}:/data", image, check=False, timeout=180)
    assert refused.returncode == 1 and refused.stdout == ""
    assert re.fullmatch(r"stagebackup: cannot start: /data is not writable by stagebackup \(uid 10001\): .*\n",
                        refused.stderr)
    url = "postgresql+psycopg://nobody:secret@127.0.0.1:9/none"
    refused = docker("run", "--rm", "-e", f"STAGEBACKUP_DATABASE_URL={url}", image, check=False, timeout=180)
    assert refused.returncode == 1
    assert re.fullmatch(r"stagebackup: cannot start: cannot open the database "
                        r"postgresql\+psycopg://nobody:\*\*\*@127\.0\.0\.1:9/none: .*\n", refused.stderr)


def test_one_sigterm_mid_job_stops_every_process_with_0_and_leaves_no_job_running(container):
    container.flask("projects", "add", "big", "--source", "/sources/big", "--dest-tape", "vtape0", "--level", "9")
    job = container.flask_json("jobs", "run", "big")["id"]
    container.wait_for(lambda: container.job_status(job) != "queued", f"job {job} to start", 120)
    assert container.job_status(job) == "running", container.flask("jobs", "show", str(job))
    started = time.monotonic()
    docker("kill", "--signal", "TERM", container.name)
    exit_code = docker("wait", container.name, timeout=GRACE_S + 30).stdout.strip()
    took = time.monotonic() - started
    log = docker("logs", container.name).stdout
    stopped = dict(re.findall(r"INFO stopped: (\w+) \(exit status (\d+)\)", log))
    assert exit_code == "0" and took < GRACE_S
    assert stopped == dict.fromkeys(PROGRAMS, "0"), log[-3000:]
    assert "exited:" not in log  # no program ended by itself before the stop
    after = docker("run", "--rm", *container.mounts(), container.image, "flask", "jobs", "list", "--json",
                   timeout=180).stdout
    states = {row["id"]: row["status"] for row in json.loads(after)}
    assert states[job] in ("interrupted", "succeeded") and not {"queued", "running"} & set(states.values())


def test_a_worker_only_container_on_the_same_data_runs_the_queue(container):
    """The several-hosts recipe in small: a container that is only `worker` takes the queue's jobs."""
    docker("stop", container.name, timeout=GRACE_S + 30)  # stopped already by the test above, in file order

    def one_off(*args: str) -> str:
        return docker("run", "--rm", *container.mounts(), container.image, *args, timeout=180).stdout

    one_off("flask", "projects", "add", "worker-only", "--source", "/sources/src", "--dest-dir", "/backups")
    job = json.loads(one_off("flask", "jobs", "run", "worker-only", "--json"))["id"]
    one_off("worker", "--burst")
    shown = json.loads(one_off("flask", "jobs", "show", str(job), "--json"))
    assert shown["status"] == "succeeded", shown
