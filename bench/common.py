"""Shared bench helpers: corpora from the shared generator, a real worker process per job, timing.

Kept small on purpose: each bench script measures its baseline tool and StageBackup back to back in the
same run and prints the ratio, so machine drift cancels out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS_SCRIPT = Path(os.environ.get("STAGEBACKUP_CORPUS_SCRIPT", REPO.parent / "shared/corpus/make_corpus.py"))
BENCH_DIR = Path(os.environ.get("STAGEBACKUP_BENCH_DIR", "/tmp/stagebackup-bench"))
CORPORA = {  # name: (files, total MiB)
    "small": (50_000, 250),
    "large": (200, 500),
    "seven": (2_000, 48),
}


def corpus(name: str) -> Path:
    """The named corpus, generated once and reused (the generator is deterministic)."""
    files, total_mb = CORPORA[name]
    out = BENCH_DIR / f"corpus-{name}-{files}-{total_mb}"
    if not (out / ".complete").exists():
        print(f"generating corpus {name}: {files} files, {total_mb} MiB in {out} ...", flush=True)
        subprocess.run([sys.executable, str(CORPUS_SCRIPT), "--files", str(files), "--total-mb", str(total_mb),
                        "--out", str(out), "--seed", "1", "--jobs", str(os.cpu_count() or 1)], check=True,
                       stdout=subprocess.DEVNULL)
        (out / ".complete").touch()
    return out


def shell_seconds(command: str) -> float:
    start = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True)
    return time.perf_counter() - start


def _flask(env: dict, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "stagebackup", *args], env=env, input=stdin,
                          capture_output=True, text=True, check=True)
    return done.stdout


def run_backup_job(source: Path, *, fmt: str = "tgz", level: int = 6, password: str | None = None,
                   settings: dict | None = None) -> dict:
    """One backup in a fresh data directory, by a real `flask worker run --burst` process.

    Returns the job's own duration (started → finished, from the database), the worker's peak RSS and
    the archives. The worker's start-up and the project setup are not counted.
    """
    work = Path(tempfile.mkdtemp(prefix="job-", dir=BENCH_DIR))
    env = dict(os.environ, STAGEBACKUP_DATA_DIR=str(work / "data"), FLASK_APP="stagebackup")
    env.update({f"STAGEBACKUP_{k}": str(v) for k, v in (settings or {}).items()})
    args = ["projects", "add", "bench", "--source", str(source), "--dest-dir", str(work / "dest"),
            "--format", fmt, "--level", str(level)]
    if password:
        args.append("--password-stdin")
    _flask(env, *args, stdin=(password + "\n") if password else None)
    job_id = json.loads(_flask(env, "jobs", "run", "bench", "--json"))["id"]
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "stagebackup", "worker", "run", "--burst"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "worker failed"
    job = json.loads(_flask(env, "jobs", "show", str(job_id), "--json"))
    assert job["status"] == "succeeded", job["error"]
    seconds = (datetime.fromisoformat(job["finished_at"][:-1]) - datetime.fromisoformat(job["started_at"][:-1]))
    result = {"seconds": seconds.total_seconds(), "peak_rss": usage.ru_maxrss * 1024, "archives": job["archives"],
              "work": work}
    return result


def cleanup(path: Path) -> None:
    subprocess.run(["rm", "-rf", str(path)], check=False)


def tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            total += st.st_size if not os.path.islink(os.path.join(dirpath, name)) else 0
    return total
