#!/usr/bin/env python3
"""Restore's memory at many members: the peak RSS of a ``flask worker run --burst`` process restoring a
backup of ``--members`` empty files (goal: <= 150 MiB at 1,000,000 members, flat in the member count).

The backup is made cheaply: a real backup job of one small file gives the project, job and archive rows;
its archive is then replaced by a generated tar.gz of empty files in folders of 1,000, and its catalog by
matching rows inserted directly. The restore is a real job run by a real worker process; its ru_maxrss is
the figure. A second, small run (``--members / 100``) shows how much of it is the worker's start-up.

    .venv/bin/python bench/bench_restore_memory.py [--members 1000000]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from common import BENCH_DIR, REPO, result, row

PER_FOLDER = 1000
INSERT_ROWS = 50_000


def write_archive(path: Path, members: int) -> None:
    with gzip.open(path, "wb", compresslevel=1) as gz, tarfile.open(fileobj=gz, mode="w|",
                                                                     format=tarfile.PAX_FORMAT) as tar:
        for n in range(members):
            if n % PER_FOLDER == 0:
                folder = tarfile.TarInfo(f"d{n // PER_FOLDER:05d}")
                folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o755, 1_600_000_000
                tar.addfile(folder)
            info = tarfile.TarInfo(f"d{n // PER_FOLDER:05d}/f{n:07d}")
            info.mode, info.mtime = 0o644, 1_600_000_000
            tar.addfile(info)


def catalog_rows(job_id: int, archive_id: int, members: int):
    for n in range(members):
        parent = f"d{n // PER_FOLDER:05d}"
        if n % PER_FOLDER == 0:
            yield {"job_id": job_id, "archive_id": archive_id, "parent": "", "name": parent, "kind": "dir",
                   "size": 0, "mtime": 1_600_000_000.0, "mode": 0o755}
        yield {"job_id": job_id, "archive_id": archive_id, "parent": parent, "name": f"f{n:07d}", "kind": "file",
               "size": 0, "mtime": 1_600_000_000.0, "mode": 0o644}


def prepare(work: Path, members: int) -> None:
    """A data directory whose one backup job has ``members`` catalogued empty files; prints the job's id and
    the restore root as JSON. Run in its own process (``--prepare``): a child's ru_maxrss starts from its
    parent's RSS at fork, so the process that starts the worker must stay small."""
    from sqlalchemy import delete, insert

    from stagebackup import create_app, project_checks, projects
    from stagebackup.extensions import db
    from stagebackup.jobs import queue
    from stagebackup.jobs.worker import Worker
    from stagebackup.models import Archive, ArchiveMember, Job

    source = work / "src"
    source.mkdir()
    (source / "seed.txt").write_text("seed\n")
    app = create_app({"DATA_DIR": str(work / "data")})
    with app.app_context():
        project = projects.create(project_checks.ProjectSpec(name="bench", sources=[str(source)],
                                                       dest_dir=str(work / "dest")), actor="bench")
        job_id = queue.enqueue(project, actor="bench").id
        Worker(app, burst=True).run()
        assert db.session.get(Job, job_id).status == "succeeded"
        archive = db.session.query(Archive).filter_by(job_id=job_id).one()
        started = time.perf_counter()
        write_archive(Path(archive.path), members)
        data = Path(archive.path).read_bytes()
        archive.sha256, archive.size, archive.member_count = hashlib.sha256(data).hexdigest(), len(data), members
        db.session.execute(delete(ArchiveMember).where(ArchiveMember.job_id == job_id))
        batch = []
        for values in catalog_rows(job_id, archive.id, members):
            batch.append(values)
            if len(batch) >= INSERT_ROWS:
                db.session.execute(insert(ArchiveMember), batch)
                batch = []
        if batch:
            db.session.execute(insert(ArchiveMember), batch)
        db.session.commit()
        took = time.perf_counter() - started
        print(f"{members} members: archive {len(data) / 2**20:.1f} MiB, catalog in {took:.0f} s", flush=True)
        print("PREPARED " + json.dumps({"job_id": job_id, "restore_root": app.config["RESTORE_ROOTS"][0]}))


def restore_peak_rss(env: dict, job_id: int, restore_root: str) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of the worker process running the restore of backup ``job_id``."""
    flask = [sys.executable, "-m", "flask", "--app", "stagebackup"]
    target = os.path.join(restore_root, "out")
    queued = subprocess.run([*flask, "restore", "run", str(job_id), "--to", target, "--json"], env=env, check=True,
                            capture_output=True, text=True).stdout
    restore_id = json.loads(queued)["id"]
    started = time.perf_counter()
    proc = subprocess.Popen([*flask, "worker", "run", "--burst"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    assert os.waitstatus_to_exitcode(status) == 0, "worker failed"
    shown = json.loads(subprocess.run([*flask, "jobs", "show", str(restore_id), "--json"], env=env, check=True,
                                      capture_output=True, text=True).stdout)
    assert shown["status"] == "succeeded", shown["error"]
    return usage.ru_maxrss / 1024, seconds


def measure(members: int) -> tuple[float, float]:
    work = Path(tempfile.mkdtemp(prefix="bench-restore-mem-", dir=BENCH_DIR))
    try:
        prepared = subprocess.run([sys.executable, __file__, "--prepare", str(work), str(members)], check=True,
                                  capture_output=True, text=True).stdout
        print(prepared.split("PREPARED ")[0], end="", flush=True)
        facts = json.loads(prepared.split("PREPARED ")[1])
        env = dict(os.environ, STAGEBACKUP_DATA_DIR=str(work / "data"), FLASK_APP="stagebackup",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        return restore_peak_rss(env, facts["job_id"], facts["restore_root"])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--prepare", nargs=2, metavar=("WORK", "MEMBERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        prepare(Path(args.prepare[0]), int(args.prepare[1]))
        return
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    small = max(1, args.members // 100)
    small_rss, _ = measure(small)
    rss, seconds = measure(args.members)
    print(f"worker peak RSS: {small_rss:.0f} MiB at {small} members, {rss:.0f} MiB at {args.members} members "
          f"(restore {seconds:.0f} s); goal <= 150 MiB at 1,000,000")
    result("restore memory", [row(f"restore peak RSS ({args.members} members)", rss, unit="MiB", goal="<= 150"),
                              row(f"restore peak RSS ({small} members)", small_rss, unit="MiB")])


if __name__ == "__main__":
    main()
