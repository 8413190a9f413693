"""What StageBackup writes on a tape besides archives: the label (file 0) and session index files.

Both are JSON, so ``dd if=/dev/nst0 bs=256K`` shows them to a person with no StageBackup:

- the **label** is one block: ``{"format": "stagebackup-tape-label/1", "label", "pool", "uuid",
  "created", "block_size"}``;
- an **index** (the last file of each backup session) is the session's catalog, split into blocks of
  the tape's block size: ``{"format": "stagebackup-tape-index/1", "label", "job", "project",
  "written_at", "archives": [{"name", "format", "encrypted", "kdf_iterations", "size", "sha256",
  "pieces": [{"label", "file_number", "piece", "bytes", "sha256"}], "members": [[path, kind, size,
  mtime, mode, link_target], …]}]}``. Paths are the names stored in the archive; names that are not
  UTF-8 appear as ``\\udcXX`` escapes (Python's surrogateescape), which ``json.loads`` gives back.
"""

from __future__ import annotations

import errno
import json
import uuid as uuidlib
from datetime import UTC, datetime

from .errors import ForeignTape
from .handle import TapeHandle
from .schemas import INDEX_FORMAT, LABEL_FORMAT, LABEL_NAME, Malformed, parse_json, validate_label

READ_BUFFER = 16 * 1024 * 1024  # larger than any block we or another program would write


def check_label(label: str) -> str:
    if not LABEL_NAME.match(label or ""):
        raise ValueError(f"invalid tape label {label!r}: 1-32 letters, digits, '.', '_' or '-', as on a barcode")
    return label


def new_label(label: str, pool: str, block_size: int) -> dict:
    return {
        "format": LABEL_FORMAT, "label": check_label(label), "pool": pool, "uuid": str(uuidlib.uuid4()),
        "created": datetime.now(UTC).isoformat(timespec="seconds"), "block_size": block_size,
    }


def read_label(tape: TapeHandle, drive: str) -> dict | None:
    """Rewind and read file 0: the label, None for a blank tape; ForeignTape for anything else.

    Leaves the tape after the label's filemark (at file 1), ready to space on.
    """
    tape.rewind()
    try:
        first = tape.read(READ_BUFFER)
    except OSError as exc:
        if exc.errno == errno.EIO:  # blank media: end of data at once
            return None
        if exc.errno in (errno.ENOMEM, errno.EINVAL):
            raise ForeignTape(drive, "its first block is larger than 16 MiB") from exc
        raise
    if not first:
        raise ForeignTape(drive, "it starts with a filemark")
    if not is_label_block(first):
        raise ForeignTape(drive, "its first block is not a StageBackup label")
    try:
        label = validate_label(parse_json(first))
    except Malformed as exc:
        raise ForeignTape(drive, f"its label is damaged: {exc}") from None
    try:
        tape.read(READ_BUFFER)  # the label's filemark
    except OSError:
        pass
    return label


def encode_label(label: dict) -> bytes:
    return json.dumps(label, sort_keys=True).encode() + b"\n"


def write_label(tape: TapeHandle, label: dict) -> None:
    """Rewind and write the label as file 0: everything after it on the tape is gone."""
    tape.rewind()
    tape.set_block_size(0)
    tape.write(encode_label(label))
    tape.write_filemarks(1)


def encode_index(index: dict) -> bytes:
    return json.dumps({"format": INDEX_FORMAT, **index}, ensure_ascii=True).encode() + b"\n"


def is_label_block(block: bytes) -> bool:
    return block.startswith(b'{') and LABEL_FORMAT.encode() in block[:200]
