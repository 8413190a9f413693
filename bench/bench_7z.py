"""7z backup job throughput vs `7z a -m0=lzma2 -mf=off -mmt=$(nproc) -mx=LEVEL` on the same corpus.

    .venv/bin/python bench/bench_7z.py [--level 5] [--rounds N] [--corpus seven] [--scale 1.0]

Both sides use LZMA2 without filters at the same level, all cores (StageBackup compresses LZMA2 blocks on
every core, as 7-Zip does). Prints the throughput ratio (target ≥ 0.80) and the two archive sizes.
"""

from __future__ import annotations

import argparse
import os

from common import BENCH_DIR, cleanup, corpus, result, row, run_backup_job, shell_seconds, tree_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--level", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--corpus", default="seven")
    parser.add_argument("--scale", type=float, default=1.0, help="times the corpus's file count and size")
    args = parser.parse_args()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    src = corpus(args.corpus, args.scale, utf8_only=True)
    size = tree_bytes(src)
    nproc = os.cpu_count() or 1
    out = BENCH_DIR / "baseline.7z"
    baseline, ours, sizes = [], [], []
    for _ in range(args.rounds):
        out.unlink(missing_ok=True)
        baseline.append(shell_seconds(
            f"cd {src.parent} && 7z a -bd -m0=lzma2 -mf=off -mmt={nproc} -mx={args.level} -snl {out} {src.name}"
            " > /dev/null"))
        job = run_backup_job(src, fmt="7z", level=args.level)
        ours.append(job["seconds"])
        sizes.append(job["archives"][0]["size"])
        cleanup(job["work"])
    base_size = out.stat().st_size
    out.unlink()
    b, o = min(baseline), min(ours)
    print(f"[7z -mx{args.level}] {size / 2**20:.0f} MiB: 7z a {b:.2f} s ({size / b / 2**20:.2f} MiB/s, "
          f"{base_size / 2**20:.1f} MiB), StageBackup job {o:.2f} s ({size / o / 2**20:.2f} MiB/s, "
          f"{sizes[0] / 2**20:.1f} MiB)")
    print(f"[7z -mx{args.level}] throughput ratio (job / 7z a): {b / o:.2f}   (target >= 0.80)")
    result("7z", [row(f"7z -mx{args.level} ({src.name})", o, baseline=f"7z a -mmt={nproc}", theirs=b,
                      goal=">= 0.80")])


if __name__ == "__main__":
    main()
