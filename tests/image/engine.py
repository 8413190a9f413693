"""The Docker engine for the image test: Debian's docker.io, started here if it is not running, and the
CI-only base image made by .ci/docker-base-image.sh (debootstrap: no registry is reachable from CI)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Debian's client first: /usr/local/bin/docker on some machines is a newer one without the legacy builder's
# defaults. The legacy builder (DOCKER_BUILDKIT=0) is what Debian's 20.10 engine has without buildx.
DOCKER = shutil.which("docker", path="/usr/bin") or shutil.which("docker") or "docker"
ENV = {**os.environ, "DOCKER_BUILDKIT": "0", "DOCKER": DOCKER}
ENGINE_START_S = 60


def docker(*args: str, timeout: float = 120, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout, env=ENV, **kwargs)
    if check and result.returncode != 0:
        pytest.fail(f"docker {' '.join(args[:3])} … exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result


def engine_answers() -> bool:
    try:
        return docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _skip(reason: str) -> None:
    pytest.skip(f"image test skipped: dockerd cannot start: {reason}")


def start_engine(log_path: Path) -> subprocess.Popen | None:
    """None if an engine already answers (left running afterwards); else the dockerd this test started."""
    if engine_answers():
        return None
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        _skip("no dockerd (Debian's docker.io: `make install-test` installs it)")
    if os.geteuid() != 0:
        _skip("not root")
    log = open(log_path, "wb")  # noqa: SIM115 - dockerd writes it for as long as it runs
    proc = subprocess.Popen([dockerd], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + ENGINE_START_S
    while time.monotonic() < deadline and proc.poll() is None:
        if engine_answers():
            return proc
        time.sleep(0.5)
    stop_engine(proc)
    lines = log_path.read_text(errors="replace").strip().splitlines()
    _skip(lines[-1] if lines else f"no answer within {ENGINE_START_S} s")
    return None


def stop_engine(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def base_image() -> str:
    """The python base, built once and then found by its tag."""
    result = subprocess.run([str(REPO / ".ci/docker-base-image.sh")], capture_output=True, text=True, timeout=600,
                            env=ENV)
    if result.returncode != 0:
        pytest.fail(f".ci/docker-base-image.sh exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result.stdout.strip().splitlines()[-1]


def build_image(tag: str, base: str) -> None:
    docker("build", "-q", "--build-arg", f"BASE_IMAGE={base}", "-t", tag, str(REPO), timeout=900)
