"""The Linux SCSI tape driver (st) through ``os.open`` and ``fcntl.ioctl``: no ``mt`` subprocess.

Open the non-rewinding node (``/dev/nstN`` or ``/dev/tape/by-id/…-nst``): a rewinding node would rewind
on every close and lose the position between operations, so it is refused. The device is opened with
``O_NONBLOCK`` (which always succeeds, PBS does the same) so that "no cartridge" and "write-protected"
become status bits we can report instead of a 120 s wait; blocking mode is restored before any I/O.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import struct

from . import mtio
from .handle import TapeHandle
from .mtio import MtGet

_REWINDING_NODE = re.compile(r"^st\d+[lma]?$")


def is_rewinding_node(path: str) -> bool:
    """``/dev/st0`` (or a by-id link that resolves to it) rewinds on close; ``/dev/nst0`` does not."""
    return bool(_REWINDING_NODE.match(os.path.basename(os.path.realpath(path))))


class StHandle(TapeHandle):
    def __init__(self, path: str, *, write: bool = True, nonblock: bool = False, name: str | None = None,
                 allow_rewinding: bool = False):
        if not allow_rewinding and is_rewinding_node(path):
            raise OSError(errno.EINVAL, f"{path} rewinds on close: use the non-rewinding node (nst)")
        self.path, self.name = path, name or path
        flags = (os.O_RDWR if write else os.O_RDONLY) | os.O_CLOEXEC
        self.fd = os.open(path, flags | (os.O_NONBLOCK if nonblock else 0))
        self.nonblocking = nonblock

    def set_blocking(self) -> None:
        """Clear O_NONBLOCK once the status says a cartridge is there (PBS: F_SETFL)."""
        flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
        fcntl.fcntl(self.fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        self.nonblocking = False

    def _op(self, op: int, count: int) -> None:
        fcntl.ioctl(self.fd, mtio.MTIOCTOP, mtio.pack_mtop(op, count))

    def _get(self) -> MtGet:
        buf = bytearray(struct.calcsize(mtio.MTGET_FORMAT))
        fcntl.ioctl(self.fd, mtio.MTIOCGET, buf, True)
        return MtGet.unpack(buf)

    def _pos(self) -> int:
        buf = bytearray(struct.calcsize(mtio.MTPOS_FORMAT))
        fcntl.ioctl(self.fd, mtio.MTIOCPOS, buf, True)
        return struct.unpack(mtio.MTPOS_FORMAT, buf)[0]

    def write(self, block) -> int:
        return os.write(self.fd, block)

    def read(self, size: int) -> bytes:
        return os.read(self.fd, size)

    def close(self) -> None:
        """close() after a write adds a filemark: it is a sync point, so its error is raised."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)
