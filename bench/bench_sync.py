#!/usr/bin/env python3
"""A first mirror vs ``rsync -a SRC/ DST/ && sync -f DST``, and an incremental sync with nothing changed vs
``rsync -a SRC/ DST/``, measured in the same run.

    .venv/bin/python bench/bench_sync.py [--corpus DIR] [--files 50000 --total-mb 400] [--rounds 5]
                                          [--database-url URL]

Builds (or reuses) a tree from stagebackup.testing.corpus (in STAGEBACKUP_BENCH_DIR), mirrors it once
with StageBackup (an incremental sync project) and once with rsync, then times, alternately, a no-change
StageBackup sync job (claimed and run by a real worker loop in this process: scan, copy, finalize and the
mirror's catalog in the database) and a no-change ``rsync -a``. Prints the medians, the per-stage split of our job and
ratio = ours / rsync (target ≤ 1.0).

The first mirror creates every file: on ext4 without a journal, inodes freed in the last minutes are passed over
one by one when new ones are allocated, so a run right after a mass deletion nearby (another run's clean-up,
a test suite emptying /tmp) is slow for both tools. Give ``--workdir`` a fresh directory that was not just
emptied (docs/performance.md, "First mirror").
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import result, row, tree  # also puts the repository on sys.path

from stagebackup import create_app, project_checks, projects
from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.jobs.worker import Worker
from stagebackup.models import Archive, Job, JobStage, Project

NO_CHANGE_GOAL = 0.5  # a no-change sync in half rsync's time (the performance issue; it was 1.0 before)


def run_sync_job(app, project_id: int) -> tuple[float, int]:
    project = db.session.get(Project, project_id)
    job_id = queue.enqueue(project, trigger="cli", actor="bench").id
    db.session.commit()
    started = time.perf_counter()
    Worker(app, burst=True).run()
    elapsed = time.perf_counter() - started
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    assert job.status == "succeeded", (job.status, job.error_message)
    return elapsed, job_id


def stage_split(job_id: int) -> str:
    rows = db.session.query(JobStage).filter_by(job_id=job_id).all()
    parts = [f"{r.code} {(r.finished_at - r.started_at).total_seconds():.2f}s" for r in rows if r.finished_at]
    return ", ".join(parts)


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="existing source tree (default: build one in a temporary directory)")
    ap.add_argument("--files", type=int, default=50000)
    ap.add_argument("--total-mb", type=float, default=400)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--database-url", default="", help="default: SQLite in the temporary data directory")
    ap.add_argument("--workdir", help="where mirrors and the data directory go (default: a temporary dir)")
    args = ap.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-sync-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus = Path(args.corpus) if args.corpus else tree(args.files, args.total_mb)
    ours_dest, rsync_dest = work / "mirror-ours", work / "mirror-rsync"
    for path in (ours_dest, rsync_dest, work / "data"):
        shutil.rmtree(path, ignore_errors=True)

    app = create_app({"DATA_DIR": str(work / "data"), "DATABASE_URL": args.database_url})
    # The jobs run in this process, as `flask worker run` runs them: with the worker's GIL switch interval.
    sys.setswitchinterval(float(app.config["WORKER_GIL_SWITCH_INTERVAL_S"]))
    with app.app_context():
        spec = project_checks.ProjectSpec(name="bench-sync", sources=[str(corpus)], dest_dir=str(ours_dest),
                                    mode="sync", sync_strategy="incremental")
        project_id = projects.create(spec, actor="bench").id
        first, first_job = run_sync_job(app, project_id)
        # rsync promises nothing about durability: its baseline includes the `sync -f` that makes the mirror
        # durable, which our job does before it records the run.
        first_rsync = timed(["rsync", "-a", f"{corpus}/", f"{rsync_dest}/"])
        first_rsync += timed(["sync", "-f", str(rsync_dest)])
        print(f"initial mirror: ours {first:.2f}s ({stage_split(first_job)}), rsync -a + sync -f {first_rsync:.2f}s",
              flush=True)

        ours, theirs, splits = [], [], []
        for i in range(args.rounds):
            elapsed, job_id = run_sync_job(app, project_id)
            ours.append(elapsed)
            splits.append(stage_split(job_id))
            theirs.append(timed(["rsync", "-a", f"{corpus}/", f"{rsync_dest}/"]))
            print(f"round {i + 1}: ours {ours[-1]:.3f}s ({splits[-1]}), rsync {theirs[-1]:.3f}s", flush=True)
        members = db.session.query(Archive).filter_by(job_id=job_id).one().member_count
        db.session.remove()
        db.engine.dispose()

    entries = sum(1 for _ in os.walk(corpus)) + sum(len(f) for _, _, f in os.walk(corpus))
    ours_s, rsync_s = statistics.median(ours), statistics.median(theirs)
    print(f"corpus: {corpus} (~{entries} entries), catalog rows per job: {members}, database: "
          f"{args.database_url.split('://')[0] if args.database_url else 'sqlite'}")
    print(f"no-change incremental sync, median of {args.rounds}: ours {ours_s:.3f}s, rsync -a {rsync_s:.3f}s")
    print(f"ratio ours/rsync = {ours_s / rsync_s:.2f} (target <= {NO_CHANGE_GOAL})")
    result("sync", [
        row(f"first mirror ({corpus.name})", first, baseline="rsync -a && sync -f", theirs=first_rsync,
            ratio="ours/baseline", goal="<= 1.5"),
        row(f"no-change sync ({corpus.name})", ours_s, baseline="rsync -a", theirs=rsync_s, ratio="ours/baseline",
            goal=f"<= {NO_CHANGE_GOAL}"),
    ])
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
