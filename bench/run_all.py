"""Run every bench/bench_*.py with small sizes and print one table of ratios (what ``make bench`` does).

Each script still measures its baseline in the same run and prints its own report, shown as it runs; this
collects the ``RESULT {json}`` line each one ends with. The sizes below keep the whole set to a few minutes
on two cores, so the ratios are noisy: for figures worth quoting, run a script alone at its own defaults.

    .venv/bin/python bench/run_all.py [--only tgz,sync] [--bench-dir DIR]

A bench script without an entry in SMALL is not run and makes the run fail: give it small arguments here.
Trees are generated once into the bench directory (STAGEBACKUP_BENCH_DIR) and reused by later runs.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SMALL = {  # script: its arguments for a quick run
    "bench_tgz.py": ["--scale", "0.2", "--rounds", "1"],
    "bench_7z.py": ["--scale", "0.25", "--rounds", "1"],
    "bench_sync.py": ["--files", "1000", "--total-mb", "10", "--rounds", "3"],
    "bench_restore.py": ["--files", "50", "--total-mb", "40", "--rounds", "2"],
    "bench_browse.py": ["--repeat", "3"],
    "bench_versions.py": ["--members", "60000", "--repeat", "3"],
    "bench_poll.py": ["--jobs", "5", "--clients", "20", "--seconds", "10"],
    "bench_restore_memory.py": ["--members", "20000"],
    "bench_scale.py": ["--files", "5000", "--total-mb", "20"],
    "bench_tape.py": ["--size-mib", "256", "--groups", "2", "--group-mib", "16", "--rounds", "1",
                      "--dir", "{bench_dir}/tape"],
}
_GOAL = re.compile(r"^\s*(<=|>=|<|>)\s*([0-9.]+)")
_COMPARE = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
COLUMNS = ("bench", "measure", "StageBackup", "baseline", "baseline took", "ratio", "ratio is", "goal", "met")
EMPTY = ("",) * (len(COLUMNS) - 2)


def run(script: Path, args: list[str], env: dict) -> tuple[dict | None, int, float]:
    """Run one script, echoing its output; returns its RESULT payload, exit status and wall time."""
    print(f"\n=== {script.name} {' '.join(args)}", flush=True)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(script), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace")
    payload = None
    for line in proc.stdout:
        if line.startswith("RESULT "):
            payload = json.loads(line[len("RESULT "):])
        else:
            print("  " + line, end="", flush=True)
    return payload, proc.wait(), time.monotonic() - started


def met(row: dict) -> str:
    """Whether the row reaches its goal: on the ratio when there is a baseline, else on our own figure."""
    match = _GOAL.match(row.get("goal") or "")
    value = row["ratio"] if row.get("baseline") else row["ours"]
    if not match or value is None:
        return ""
    return "yes" if _COMPARE[match.group(1)](value, float(match.group(2))) else "NO"


def cells(bench: str, row: dict) -> tuple[str, ...]:
    unit = row.get("unit", "s")
    theirs = "" if row.get("theirs") is None else f"{row['theirs']:.3g} {unit}"
    ratio = "" if row.get("ratio") is None else f"{row['ratio']:.2f}"
    return (bench, row["measure"], f"{row['ours']:.3g} {unit}", row.get("baseline") or "", theirs, ratio,
            row.get("ratio_is") or "", row.get("goal") or "", met(row))


def table(lines: list[tuple[str, ...]]) -> str:
    widths = [max(len(line[i]) for line in [COLUMNS, *lines]) for i in range(len(COLUMNS))]
    render = [" | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
              for line in [COLUMNS, *lines]]
    render.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(render)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated names, e.g. tgz,sync (default: all)")
    parser.add_argument("--bench-dir", default=os.environ.get("STAGEBACKUP_BENCH_DIR", "/tmp/stagebackup-bench"))
    args = parser.parse_args()
    only = {f"bench_{name.strip()}.py" for name in args.only.split(",") if name.strip()}
    bench_dir = Path(args.bench_dir).resolve()
    bench_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, STAGEBACKUP_BENCH_DIR=str(bench_dir))
    lines, failed = [], []
    for script in sorted(HERE.glob("bench_*.py")):
        name = script.name.removeprefix("bench_").removesuffix(".py")
        if only and script.name not in only:
            continue
        if script.name not in SMALL:
            lines.append((name, "not run: give it small arguments in bench/run_all.py SMALL", *EMPTY))
            failed.append(name)
            continue
        payload, status, seconds = run(script, [a.format(bench_dir=bench_dir) for a in SMALL[script.name]], env)
        if status != 0 or payload is None:
            lines.append((name, f"FAILED (exit status {status}, {'no' if payload is None else 'a'} RESULT line)",
                          *EMPTY))
            failed.append(name)
            continue
        lines += [cells(name, row) for row in payload["rows"]]
        print(f"=== {script.name}: {seconds:.0f} s", flush=True)
    print()
    print(table(lines))
    if failed:
        print(f"\nfailed or not run: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
