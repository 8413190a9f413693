"""A file-backed tape drive with st's semantics: the embedded default and the test double.

The drive's state (which cartridge is loaded, the position, st's file/block counters, block size) lives
in ``VTAPE_DIR/drives/NAME.json`` so that the CLI and the worker, separate processes, see one drive, as
they would see one ``/dev/nst0``; an exclusive ``flock`` on ``drives/NAME.lock`` is the "device is open"
of st (a second open gets EBUSY). Cartridges are folders (``cartridge.py``). The rules follow
``tape-st-reference.md`` §5: errno values and counters match st, including the early-warning zone
(a write ending inside it succeeds and sets EOT, the next one gets ENOSPC, then they alternate).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os

from . import mtio
from .cartridge import Medium, write_json_atomic
from .handle import TapeHandle, os_error
from .mtio import MtGet

# st's eof states that matter here.
NOEOF, FM, EOD, EOM_OK, EOD_1 = "noeof", "fm", "eod", "eom_ok", "eod_1"
_UNSUPPORTED = {mtio.MTRESET, mtio.MTTELL, mtio.MTRAS1, mtio.MTRAS2, mtio.MTRAS3}


def drive_paths(vtape_dir: str, drive: str) -> tuple[str, str]:
    base = os.path.join(vtape_dir, "drives")
    os.makedirs(base, exist_ok=True)
    return os.path.join(base, f"{drive}.json"), os.path.join(base, f"{drive}.lock")


def cartridge_path(vtape_dir: str, name: str) -> str:
    return os.path.join(vtape_dir, "cartridges", name)


def read_drive_state(vtape_dir: str, drive: str) -> dict | None:
    state_path, _ = drive_paths(vtape_dir, drive)
    try:
        with open(state_path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None


def write_drive_state(vtape_dir: str, drive: str, state: dict) -> None:
    write_json_atomic(drive_paths(vtape_dir, drive)[0], state)


def blank_state(cartridge: str | None) -> dict:
    return {"cartridge": cartridge, "position": 0, "fileno": 0, "blkno": 0, "block_size": 0, "density": None}


class VirtualHandle(TapeHandle):
    def __init__(self, vtape_dir: str, drive: str, *, write: bool = True, nonblock: bool = False,
                 rewind_on_close: bool = False):
        self.vtape_dir, self.name = vtape_dir, drive
        self.writable, self.rewind_on_close = write, rewind_on_close
        state_path, lock_path = drive_paths(vtape_dir, drive)
        self._lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise os_error(errno.EBUSY, f"drive {drive} is open in another process") from None
        self.medium: Medium | None = None
        self.missing: str | None = None  # the cartridge the drive holds, whose folder is gone
        try:
            self._state = read_drive_state(vtape_dir, drive) or blank_state(None)
            if self._state.get("cartridge"):
                try:
                    self.medium = Medium(cartridge_path(vtape_dir, self._state["cartridge"]))
                except OSError as exc:
                    if exc.errno != errno.ENOMEDIUM or not nonblock:
                        raise
                    self.missing = self._state["cartridge"]  # O_NONBLOCK opens an empty drive, as st does
            if not nonblock and self.medium is None:
                raise os_error(errno.ENOMEDIUM, f"no cartridge in {drive}")
            if not nonblock and write and self.medium.write_protected:
                raise os_error(errno.EROFS, f"the cartridge in {drive} is write-protected")
        except BaseException:
            self._release()
            raise
        self.block_size = int(self._state.get("block_size") or 0)
        self.density = self._state.get("density") or (self.medium.meta.get("density") if self.medium else 0)
        self.fileno, self.blkno = int(self._state.get("fileno", 0)), int(self._state.get("blkno", 0))
        self.f, self.r = self._locate(int(self._state.get("position", 0)))[0] if self.medium else (0, 0)
        self.eof = NOEOF
        self.wrote = False  # last operation was a write: positioning and close add a filemark

    # -- position ------------------------------------------------------------------------------
    def _files(self):
        return self.medium.files

    def _eod(self) -> tuple[int, int]:
        files = self._files()
        if files and not files[-1].terminated:
            return len(files) - 1, files[-1].blocks
        return len(files), 0

    def _object(self) -> int:
        files = self._files()
        return sum(files[i].blocks + 1 for i in range(self.f)) + self.r

    def _locate(self, position: int) -> tuple[tuple[int, int], bool]:
        """Object number → (file, block) and whether it exists (False: past end of data)."""
        before = 0
        for index, state in enumerate(self._files()):
            if position <= before + state.blocks:
                return (index, position - before), True
            before += state.blocks + (1 if state.terminated else 0)
        return self._eod(), position == before

    def _at_eod(self) -> bool:
        return (self.f, self.r) == self._eod()

    def _blocks_here(self) -> int:
        files = self._files()
        return files[self.f].blocks if self.f < len(files) else 0

    def _mark_here(self) -> bool:
        files = self._files()
        return self.f < len(files) and files[self.f].terminated and self.r == files[self.f].blocks

    # -- primitives ----------------------------------------------------------------------------
    def _need_medium(self) -> Medium:
        if self.medium is None:
            raise os_error(errno.ENOMEDIUM, f"no cartridge in {self.name}")
        return self.medium

    def _need_writable(self) -> Medium:
        medium = self._need_medium()
        if not self.writable or medium.write_protected:
            raise os_error(errno.EACCES, "write-protected" if medium.write_protected else "opened read-only")
        return medium

    def write(self, block) -> int:
        medium = self._need_writable()
        size = len(block)
        if size == 0:
            return 0
        if self.block_size:
            if size % self.block_size:
                raise os_error(errno.EINVAL, f"{size} is not a multiple of the block size {self.block_size}")
            pieces = [memoryview(block)[i:i + self.block_size] for i in range(0, size, self.block_size)]
        else:
            if size > medium.max_block:
                raise os_error(errno.EINVAL, f"block of {size} bytes exceeds the limit {medium.max_block}")
            pieces = [block]
        used = medium.used_bytes_after_truncate(self.f, self.r) + size
        if used > medium.capacity:
            self.eof = EOD_1
            raise os_error(errno.ENOSPC, "end of medium")
        in_warning_zone = used > medium.capacity - medium.early_warning
        if in_warning_zone and self.eof == EOM_OK:
            self.eof = EOD_1
            raise os_error(errno.ENOSPC, "early warning: end of medium is near")
        if not self._at_eod():  # writing anywhere but at end of data destroys what follows
            medium.truncate(self.f, self.r)
        for piece in pieces:
            medium.append_block(self.f, piece)
            self.r += 1
            if self.blkno >= 0:
                self.blkno += 1
        self.eof = EOM_OK if in_warning_zone else NOEOF
        self.wrote = True
        return size

    def read(self, size: int) -> bytes:
        medium = self._need_medium()
        self.wrote = False
        if self.r < self._blocks_here():
            start, length = medium.files[self.f].block_range(self.r)
            if self.block_size and length != self.block_size:
                raise os_error(errno.EIO, "block of another size in fixed-block mode")
            self.r += 1
            if self.blkno >= 0:
                self.blkno += 1
            if length > size:
                self.eof = NOEOF
                raise os_error(errno.ENOMEM, f"block of {length} bytes, buffer of {size}")
            self.eof = NOEOF
            return medium.read_block(self.f, self.r - 1)
        if self._mark_here():
            self._cross_mark_forward()
            return b""
        # End of data: one zero right after a filemark, EIO otherwise.
        if self.eof == FM:
            self.eof = EOD
            return b""
        self.eof = EOD
        raise os_error(errno.EIO, "end of data")

    def _cross_mark_forward(self) -> None:
        self.f, self.r = self.f + 1, 0
        if self.fileno >= 0:
            self.fileno += 1
        self.blkno, self.eof = 0, FM

    def _auto_mark(self) -> int:
        """Positioning after a write first writes a filemark (st §1); returns 1 if it did."""
        if self.wrote:
            self._weof(1)
            return 1
        return 0

    def _weof(self, count: int) -> None:
        medium = self._need_writable()
        self.wrote = False
        if count == 0:  # only flushes the buffer
            medium.flush(sync=True)
            return
        medium.truncate(self.f, self.r)
        for _ in range(count):
            medium.terminate(self.f)
            self.f, self.r = self.f + 1, 0
            if self.fileno >= 0:
                self.fileno += 1
            self.blkno = 0

    def _op(self, op: int, count: int) -> None:
        if op in _UNSUPPORTED:
            raise os_error(errno.ENOSYS)
        if op == mtio.MTSETDRVBUFFER:
            if os.geteuid() != 0:
                raise os_error(errno.EPERM, "SETDRVBUFFER needs CAP_SYS_ADMIN")
            return
        if op == mtio.MTLOAD:
            self._need_medium()
            self.wrote = False
            self._move(0, 0, 0, 0)
            return
        medium = self._need_medium()
        if op in (mtio.MTWEOF, mtio.MTWEOFI):
            self._weof(count)
            self.eof = NOEOF if self.eof not in (EOM_OK, EOD_1) else self.eof
            return
        if op == mtio.MTERASE:
            self._need_writable()
            medium.truncate(self.f, self.r)
            self.wrote = False
            return
        if op == mtio.MTNOP:
            medium.flush()
            return
        if op == mtio.MTSETBLK:
            if count < 0 or count > medium.max_block:
                raise os_error(errno.EINVAL, f"block size {count}")
            medium.flush()
            self.block_size = count
            return
        if op == mtio.MTSETDENSITY:
            self.density = count & 0xFF
            return
        if op in (mtio.MTREW, mtio.MTRETEN):
            self._auto_mark()
            self._move(0, 0, 0, 0)
        elif op in (mtio.MTOFFL, mtio.MTUNLOAD):
            if op == mtio.MTOFFL:
                self._auto_mark()
            self._move(0, 0, 0, 0)
            self.medium.close()
            self.medium = None
            self._state["cartridge"] = None
        elif op == mtio.MTSEEK:
            self._auto_mark()
            (f, r), exists = self._locate(count)
            self._move(f, r, 0 if count == 0 else -1, 0 if count == 0 else -1)
            if not exists:
                self.eof = EOD
                raise os_error(errno.EIO, f"position {count} is past end of data")
        elif op == mtio.MTEOM:
            self.wrote = False
            marks = sum(1 for state in medium.files if state.terminated)
            self._move(*self._eod(), marks, -1)
            self.eof = EOD
        elif op in (mtio.MTFSF, mtio.MTFSFM):
            self.wrote = False
            self._space_files(count)
            if op == mtio.MTFSFM:
                self._space_files_back(1)
        elif op in (mtio.MTBSF, mtio.MTBSFM):
            count += self._auto_mark()
            self._space_files_back(count)
            if op == mtio.MTBSFM:
                self._space_files(1)
        elif op == mtio.MTFSR:
            self.wrote = False
            self._space_records(count)
        elif op == mtio.MTBSR:
            self.wrote = False
            self._space_records_back(count)
        elif op in (mtio.MTLOCK, mtio.MTUNLOCK, mtio.MTCOMPRESSION):
            return
        else:
            raise os_error(errno.EINVAL, f"operation {op} is not supported by the virtual drive")

    def _move(self, f: int, r: int, fileno: int, blkno: int) -> None:
        self.medium.flush()
        self.f, self.r, self.fileno, self.blkno, self.eof = f, r, fileno, blkno, NOEOF

    def _space_files(self, count: int) -> None:
        self.medium.flush()
        for _ in range(count):
            files = self._files()
            if self.f < len(files) and files[self.f].terminated:
                self._cross_mark_forward()
            else:
                self.f, self.r = self._eod()
                self.eof = EOD
                raise os_error(errno.EIO, "no filemark before end of data")

    def _space_files_back(self, count: int) -> None:
        self.medium.flush()
        for _ in range(count):
            if self.f == 0:
                self._move(0, 0, 0, 0)
                raise os_error(errno.EIO, "beginning of tape")
            self.f -= 1
            self.r = self._files()[self.f].blocks
            if self.fileno > 0:
                self.fileno -= 1
            self.blkno, self.eof = -1, NOEOF

    def _space_records(self, count: int) -> None:
        self.medium.flush()
        for _ in range(count):
            if self.r < self._blocks_here():
                self.r += 1
                if self.blkno >= 0:
                    self.blkno += 1
                self.eof = NOEOF
            elif self._mark_here():
                self._cross_mark_forward()
                raise os_error(errno.EIO, "filemark")
            else:
                self.eof = EOD
                raise os_error(errno.EIO, "end of data")

    def _space_records_back(self, count: int) -> None:
        self.medium.flush()
        for _ in range(count):
            if self.r > 0:
                self.r -= 1
                if self.blkno > 0:
                    self.blkno -= 1
                self.eof = NOEOF
            elif self.f > 0:
                self._space_files_back(1)
                raise os_error(errno.EIO, "filemark")
            else:
                raise os_error(errno.EIO, "beginning of tape")

    def _get(self) -> MtGet:
        if self.medium is None:
            return MtGet(gstat=mtio.GMT_DR_OPEN, fileno=-1, blkno=-1,
                         dsreg=((self.density or 0) << mtio.MT_ST_DENSITY_SHIFT) | self.block_size)
        gstat = mtio.GMT_ONLINE | mtio.GMT_IM_REP_EN
        if self.medium.write_protected:
            gstat |= mtio.GMT_WR_PROT
        if self.f == 0 and self.r == 0:
            gstat |= mtio.GMT_BOT
        if self.eof == FM and self.blkno == 0:
            gstat |= mtio.GMT_EOF
        if self.eof in (EOM_OK, EOD_1):
            gstat |= mtio.GMT_EOT
        if self.eof in (EOD, EOD_1):
            gstat |= mtio.GMT_EOD
        dsreg = ((self.density or 0) << mtio.MT_ST_DENSITY_SHIFT) | self.block_size
        return MtGet(dsreg=dsreg, gstat=gstat, fileno=self.fileno, blkno=self.blkno)

    def _pos(self) -> int:
        self._need_medium()
        return self._object()

    def close(self) -> None:
        if self._lock_fd < 0:
            return
        try:
            if self.medium is not None:
                if self.wrote:
                    self._weof(1)
                if self.rewind_on_close:
                    self._move(0, 0, 0, 0)
                self._state.update(position=self._object(), fileno=self.fileno, blkno=self.blkno)
            self._state.update(block_size=self.block_size, density=self.density)
            write_drive_state(self.vtape_dir, self.name, self._state)
        finally:
            self._release()

    def _release(self) -> None:
        try:
            if self.medium is not None:
                self.medium.close()
                self.medium = None
        finally:
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1
