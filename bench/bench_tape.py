"""Tape benchmarks, each against its baseline measured in the same run.

1. Moving a finished archive (default 1 GiB) to a virtual cartridge with the TapeSink's writer
   (reader thread → bounded block queue → one write() per 256 KiB block → synchronous filemark) versus
   ``dd if=archive of=cartridge bs=256K conv=fsync`` on the same disk. Target: ratio ≥ 0.95.
   (``conv=fsync`` because the mover's filemark is a sync point: both end with the data on disk.)
2. A compress-and-move job of several archive groups, real pipeline stages (scan.walk → write_tgz on
   threaded gzip, then the tape writer), with the stages overlapped (group k+1 compresses while group k is
   written to tape) versus the same stages one after the other. The overlapped one must be faster.

    .venv/bin/python bench/bench_tape.py [--size-mib 1024] [--groups 4] [--group-mib 96] [--dir DIR]

The working directory (default: ./data/bench-tape) must be on the disk under test; it is removed after.
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path

from common import result, row  # also puts the repository on sys.path

from stagebackup.pipeline.archive import ArchiveSpec, FileOutput, MemberSpool  # noqa: E402
from stagebackup.pipeline.scan import Rules, walk  # noqa: E402
from stagebackup.pipeline.tgz import write_tgz  # noqa: E402
from stagebackup.tape import vlibrary  # noqa: E402
from stagebackup.tape.virtual import VirtualHandle  # noqa: E402
from stagebackup.tape.writer import BlockFeeder, write_piece  # noqa: E402

BLOCK = 256 * 1024
MiB = 1024 * 1024


class NullReporter:
    error_count = 0

    def log(self, tag, message):
        pass

    def log_path(self, tag, path, note=""):
        pass

    def advance(self, *, nbytes=0, files=0, current=None):
        pass

    def checkpoint(self):
        pass


def make_file(path: Path, size: int, compressible: bool = False) -> None:
    chunk = os.urandom(4 * MiB)
    with open(path, "wb") as out:
        written = 0
        while written < size:
            piece = chunk if not compressible else chunk[: 2 * MiB] + bytes(2 * MiB)
            out.write(piece[: size - written])
            written += len(piece)
            chunk = os.urandom(4 * MiB) if compressible else chunk[1:] + chunk[:1]


def drop_caches_hint(path: Path) -> None:
    """Read the file once so both contenders start with it in the page cache (same conditions)."""
    with open(path, "rb") as fh:
        while fh.read(8 * MiB):
            pass


class Drive:
    """A fresh virtual drive and cartridge per run, under the working directory."""

    def __init__(self, root: Path, capacity: int):
        self.root = root
        self.n = 0
        self.capacity = capacity

    def open(self) -> VirtualHandle:
        self.n += 1
        vdir = str(self.root / f"vtape-{self.n}")
        vlibrary.create_cartridge(vdir, "BENCH", capacity_bytes=self.capacity, early_warning_bytes=2 * MiB)
        vlibrary.insert(vdir, "bench", "BENCH")
        return VirtualHandle(vdir, "bench")

    def clean(self) -> None:
        for path in self.root.glob("vtape-*"):
            shutil.rmtree(path)


def move(tape: VirtualHandle, archive: str, hash: bool = False) -> int:
    """The TapeSink's write path. With verify on (the default) it hashes nothing while writing; with
    verify off the feeder thread hashes beside the writes (``hash=True``)."""
    feeder = BlockFeeder(archive, BLOCK, hash=hash)
    try:
        result = write_piece(tape, feeder)
    finally:
        feeder.close()
    tape.write_filemarks(1)  # synchronous: the data is on disk when it returns
    return result.bytes


def bench_move(work: Path, size: int, rounds: int) -> tuple[float, float, float]:
    archive = work / "archive.bin"
    make_file(archive, size)
    drive = Drive(work, capacity=size * 2 + 64 * MiB)
    ours, hashed, dd = [], [], []
    for _ in range(rounds):
        drop_caches_hint(archive)
        target = work / "dd-cartridge.bin"
        start = time.perf_counter()
        subprocess.run(["dd", f"if={archive}", f"of={target}", "bs=256K", "conv=fsync", "status=none"], check=True)
        dd.append(time.perf_counter() - start)
        target.unlink()

        drop_caches_hint(archive)
        with drive.open() as tape:
            start = time.perf_counter()
            assert move(tape, str(archive)) == size
            ours.append(time.perf_counter() - start)
        drive.clean()

        drop_caches_hint(archive)
        with drive.open() as tape:
            start = time.perf_counter()
            assert move(tape, str(archive), hash=True) == size
            hashed.append(time.perf_counter() - start)
        drive.clean()
    archive.unlink()
    return statistics.median(ours), statistics.median(hashed), statistics.median(dd)


def make_groups(work: Path, groups: int, group_bytes: int) -> list[Path]:
    dirs = []
    for g in range(groups):
        d = work / f"group{g}"
        d.mkdir()
        for i in range(4):
            make_file(d / f"f{i}.bin", group_bytes // 4, compressible=True)
        dirs.append(d)
    return dirs


def compress(group: Path, out: Path) -> str:
    entries = walk([str(group)], Rules([], []), NullReporter())
    output, members = FileOutput(str(out)), MemberSpool(str(out) + ".members")
    try:
        write_tgz(entries, output, ArchiveSpec("tgz", 1, 2), reporter=NullReporter(), members=members)
    finally:
        output.close()
        members.close()
        os.unlink(str(out) + ".members")
    return str(out)


def sequential(groups: list[Path], work: Path, drive: Drive) -> float:
    start = time.perf_counter()
    staged = [compress(g, work / f"{g.name}.tar.gz") for g in groups]
    with drive.open() as tape:
        for path in staged:
            move(tape, path)
    elapsed = time.perf_counter() - start
    for path in staged:
        os.unlink(path)
    return elapsed


def overlapped(groups: list[Path], work: Path, drive: Drive) -> float:
    start = time.perf_counter()
    ready: queue.Queue = queue.Queue(maxsize=1)

    def producer():
        for g in groups:
            ready.put(compress(g, work / f"{g.name}.tar.gz"))
        ready.put(None)

    thread = threading.Thread(target=producer)
    thread.start()
    with drive.open() as tape:
        while (path := ready.get()) is not None:
            move(tape, path)
            os.unlink(path)
    thread.join()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--group-mib", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=os.path.join(os.environ.get("STAGEBACKUP_DATA_DIR", "data"), "bench-tape"))
    args = parser.parse_args()
    work = Path(args.dir).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        size = args.size_mib * MiB
        ours, hashed, dd = bench_move(work, size, args.rounds)
        print(f"dd bs=256K conv=fsync: {dd:.2f} s ({size / dd / MiB:.0f} MiB/s)")
        print(f"move {args.size_mib} MiB to a virtual cartridge (verify on: no hashing while writing): {ours:.2f} s "
              f"({size / ours / MiB:.0f} MiB/s); ratio {dd / ours:.2f} (target >= 0.95)")
        print(f"move with SHA-256 while writing (verify off): {hashed:.2f} s ({size / hashed / MiB:.0f} MiB/s); "
              f"ratio {dd / hashed:.2f}")

        groups = make_groups(work, args.groups, args.group_mib * MiB)
        drive = Drive(work, capacity=args.groups * args.group_mib * MiB * 2)
        seq, ovl = [], []
        for _ in range(args.rounds):
            seq.append(sequential(groups, work, drive))
            drive.clean()
            ovl.append(overlapped(groups, work, drive))
            drive.clean()
        s, o = statistics.median(seq), statistics.median(ovl)
        print(f"compress+move {args.groups} groups x {args.group_mib} MiB: sequential {s:.2f} s, overlapped "
              f"{o:.2f} s; speed-up {s / o:.2f}x (must be > 1)")
        moved = f"move {args.size_mib} MiB to a virtual cartridge"
        result("tape", [
            row(moved, ours, baseline="dd bs=256K conv=fsync", theirs=dd, goal=">= 0.95"),
            row(f"{moved}, SHA-256 while writing", hashed, baseline="dd bs=256K conv=fsync", theirs=dd),
            row(f"compress+move {args.groups} x {args.group_mib} MiB overlapped", o, baseline="same, sequential",
                theirs=s, goal="> 1"),
        ])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
