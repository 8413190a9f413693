"""The drive protocol: one open tape device, with the operations ``mt`` offers.

Both implementations speak the st interface underneath (write/read one block per call, MTIOCTOP,
MTIOCGET, MTIOCPOS) and raise ``OSError`` with st's errno values; this base class turns those primitives
into named operations, so everything above it (conformance tests, the writer, the reader, the CLI) runs
unchanged on ``/dev/nstN`` and on a virtual cartridge.
"""

from __future__ import annotations

import errno
import os

from . import mtio
from .mtio import DriveStatus, MtGet


class TapeHandle:
    """An open drive. Subclasses implement ``_op``, ``_get``, ``_pos``, ``write``, ``read``, ``close``."""

    name: str = "?"

    # -- primitives ------------------------------------------------------------------------------
    def _op(self, op: int, count: int) -> None:  # MTIOCTOP
        raise NotImplementedError

    def _get(self) -> MtGet:  # MTIOCGET
        raise NotImplementedError

    def _pos(self) -> int:  # MTIOCPOS
        raise NotImplementedError

    def write(self, block) -> int:
        """One call writes one block in variable mode; returns the bytes written."""
        raise NotImplementedError

    def read(self, size: int) -> bytes:
        """One call reads one block (b"" at a filemark); ENOMEM if the block is larger than ``size``."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- named operations ------------------------------------------------------------------------
    def status(self) -> DriveStatus:
        return DriveStatus.from_mtget(self._get())

    def mtget(self) -> MtGet:
        return self._get()

    def tell(self) -> int:
        """The drive's logical object number from BOT (READ POSITION); filemarks count as objects."""
        return self._pos()

    def seek(self, position: int) -> None:
        self._op(mtio.MTSEEK, position)

    def rewind(self) -> None:
        self._op(mtio.MTREW, 1)

    def load(self) -> None:
        self._op(mtio.MTLOAD, 1)

    def unload(self) -> None:
        """Rewind and eject (MTOFFL)."""
        self._op(mtio.MTOFFL, 1)

    def fsf(self, count: int = 1) -> None:
        self._op(mtio.MTFSF, count)

    def bsf(self, count: int = 1) -> None:
        self._op(mtio.MTBSF, count)

    def fsr(self, count: int = 1) -> None:
        self._op(mtio.MTFSR, count)

    def bsr(self, count: int = 1) -> None:
        self._op(mtio.MTBSR, count)

    def to_end_of_data(self) -> None:
        self._op(mtio.MTEOM, 1)

    def write_filemarks(self, count: int = 1) -> None:
        """WEOF: synchronous, so a 0 return means everything before it is on the medium."""
        self._op(mtio.MTWEOF, count)

    def erase(self, long: bool = False) -> None:
        self._op(mtio.MTERASE, 1 if long else 0)

    def set_block_size(self, size: int) -> None:
        """0 selects variable-block mode: one write() = one block."""
        self._op(mtio.MTSETBLK, size)

    def set_density(self, density: int) -> None:
        self._op(mtio.MTSETDENSITY, density)

    def set_drive_buffer(self, value: int) -> None:
        self._op(mtio.MTSETDRVBUFFER, value)

    def op(self, op: int, count: int = 1) -> None:
        """Any MTIOCTOP operation, for callers (tests) that need one not named above."""
        self._op(op, count)

    # -- helpers ---------------------------------------------------------------------------------
    def read_file(self, buffer_size: int):
        """Yield the blocks of the file at the current position, up to and across its filemark.

        EIO where a block or a mark should be (an unterminated file, end of data) propagates.
        """
        while True:
            block = self.read(buffer_size)
            if not block:
                return
            yield block

    def space_to_end_of_data(self) -> int:
        """Position at end of data, ready to append, and return the number of the next file.

        A crashed writer may have left the last file without its filemark; appending there would glue
        the new file onto it, so (as PBS does) look at the last object and close that file first.
        """
        self.to_end_of_data()
        if self.tell() > 0:
            try:
                self.bsr(1)
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                # The last object is a filemark (BSR stopped before it): step back over it.
                self.fsf(1)
            else:
                self.read(16 * 1024 * 1024)  # a block: the file is unterminated
                self.write_filemarks(1)
            self.to_end_of_data()
        return self.status().file_number


def errno_name(code: int | None) -> str:
    return errno.errorcode.get(code or 0, str(code))


def os_error(code: int, what: str = "") -> OSError:
    return OSError(code, os.strerror(code) + (f": {what}" if what else ""))
