#!/usr/bin/env python3
"""A million files: tar.gz backup, catalog browse, restore of one folder and sync, with the worker's peak RSS.

    .venv/bin/python bench/bench_scale.py [--files 1000000] [--total-mb 2000] [--keep]

Generates (once, into STAGEBACKUP_BENCH_DIR; it takes a while) a tree of small files, then, each by a real
`flask worker run --burst` process in one data directory:
  1. a tar.gz backup, against `tar -cf - | pigz -p N -6` in the same run;
  2. a catalog browse: the top folder and its largest sub-folder, first page (in this process);
  3. a restore of that sub-folder, against `pigz -dc ARCHIVE | tar -x FOLDER` (tar reads the whole stream too);
  4. a sync project's first mirror, against `rsync -a && sync -f`, then a no-change sync against `rsync -a`.
Prints times and each worker's peak RSS; the goal is a flat memory: ≤ 200 MiB at 1,000,000 files, and
≤ 1.2× the figure at 50,000 files (run once with --files 50000 --total-mb 250 to compare).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from common import (
    BENCH_DIR,
    cleanup,
    finished_job,
    flask_cli,
    result,
    row,
    run_backup_job,
    run_worker,
    shell_seconds,
    tree,
)

MIB = 2 ** 20


def largest_folder(top: Path) -> str:
    """The top-level sub-folder holding the most entries (the restore's and the browse's subject)."""
    sizes = {entry.name: sum(len(f) + len(d) for _, d, f in os.walk(entry.path))
             for entry in os.scandir(top) if entry.is_dir(follow_symlinks=False)}
    return max(sizes, key=sizes.get)


def browse_ms(data_dir: Path, job_id: int, folders: list[str], repeat: int = 5) -> list[float]:
    """Median milliseconds for the first page of each folder, read from the catalog in this process."""
    from stagebackup import create_app
    from stagebackup.restore.browse import list_folder

    app = create_app({"DATA_DIR": str(data_dir)})
    times = []
    with app.app_context():
        for folder in folders:
            runs = []
            for _ in range(repeat):
                started = time.perf_counter()
                page = list_folder(job_id, folder)
                runs.append((time.perf_counter() - started) * 1000)
                assert page.entries, f"nothing listed in {folder!r}"
            times.append(statistics.median(runs))
    return times


def queue_job(env: dict, *args: str) -> int:
    return json.loads(flask_cli(env, *args, "--json"))["id"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1_000_000)
    ap.add_argument("--total-mb", type=float, default=2000)
    ap.add_argument("--keep", action="store_true", help="keep the data directory, archive and mirrors")
    args = ap.parse_args()
    nproc = os.cpu_count() or 1
    src = tree(args.files, args.total_mb)
    folder = largest_folder(src)
    top_folder = str(src).lstrip("/")  # members are named by absolute path without the slash, as GNU tar does
    member_folder = f"{top_folder}/{folder}"
    rows = []

    baseline_tgz = shell_seconds(f"tar -cf - -C {src.parent} {src.name} | pigz -p {nproc} -6 > {BENCH_DIR}/scale.tgz")
    backup = run_backup_job(src)
    env, work, job_id = backup["env"], backup["work"], backup["id"]
    print(f"tar.gz backup: ours {backup['seconds']:.1f} s, peak RSS {backup['peak_rss'] / MIB:.0f} MiB; "
          f"tar|pigz {baseline_tgz:.1f} s", flush=True)
    rows += [row(f"tar.gz backup, {args.files} files", backup["seconds"], baseline=f"tar|pigz -p{nproc} -6",
                 theirs=baseline_tgz),
             row("  its worker's peak RSS", backup["peak_rss"] / MIB, goal="<= 200", unit="MiB")]

    top_ms, sub_ms = browse_ms(work / "data", job_id, [top_folder, member_folder])
    print(f"browse (first page): top folder {top_ms:.1f} ms, {member_folder} {sub_ms:.1f} ms", flush=True)
    rows += [row("browse, first page of the top folder", top_ms, unit="ms", goal="<= 100"),
             row(f"browse, first page of {folder}", sub_ms, unit="ms", goal="<= 100")]

    restore_root = work / "data" / "restore"  # the default restore root
    out = BENCH_DIR / "scale-tar-x"
    cleanup(out)
    out.mkdir()
    # tar -C DIR stored names relative to DIR. GNU tar exits 2 for the folder's hard links to files outside it
    # (it cannot link to what it did not extract); it has still read the whole stream, which is what is timed.
    baseline_restore = shell_seconds(
        f"pigz -dc {BENCH_DIR}/scale.tgz | {{ tar -x -C {out} '{src.name}/{folder}' 2>/dev/null || true; }}")
    restore_id = queue_job(env, "restore", "run", str(job_id), "--to", str(restore_root / "r"),
                           "--path", member_folder)
    restore_rss = run_worker(env)
    restore = finished_job(env, restore_id)
    print(f"restore of {member_folder}: ours {restore['seconds']:.1f} s, peak RSS {restore_rss / MIB:.0f} MiB; "
          f"pigz -dc | tar -x {baseline_restore:.1f} s", flush=True)
    rows += [row(f"restore of one folder ({folder})", restore["seconds"], baseline="pigz -dc | tar -x FOLDER",
                 theirs=baseline_restore),
             row("  its worker's peak RSS", restore_rss / MIB, goal="<= 200", unit="MiB")]
    for path in (out, restore_root / "r", BENCH_DIR / "scale.tgz"):
        cleanup(path)

    mirror, rsync_mirror = work / "mirror", BENCH_DIR / "scale-rsync"
    cleanup(rsync_mirror)
    flask_cli(env, "projects", "add", "scale-sync", "--mode", "sync", "--source", str(src), "--dest-dir", str(mirror))
    sync_rss = []
    for label in ("first mirror", "no-change sync"):
        sync_id = queue_job(env, "jobs", "run", "scale-sync")
        sync_rss.append(run_worker(env))
        sync = finished_job(env, sync_id)
        command = f"rsync -a {src}/ {rsync_mirror}/"
        if label == "first mirror":
            command += f" && sync -f {rsync_mirror}"
        theirs = shell_seconds(command)
        print(f"{label}: ours {sync['seconds']:.1f} s, peak RSS {sync_rss[-1] / MIB:.0f} MiB; {command.split(' ')[0]} "
              f"{theirs:.1f} s", flush=True)
        rows.append(row(f"sync, {label}", sync["seconds"], baseline=command.replace(str(src), "SRC")
                        .replace(str(rsync_mirror), "DST"), theirs=theirs, ratio="ours/baseline"))
    rows.append(row("  the sync workers' peak RSS", max(sync_rss) / MIB, goal="<= 200", unit="MiB"))
    cleanup(rsync_mirror)
    if not args.keep:
        cleanup(work)
    result("scale", rows)


if __name__ == "__main__":
    main()
