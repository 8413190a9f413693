"""The image's nginx configuration passes `nginx -t` (Debian's nginx-light, as in the image), with its
/tmp paths moved into the test's folder so the check leaves nothing behind."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"


def test_nginx_accepts_the_image_configuration(tmp_path):
    nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin")
    assert nginx, "nginx is missing: `make install-test` installs nginx-light"
    conf = tmp_path / "nginx.conf"
    conf.write_text((DOCKER_DIR / "nginx.conf").read_text().replace(" /tmp/", f" {tmp_path}/"))
    result = subprocess.run([nginx, "-t", "-q", "-c", str(conf)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "127.0.0.1:6996" in conf.read_text() and "listen 5555;" in conf.read_text()
