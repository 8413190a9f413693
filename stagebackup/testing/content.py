"""File contents for generated trees: compressible text and logs, incompressible bytes, disk-image-like mixes.

Every generator takes its own ``random.Random`` and yields chunks of at most ``CHUNK`` bytes, so a large
file never sits in memory and the same generator state always gives the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from functools import cache

CHUNK = 4 << 20
_SYLLABLES = ("ka", "lo", "mi", "ne", "ta", "ri", "so", "vu", "pe", "da", "xi", "zo", "qua", "bre", "sta",
              "tor", "lin", "mar", "gen", "fer", "ion", "ex", "con", "pro", "syn", "ult", "ver", "ab", "cy")
_COMMON = ("the of and to in is that for it as with on be by at this from or an are which not but all backup "
           "archive server client request buffer stream block tape volume index config worker queue job error "
           "file path mirror snapshot restore header checksum offset size count value status node tree read "
           "write sync return if else for while def class import self none true false").split()
_LEVELS = ("INFO",) * 8 + ("DEBUG",) * 4 + ("WARN", "ERROR")


@cache
def _vocabulary() -> tuple[list[str], list[float]]:
    """~5,000 words with Zipf-like cumulative weights: common words dominate, as in prose and code."""
    rng = random.Random("vocabulary-v1")
    words = list(_COMMON)
    seen = set(words)
    while len(words) < 5000:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    cumulative, total = [], 0.0
    for rank in range(len(words)):
        total += 1.0 / (rank + 1) ** 1.07
        cumulative.append(total)
    return words, cumulative


@cache
def _line_pool() -> tuple[str, ...]:
    """20,000 lines files sample from: large enough that gzip's 32 KiB window rarely sees a line twice."""
    rng = random.Random("lines-v1")
    words, cumulative = _vocabulary()
    return tuple("    " * rng.randint(0, 3) + " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(3, 14)))
                 for _ in range(20_000))


def words(rng: random.Random, count: int) -> list[str]:
    vocabulary, cumulative = _vocabulary()
    return rng.choices(vocabulary, cum_weights=cumulative, k=count)


def text(rng: random.Random, size: int) -> Iterator[bytes]:
    """Prose/source-like lines (gzip -6 shrinks them about 3×)."""
    pool = _line_pool()
    made = 0
    while made < size:
        want = min(CHUNK, size - made)
        chunk = "\n".join(rng.choices(pool, k=want // 40 + 2)).encode()[:want]
        made += len(chunk)
        yield chunk


def log(rng: random.Random, size: int) -> Iterator[bytes]:
    """Timestamped log lines: repetitive structure, varying numbers."""
    pool, stamp = _line_pool(), 1_600_000_000 + rng.randrange(10**7)
    made = 0
    while made < size:
        want, lines, length = min(CHUNK, size - made), [], 0
        while length < want:
            stamp += rng.randrange(3)
            line = f"{stamp} {rng.choice(_LEVELS)} worker-{rng.randrange(16)} req={rng.getrandbits(32):08x} " \
                   f"{rng.choice(pool).strip()}"
            lines.append(line)
            length += len(line) + 1
        chunk = ("\n".join(lines) + "\n").encode()[:want]
        made += len(chunk)
        yield chunk


def noise(rng: random.Random, size: int) -> Iterator[bytes]:
    """Incompressible bytes, like media or already-compressed files."""
    for start in range(0, size, CHUNK):
        yield rng.randbytes(min(CHUNK, size - start))


def mixed(rng: random.Random, size: int) -> Iterator[bytes]:
    """A disk image or database file: runs of zeros, random blocks, text blocks and repeated patterns."""
    made = 0
    while made < size:
        want = min(size - made, rng.choice((64, 256, 1024)) << 10)
        pick = rng.random()
        if pick < 0.25:
            block = bytes(want)
        elif pick < 0.55:
            block = rng.randbytes(want)
        elif pick < 0.85:
            block = b"".join(text(rng, want))
        else:
            pattern = rng.randbytes(rng.choice((16, 512)))
            block = (pattern * (want // len(pattern) + 1))[:want]
        made += want
        yield block


KINDS = {"text": text, "log": log, "noise": noise, "mixed": mixed}
