"""Deterministic source trees for the tests and the benchmarks: realistic bulk plus hostile entries.

The bulk is many small files (mostly compressible text, some incompressible), some medium ones and a few
large logs, random blobs and disk-image-like mixes, in a random directory tree. On top come the entries
that break naive backup code (see ``HOSTILE_KINDS``): names that are not UTF-8 or hold newlines and shell
characters, 250-byte names, a 40-level chain, dangling and looping symlinks, hard links, empty files and
folders, sparse files, and optionally a FIFO and a socket. Everything — names, sizes, bytes, modes and
nanosecond mtimes — follows from the seed: the same spec gives the same tree.

    python -m stagebackup.testing.corpus --files 2000 --total-mb 40 --out /tmp/tree [--seed 1]
                                         [--no-specials] [--utf8-only]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from stagebackup.testing import content
from stagebackup.testing.hostile import HOSTILE_KINDS, add_hostile_entries

MiB = 1 << 20
EPOCH_NS = 1_577_836_800 * 10**9  # 2020-01-01; mtimes spread over three years after it
SPAN_NS = 3 * 365 * 86400 * 10**9
BULK_KINDS = ("small_file", "large_file", "compressible", "incompressible")
_UNICODE = ("résumé", "naïve", "Ångström", "日本語", "中文文件", "данные", "Ελληνικά", "עברית", "한국어", "😀")
_TEXT_EXT = (".py", ".py", ".c", ".h", ".js", ".go", ".md", ".txt", ".json", ".cfg", ".html", ".csv")
_NOISE_EXT = (".png", ".jpg", ".gz", ".zip", ".pdf", ".mp4")


@dataclass(frozen=True)
class CorpusSpec:
    files: int = 300  # regular files of the bulk; hostile entries come on top
    total_mb: float = 12  # bytes of the bulk (sparse files' holes come on top)
    seed: str = "1"
    specials: bool = True  # a FIFO and a socket; off for 7-Zip, which blocks reading a FIFO
    utf8_only: bool = False  # no names that are not UTF-8: what a 7z archive can store


@dataclass
class Corpus:
    root: Path
    entries: dict[str, list[bytes]] = field(default_factory=dict)  # kind -> paths relative to root

    def add(self, kind: str, relpath: bytes) -> None:
        self.entries.setdefault(kind, []).append(relpath)

    def specials(self) -> set[bytes]:
        """FIFOs and sockets: archives and mirrors skip them (with a [SKIP] line)."""
        return set(self.entries.get("fifo", []) + self.entries.get("socket", []))


class _Names:
    """Unique names per directory: mostly plain identifiers, a few with unicode or spaces."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: dict[bytes, set[bytes]] = {}

    def new(self, directory: bytes, ext: str = "") -> bytes:
        used = self.used.setdefault(directory, set())
        while True:
            pick = self.rng.random()
            stem = "_".join(content.words(self.rng, self.rng.randint(1, 3)))
            if pick < 0.02:
                stem = f"{self.rng.choice(_UNICODE)}_{stem}"
            elif pick < 0.03:
                stem = f"{stem} {self.rng.choice(('copy', '(1)', 'final v2'))}"
            name = os.fsencode(stem + ext)
            if name not in used and len(name) <= 200:
                used.add(name)
                return name


def _directories(rng: random.Random, names: _Names, count: int) -> list[bytes]:
    dirs, depth = [b""], {b"": 0}
    for _ in range(count):
        parent = rng.choice(dirs)
        parent = parent if depth[parent] < 8 else b""
        path = os.path.join(parent, names.new(parent))
        dirs.append(path)
        depth[path] = depth[parent] + 1
    return dirs


