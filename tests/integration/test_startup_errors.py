"""A misconfigured process says what is wrong in one line, never a traceback (and never a password)."""

import os
import subprocess

import pytest

from tests.conftest import flask_cmd


@pytest.mark.parametrize(
    ("data_dir", "url", "message"),
    [
        ("{tmp}/data", "foo://x", "invalid STAGEBACKUP_DATABASE_URL: Can't load plugin"),
        ("{tmp}/data", "postgresql+psycopg://u:s3cret@127.0.0.1:1/db",
         "cannot open the database postgresql+psycopg://u:***@127.0.0.1:1/db: connection failed"),
        ("{tmp}/data", "mysql+pymysql://u:s3cret@127.0.0.1:1/db",
         "cannot open the database mysql+pymysql://u:***@127.0.0.1:1/db: (2003, \"Can't connect to MySQL server"),
        ("{tmp}/data", "sqlite:////nonexistent/dir/x.db", "unable to open database file"),
        ("/proc/no-such-dir", "", "cannot use data directory /proc/no-such-dir"),
    ],
)
def test_bad_configuration_is_a_one_line_error(tmp_path, data_dir, url, message):
    env = dict(os.environ, STAGEBACKUP_DATA_DIR=data_dir.format(tmp=tmp_path), STAGEBACKUP_DATABASE_URL=url)
    result = subprocess.run(flask_cmd("projects", "list"), env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr and "s3cret" not in result.stderr
