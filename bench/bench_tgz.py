"""tar.gz backup job throughput vs `tar -cf - DIR | pigz -p $(nproc) -6 > out`, and the worker's peak RSS.

    .venv/bin/python bench/bench_tgz.py [--corpus small|large|both] [--scale 1.0] [--rounds N]

Each round runs the baseline and a real StageBackup job (a `flask worker run --burst` process, default
settings: level 6, staged in the cache, copied to a directory) back to back on the same warm corpus, and
prints the ratio of throughputs (baseline seconds / job seconds; higher is better, target ≥ 0.90) and the
worker's peak RSS (target ≤ 200 MiB on the small-file corpus). The best round of each side is compared.
``--scale`` multiplies each corpus's file count and size (small: 50,000 files, 250 MiB; large: 200, 500 MiB).
"""

from __future__ import annotations

import argparse
import os

from common import BENCH_DIR, cleanup, corpus, result, row, run_backup_job, shell_seconds, tree_bytes


def bench(name: str, rounds: int, scale: float) -> list[dict]:
    src = corpus(name, scale)
    size = tree_bytes(src)
    nproc = os.cpu_count() or 1
    out = BENCH_DIR / "baseline.tar.gz"
    baseline, ours, rss = [], [], []
    for _ in range(rounds):
        baseline.append(shell_seconds(f"tar -cf - -C {src.parent} {src.name} | pigz -p {nproc} -6 > {out}"))
        job = run_backup_job(src, fmt="tgz", level=6)
        ours.append(job["seconds"])
        rss.append(job["peak_rss"])
        print(f"[{name}] tar|pigz {baseline[-1]:.2f} s, job {job['seconds']:.2f} s, "
              f"after compress {job['stages']['after_compress']} s, stages {job['stages']}", flush=True)
        cleanup(job["work"])
    out.unlink()
    b, o = min(baseline), min(ours)
    print(f"[{name}] {size / 2**20:.0f} MiB: tar|pigz {b:.2f} s ({size / b / 2**20:.1f} MiB/s), "
          f"StageBackup job {o:.2f} s ({size / o / 2**20:.1f} MiB/s)")
    print(f"[{name}] throughput ratio (job / tar|pigz): {b / o:.2f}   (target >= 0.90)")
    print(f"[{name}] worker peak RSS: {max(rss) / 2**20:.0f} MiB   (target <= 200 MiB)")
    work = f"tar.gz {name} ({src.name})"
    return [row(work, o, baseline=f"tar|pigz -p{nproc} -6", theirs=b, goal=">= 0.90"),
            row(f"{work}: worker peak RSS", max(rss) / 2**20, goal="<= 200", unit="MiB")]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=["small", "large", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in (["small", "large"] if args.corpus == "both" else [args.corpus]):
        rows += bench(name, args.rounds, args.scale)
    result("tgz", rows)
