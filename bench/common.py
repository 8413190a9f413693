"""Shared bench helpers: corpora from the project's generator, a real worker process per job, timing, and
the ``RESULT {json}`` last line that bench/run_all.py collects into one table.

Kept small on purpose: each bench script measures its baseline tool and StageBackup back to back in the
same run and prints the ratio, so machine drift cancels out.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from stagebackup.testing.corpus import CorpusSpec, generate  # noqa: E402

BENCH_DIR = Path(os.environ.get("STAGEBACKUP_BENCH_DIR", "/tmp/stagebackup-bench"))
CORPORA = {  # name: (files, total MiB)
    "small": (50_000, 250),
    "large": (200, 500),
    "seven": (2_000, 48),
}


def corpus(name: str, scale: float = 1.0, *, utf8_only: bool = False) -> Path:
    """The named corpus (its file count and size times ``scale``), generated once and reused."""
    files, total_mb = CORPORA[name]
    return tree(max(1, round(files * scale)), total_mb * scale, utf8_only=utf8_only)


def tree(files: int, total_mb: float, *, utf8_only: bool = False) -> Path:
    """A generated tree of that size under BENCH_DIR, reused by later runs (the generator is deterministic).

    No FIFO or socket: 7-Zip blocks reading a FIFO, and the baselines would not compare like with like.
    ``utf8_only`` for 7z, which cannot store other names (the job leaves them out with an error).
    """
    out = BENCH_DIR / f"tree-{files}-{total_mb:g}MiB-seed1{'-utf8' if utf8_only else ''}"
    done = BENCH_DIR / f"{out.name}.complete"  # beside the tree: the tree holds the source, nothing else
    if not done.exists():
        print(f"generating a tree of {files} files, {total_mb:g} MiB in {out} ...", flush=True)
        cleanup(out)
        generate(out, CorpusSpec(files=files, total_mb=total_mb, seed="1", specials=False, utf8_only=utf8_only))
        done.touch()
    return out


def result(bench: str, rows: list[dict]) -> None:
    """The machine-readable last line: one row per measure, as bench/run_all.py tabulates them."""
    print("RESULT " + json.dumps({"bench": bench, "rows": rows}), flush=True)


def row(measure: str, ours: float, *, baseline: str | None = None, theirs: float | None = None,
        ratio: str = "baseline/ours", goal: str = "", unit: str = "s") -> dict:
    """One measure. With a baseline, ``ratio`` says which way it is taken: "baseline/ours" (times: higher is
    better) or "ours/baseline" (lower is better); ``goal`` (e.g. ">= 0.90") applies to the ratio then, else to
    ``ours`` (e.g. "<= 100" ms)."""
    value = None
    if theirs is not None:
        value = theirs / ours if ratio == "baseline/ours" else ours / theirs
    return {"measure": measure, "ours": round(ours, 4), "theirs": None if theirs is None else round(theirs, 4),
            "baseline": baseline, "ratio": None if value is None else round(value, 3),
            "ratio_is": ratio if theirs is not None else None, "goal": goal, "unit": unit}


def shell_seconds(command: str) -> float:
    start = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True)
    return time.perf_counter() - start


def flask_cli(env: dict, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "stagebackup", *args], env=env, input=stdin,
                          capture_output=True, text=True, check=True)
    return done.stdout


def job_env(work: Path, settings: dict | None = None) -> dict:
    """The environment of `flask` commands on a fresh data directory under ``work``, with this checkout."""
    env = dict(os.environ, STAGEBACKUP_DATA_DIR=str(work / "data"), FLASK_APP="stagebackup",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env.update({f"STAGEBACKUP_{k}": str(v) for k, v in (settings or {}).items()})
    return env


def run_worker(env: dict) -> int:
    """Run `flask worker run --burst` until the queue is empty; returns its peak RSS in bytes."""
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "stagebackup", "worker", "run", "--burst"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "worker failed"
    return usage.ru_maxrss * 1024


def finished_job(env: dict, job_id: int) -> dict:
    """`flask jobs show --json` of a job that must have succeeded, with its own duration in ``seconds``."""
    job = json.loads(flask_cli(env, "jobs", "show", str(job_id), "--json"))
    assert job["status"] == "succeeded", job["error"]
    took = datetime.fromisoformat(job["finished_at"][:-1]) - datetime.fromisoformat(job["started_at"][:-1])
    return dict(job, seconds=took.total_seconds())


def run_backup_job(source: Path, *, fmt: str = "tgz", level: int = 6, password: str | None = None,
                   settings: dict | None = None) -> dict:
    """One backup in a fresh data directory, by a real `flask worker run --burst` process.

    Returns the job's own duration (started → finished, from the database), the worker's peak RSS and
    the archives. The worker's start-up and the project setup are not counted.
    """
    work = Path(tempfile.mkdtemp(prefix="job-", dir=BENCH_DIR))
    env = job_env(work, settings)
    args = ["projects", "add", "bench", "--source", str(source), "--dest-dir", str(work / "dest"),
            "--format", fmt, "--level", str(level)]
    if password:
        args.append("--password-stdin")
    flask_cli(env, *args, stdin=(password + "\n") if password else None)
    job_id = json.loads(flask_cli(env, "jobs", "run", "bench", "--json"))["id"]
    peak_rss = run_worker(env)
    job = finished_job(env, job_id)
    return {"seconds": job["seconds"], "peak_rss": peak_rss, "archives": job["archives"], "work": work,
            "id": job_id, "env": env, "stages": stage_seconds(work, job_id)}


def stage_seconds(work: Path, job_id: int) -> dict:
    """Each stage's (start, end) in seconds from the job's start, and ``after_compress``: how long the job ran
    after its compress stage had finished (read from the job's SQLite database)."""
    with contextlib.closing(sqlite3.connect(work / "data" / "backup_system.db")) as conn:
        started, finished = conn.execute("SELECT started_at, finished_at FROM jobs WHERE id = ?", (job_id,)).fetchone()
        rows = conn.execute("SELECT code, started_at, finished_at FROM job_stages WHERE job_id = ?",
                            (job_id,)).fetchall()
    t0 = datetime.fromisoformat(started)

    def since(at):
        return None if at is None else round((datetime.fromisoformat(at) - t0).total_seconds(), 3)

    stages = {code: (since(start), since(end)) for code, start, end in rows}
    compress_end = stages.get("compress", (None, None))[1]
    stages["after_compress"] = None if compress_end is None else round(since(finished) - compress_end, 3)
    return stages


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