def _bulk_sizes(rng: random.Random, spec: CorpusSpec) -> list[tuple[str, int]]:
    """(content kind, size) per regular file: small ones around 2 KiB, the rest shared by medium and large."""
    total = int(spec.total_mb * MiB)
    n_large = max(1, min(8, spec.files // 50))
    n_medium = max(1, min(500, spec.files // 10))
    n_small = max(0, spec.files - n_large - n_medium)
    small = [0 if rng.random() < 0.01 else min(64 << 10, int(rng.lognormvariate(math.log(2048), 1.0)))
             for _ in range(n_small)]
    small_total = sum(small)  # once: summed inside the comprehension it made a million files take days
    if small_total > 0.7 * total:
        small = [int(size * 0.7 * total / small_total) for size in small]
    rest = max(0, total - sum(small))
    medium_weights = [rng.lognormvariate(0, 1.0) for _ in range(n_medium)]
    large_weights = [rng.uniform(0.5, 1.5) for _ in range(n_large)]
    medium_budget = rest * 0.4
    sizes = [("noise" if rng.random() < 0.1 else "text", size) for size in small]
    sizes += [(rng.choice(("text", "log", "noise")), int(medium_budget * w / sum(medium_weights)))
              for w in medium_weights]
    large_kinds = ("log", "noise", "mixed", "text")
    sizes += [(large_kinds[i % 4], int((rest - medium_budget) * w / sum(large_weights)))
              for i, w in enumerate(large_weights)]
    return sizes


def _mtime_ns(rng: random.Random) -> int:
    return EPOCH_NS + rng.randrange(SPAN_NS)


def _write_bulk(corpus: Corpus, spec: CorpusSpec, rng: random.Random, names: _Names, dirs: list[bytes]) -> None:
    broot = os.fsencode(corpus.root)
    for index, (kind, size) in enumerate(_bulk_sizes(rng, spec)):
        directory = rng.choice(dirs)
        ext = rng.choice(_NOISE_EXT) if kind == "noise" else ".log" if kind == "log" else rng.choice(_TEXT_EXT)
        rel = os.path.join(directory, names.new(directory, ext))
        file_rng = random.Random(f"{spec.seed}:file:{index}")
        with open(os.path.join(broot, rel), "wb") as out:
            for chunk in content.KINDS[kind](file_rng, size):
                out.write(chunk)
        mtime = _mtime_ns(rng)
        os.chmod(os.path.join(broot, rel), 0o644)  # the same modes whatever the umask
        os.utime(os.path.join(broot, rel), ns=(mtime, mtime))
        if size == 0 or size <= 64 << 10 or size >= MiB:
            corpus.add("empty_file" if size == 0 else "small_file" if size <= 64 << 10 else "large_file", rel)
        if size:
            corpus.add("incompressible" if kind == "noise" else "compressible", rel)


def _stamp_directories(root: Path, rng: random.Random) -> None:
    """Deterministic folder mtimes, set last (adding entries changes them), deepest first."""
    broot = os.fsencode(root)
    found = [dirpath for dirpath, _dirs, _files in os.walk(broot)]
    for path in sorted(found, key=lambda p: (-p.count(b"/"), p)):
        mtime = _mtime_ns(rng)
        os.chmod(path, 0o755)
        os.utime(path, ns=(mtime, mtime))


def generate(out: Path, spec: CorpusSpec = CorpusSpec()) -> Corpus:
    """Write the tree under ``out`` (created; it must not exist or be empty) and list what it holds."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"refusing to write into non-empty {out}")
    out.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(out)
    rng = random.Random(f"{spec.seed}:layout")
    names = _Names(rng)
    dirs = _directories(rng, names, max(3, spec.files // 15))
    for directory in dirs[1:]:
        os.mkdir(os.path.join(os.fsencode(out), directory))
    _write_bulk(corpus, spec, rng, names, dirs)
    add_hostile_entries(corpus, rng, dirs, specials=spec.specials, utf8_only=spec.utf8_only)
    _stamp_directories(out, rng)
    return corpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, required=True, help="regular files of the bulk")
    parser.add_argument("--total-mb", type=float, required=True, help="MiB of file data in the bulk")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", default="1")
    parser.add_argument("--no-specials", action="store_true", help="no FIFO and no socket")
    parser.add_argument("--utf8-only", action="store_true", help="no names that are not UTF-8")
    args = parser.parse_args(argv)
    started = time.monotonic()
    spec = CorpusSpec(args.files, args.total_mb, args.seed, specials=not args.no_specials, utf8_only=args.utf8_only)
    try:
        corpus = generate(Path(args.out), spec)
    except FileExistsError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"corpus {corpus.root} in {time.monotonic() - started:.1f} s:")
    for kind in BULK_KINDS + HOSTILE_KINDS:
        print(f"  {kind:18s} {len(corpus.entries.get(kind, [])):7d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
