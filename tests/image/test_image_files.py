"""The image's files without an engine: the nginx configuration passes `nginx -t` (Debian's nginx-light, as in
the image; its /tmp paths moved into the test's folder so the check leaves nothing behind), and the compose
files pass `docker-compose config` and agree with the image."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO / "docker"


def test_nginx_accepts_the_image_configuration(tmp_path):
    nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin")
    assert nginx, "nginx is missing: `make install-test` installs nginx-light"
    conf = tmp_path / "nginx.conf"
    conf.write_text((DOCKER_DIR / "nginx.conf").read_text().replace(" /tmp/", f" {tmp_path}/"))
    result = subprocess.run([nginx, "-t", "-q", "-c", str(conf)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "127.0.0.1:6996" in conf.read_text() and "listen 5555;" in conf.read_text()


def _compose(*files: str) -> subprocess.CompletedProcess:
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is missing: `make install-test` installs Debian's docker-compose"
    args = [arg for name in files for arg in ("-f", str(REPO / name))]
    env = {"PATH": "/usr/bin:/bin", "STAGEBACKUP_DB_PASSWORD": "pw", "HOME": "/nonexistent"}
    return subprocess.run([compose, *args, "config"], capture_output=True, text=True, timeout=60, env=env, cwd=REPO)


def _stop_wait_s() -> int:
    """The longest a stop can take under supervisord: every program stops in turn."""
    text = (DOCKER_DIR / "supervisord.conf").read_text()
    return sum(int(seconds) for seconds in re.findall(r"^stopwaitsecs=(\d+)$", text, re.MULTILINE))


def test_the_compose_files_are_valid_and_agree_with_the_image():
    run = _compose("docker-compose-run.yml")
    assert run.returncode == 0, run.stderr
    app = yaml.safe_load(run.stdout)["services"]["stagebackup"]
    assert app["image"] == "stage-backup:latest"
    assert {(p["published"], p["target"]) for p in app["ports"]} == {(5555, 5555)}
    assert "stagebackup-data:/data:rw" in app["volumes"]
    assert all(v.endswith(":ro") for v in app["volumes"] if ":/sources/" in v)
    grace = int(app["stop_grace_period"].removesuffix("s"))
    assert _stop_wait_s() < grace  # supervisord finishes stopping before docker would kill it

    both = _compose("docker-compose-run.yml", "docker-compose-postgres.yml")
    assert both.returncode == 0, both.stderr
    services = yaml.safe_load(both.stdout)["services"]
    assert services["stagebackup"]["environment"]["STAGEBACKUP_DATABASE_URL"].startswith(
        "postgresql+psycopg://stagebackup:pw@postgres/")
    assert services["stagebackup"]["depends_on"]["postgres"]["condition"] == "service_healthy"
