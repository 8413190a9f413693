#!/usr/bin/env python3
"""Restore speed: a restore job of a tar.gz backup of the large corpus vs ``pigz -dc ARCHIVE | tar -x``.

Both run in this process's machine, alternately, on the same archive (made by a real backup job), into
fresh folders on the same disk. The restore job is timed from claim to end (SHA-256 check before
extraction included); the ratio is baseline time / restore time (target >= 0.85).

    .venv/bin/python bench/bench_restore.py [--files 200] [--total-mb 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import BENCH_DIR, result, row, tree


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--total-mb", type=float, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from stagebackup import create_app, project_checks, projects
    from stagebackup.extensions import db
    from stagebackup.jobs import queue
    from stagebackup.jobs.worker import Worker
    from stagebackup.models import Archive, Job
    from stagebackup.restore import service

    corpus = tree(args.files, args.total_mb)
    work = Path(tempfile.mkdtemp(prefix="bench-restore-", dir=BENCH_DIR))
    try:
        app = create_app({"DATA_DIR": str(work / "data")})
        with app.app_context():
            project = projects.create(project_checks.ProjectSpec(name="bench", sources=[str(corpus)],
                                                           dest_dir=str(work / "dest")), actor="bench")
            job_id = queue.enqueue(project, actor="bench").id
            Worker(app, burst=True).run()
            job = db.session.get(Job, job_id)
            assert job.status == "succeeded", job.error_message
            archive = db.session.query(Archive).filter_by(job_id=job_id).one()
            archive_path, input_bytes = archive.path, job.bytes_total
            db.session.commit()
            print(f"corpus: {args.files} files, {input_bytes / 2**20:.0f} MiB; archive "
                  f"{os.path.getsize(archive_path) / 2**20:.0f} MiB")
            ours, baseline = [], []
            root = Path(app.config["RESTORE_ROOTS"][0])
            for n in range(args.rounds):
                out = work / f"tar-{n}"
                out.mkdir()
                started = time.perf_counter()
                subprocess.run(f"pigz -dc '{archive_path}' | tar -x -C '{out}'", shell=True, check=True)
                baseline.append(time.perf_counter() - started)
                shutil.rmtree(out)

                restore_job = service.request_restore(job_id, target=str(root / f"r{n}"))
                db.session.commit()
                started = time.perf_counter()
                Worker(app, burst=True).run()
                ours.append(time.perf_counter() - started)
                db.session.expire_all()
                done = db.session.get(Job, restore_job.id)
                assert done.status == "succeeded", done.error_message
                db.session.commit()
                shutil.rmtree(root / f"r{n}")
        b, o = statistics.median(baseline), statistics.median(ours)
        mib = input_bytes / 2**20
        runs = {name: ", ".join(f"{t:.2f}" for t in times) for name, times in (("b", baseline), ("o", ours))}
        print(f"pigz -dc | tar -x : {b:6.2f} s  {mib / b:6.1f} MiB/s  (runs: {runs['b']})")
        print(f"restore job       : {o:6.2f} s  {mib / o:6.1f} MiB/s  (runs: {runs['o']})")
        print(f"ratio (baseline time / restore time): {b / o:.2f}   target >= 0.85")
        result("restore", [row(f"restore tar.gz ({corpus.name})", o, baseline="pigz -dc | tar -x", theirs=b,
                               goal=">= 0.85")])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
