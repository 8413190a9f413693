"""A virtual cartridge on disk: a folder with one data file per tape file, readable with ``dd``.

Layout (``VTAPE_DIR/cartridges/NAME/``)::

    cartridge.json   capacity, early-warning zone, write protection, density, block limits, sticker label
    000000.data      the blocks of tape file 0, back to back: exactly what ``dd if=/dev/nst0 bs=256K``
                     returns for that file from a real drive (an archive file is the archive itself)
    000000.len       the length of each block, little-endian u32 (variable-block mode keeps sizes)
    000000.fm        present when a filemark follows the file (a crashed writer leaves none)

End of data is after the last file. Block lengths are written at sync points (WEOF, close, positioning)
like a drive's buffer: on load, a tail of data no length describes (a torn write) is dropped, as the
reference's SIMH design drops a torn last record. Positions are object numbers as st's MTIOCPOS counts
them: every block and every filemark is one object.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sys
from array import array
from dataclasses import dataclass, field

FORMAT = "stagebackup-vtape/1"
META = "cartridge.json"
DEFAULT_DENSITY = 0x5E  # LTO-8, as the reference's virtual tape
MIN_BLOCK, MAX_BLOCK = 1, 8 * 1024 * 1024


def _name(index: int, ext: str) -> str:
    return f"{index:06d}.{ext}"


@dataclass
class TapeFileState:
    """Block end offsets of one tape file, and whether a filemark closes it."""

    ends: array = field(default_factory=lambda: array("Q"))
    terminated: bool = False
    flushed: int = 0  # how many lengths are in the .len file

    @property
    def blocks(self) -> int:
        return len(self.ends)

    @property
    def size(self) -> int:
        return self.ends[-1] if self.ends else 0

    def block_range(self, index: int) -> tuple[int, int]:
        start = self.ends[index - 1] if index else 0
        return start, self.ends[index] - start


def write_json_atomic(path: str, data: dict) -> None:
    temp = f"{path}.tmp"
    with open(temp, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=1, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, path)


def create(path: str, *, capacity_bytes: int, early_warning_bytes: int, write_protected: bool = False,
           density: int = DEFAULT_DENSITY, max_block: int = MAX_BLOCK) -> None:
    """A blank cartridge (no data: reading it gives EIO at once, like new media)."""
    os.makedirs(path)
    write_json_atomic(os.path.join(path, META), {
        "format": FORMAT, "capacity_bytes": int(capacity_bytes), "early_warning_bytes": int(early_warning_bytes),
        "write_protected": bool(write_protected), "density": density, "min_block": MIN_BLOCK,
        "max_block": max_block, "label": None,
    })


def gone(path: str) -> OSError:
    """The folder of a cartridge vanished: for the drive, the tape was taken out (st says ENOMEDIUM)."""
    return OSError(errno.ENOMEDIUM, f"cartridge {os.path.basename(path)} is gone: no folder {path}")


def read_meta(path: str) -> dict:
    try:
        with open(os.path.join(path, META), encoding="utf-8") as fh:
            meta = json.load(fh)
    except FileNotFoundError:
        raise gone(path) from None
    if meta.get("format") != FORMAT:
        raise OSError(errno.EIO, f"{path} is not a virtual cartridge ({FORMAT})")
    return meta


def update_meta(path: str, **changes) -> dict:
    meta = read_meta(path)
    meta.update(changes)
    write_json_atomic(os.path.join(path, META), meta)
    return meta


class Medium:
    """An opened cartridge: its files' block maps, data I/O and truncation. Locked while open."""

    def __init__(self, path: str):
        self.path = path
        self.meta = read_meta(path)
        self._lock_fd = self._open(".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise OSError(errno.EBUSY, f"cartridge {os.path.basename(path)} is in use") from None
        self._fds: dict[tuple[int, str], int] = {}
        self._changed: set[int] = set()  # files written or cut since the last sync: only they need fsync
        self.files: list[TapeFileState] = self._load()
        self.used_bytes = sum(f.size for f in self.files)

    # -- properties from cartridge.json ----------------------------------------------------------
    @property
    def capacity(self) -> int:
        return int(self.meta["capacity_bytes"])

    @property
    def early_warning(self) -> int:
        return int(self.meta["early_warning_bytes"])

    @property
    def write_protected(self) -> bool:
        return bool(self.meta["write_protected"])

    @property
    def max_block(self) -> int:
        return int(self.meta.get("max_block", MAX_BLOCK))

    # -- loading ---------------------------------------------------------------------------------
    def _file(self, index: int, ext: str) -> str:
        return os.path.join(self.path, _name(index, ext))

    def _open(self, name: str, flags: int, mode: int = 0o640) -> int:
        """``os.open`` inside the folder; its disappearance (mid-operation too) is a removed tape."""
        try:
            return os.open(os.path.join(self.path, name), flags | os.O_CLOEXEC, mode)
        except FileNotFoundError:
            raise gone(self.path) from None

    def _load(self) -> list[TapeFileState]:
        files: list[TapeFileState] = []
        index = 0
        while os.path.exists(self._file(index, "data")):
            lengths = array("I")
            try:
                with open(self._file(index, "len"), "rb") as fh:
                    raw = fh.read()
            except FileNotFoundError:  # crashed between creating the data and the length file
                raw = b""
            lengths.frombytes(raw[: len(raw) // 4 * 4])
            if sys.byteorder == "big":
                lengths.byteswap()
            ends, total = array("Q"), 0
            for length in lengths:
                total += length
                ends.append(total)
            size = os.path.getsize(self._file(index, "data"))
            while ends and ends[-1] > size:  # a length whose data never reached the disk
                ends.pop()
            state = TapeFileState(ends, os.path.exists(self._file(index, "fm")), len(ends))
            if size > state.size or len(raw) != len(ends) * 4:  # torn tail: drop it
                os.truncate(self._file(index, "data"), state.size)
                os.truncate(self._file(index, "len"), len(ends) * 4)
            files.append(state)
            index += 1
            if not state.terminated:
                break
        self._remove_from(index)  # anything after an unterminated file cannot be reached
        if files and not files[-1].terminated and files[-1].blocks == 0:
            self._remove_from(len(files) - 1)
            files.pop()
        return files

    def _remove_from(self, index: int) -> None:
        while True:
            found = False
            for ext in ("data", "len", "fm"):
                try:
                    os.unlink(self._file(index, ext))
                    found = True
                except FileNotFoundError:
                    pass
            if not found:
                return
            index += 1

    # -- data ------------------------------------------------------------------------------------
    def _fd(self, index: int, ext: str) -> int:
        key = (index, ext)
        fd = self._fds.get(key)
        if fd is None:
            fd = self._open(_name(index, ext), os.O_RDWR | os.O_CREAT)
            self._fds[key] = fd
        return fd

    def read_block(self, index: int, block: int) -> bytes:
        start, length = self.files[index].block_range(block)
        data = os.pread(self._fd(index, "data"), length, start)
        if len(data) != length:
            raise OSError(errno.EIO, f"cartridge data file {_name(index, 'data')} is short")
        return data

    def append_block(self, index: int, data) -> None:
        """Append a block to file ``index`` (created if it is the next one); the caller checked space."""
        if index == len(self.files):
            self.files.append(TapeFileState())
            os.close(self._open(_name(index, "len"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
        state = self.files[index]
        offset = state.size
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd(index, "data"), view, offset)
            offset += written
            view = view[written:]
        state.ends.append(offset)
        self.used_bytes += len(data)
        self._changed.add(index)

    def flush(self, sync: bool = False) -> None:
        """Write pending block lengths (the drive buffer); ``sync`` makes everything durable."""
        for index, state in enumerate(self.files):
            if state.flushed < state.blocks:
                lengths = array("I", [state.ends[i] - (state.ends[i - 1] if i else 0)
                                      for i in range(state.flushed, state.blocks)])
                if sys.byteorder == "big":
                    lengths.byteswap()
                os.pwrite(self._fd(index, "len"), lengths.tobytes(), state.flushed * 4)
                state.flushed = state.blocks
            if sync and index in self._changed and (index, "data") in self._fds:
                os.fsync(self._fds[(index, "data")])
                os.fsync(self._fd(index, "len"))
        if sync:
            self._changed.clear()

    def terminate(self, index: int) -> None:
        """Write a filemark after file ``index`` (an empty file if it does not exist yet)."""
        if index == len(self.files):
            self.files.append(TapeFileState())
            for ext in ("data", "len"):
                os.close(self._open(_name(index, ext), os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
        self.flush(sync=True)
        os.close(self._open(_name(index, "fm"), os.O_WRONLY | os.O_CREAT))
        self.files[index].terminated = True
        dir_fd = self._open(".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def truncate(self, index: int, block: int) -> None:
        """Drop everything from block ``block`` of file ``index`` on (what writing there destroys)."""
        self._close_fds(lambda key: key[0] > index)
        self._remove_from(index + 1)
        del self.files[index + 1:]
        if index < len(self.files):
            state = self.files[index]
            if block == 0:
                self._close_fds(lambda key: key[0] == index)
                self._remove_from(index)
                del self.files[index:]
            else:
                del state.ends[block:]
                state.flushed = min(state.flushed, block)
                state.terminated = False
                try:
                    os.unlink(self._file(index, "fm"))
                except FileNotFoundError:
                    pass
                os.ftruncate(self._fd(index, "data"), state.size)
                self._changed.add(index)
                os.ftruncate(self._fd(index, "len"), state.flushed * 4)
        self.used_bytes = sum(f.size for f in self.files)

    def used_bytes_after_truncate(self, index: int, block: int) -> int:
        """Bytes on the medium if everything from (file, block) on were dropped: a write's free space."""
        used = sum(state.size for state in self.files[:index])
        if index < len(self.files) and block:
            used += self.files[index].ends[block - 1]
        return used

    def _close_fds(self, which) -> None:
        for key in [k for k in self._fds if which(k)]:
            os.close(self._fds.pop(key))

    def close(self) -> None:
        try:
            self.flush(sync=True)
        finally:
            self._close_fds(lambda key: True)
            os.close(self._lock_fd)
