"""The Linux magnetic-tape ioctl interface (``<linux/mtio.h>``), in Python.

Request numbers are computed from the struct sizes as the kernel's ``_IOW``/``_IOR`` macros do, so a
32-bit userland gets its own numbers (``tape-st-reference.md`` §2). Both drives use these definitions:
``st.py`` packs them for ``fcntl.ioctl``; ``virtual.py`` emulates the same operations and status bits.
"""

from __future__ import annotations

import platform
import struct
from dataclasses import dataclass

MTOP_FORMAT = "@hi"  # struct mtop { short mt_op; int mt_count; }
MTGET_FORMAT = "@lllllii"  # struct mtget { long type, resid, dsreg, gstat, erreg; int fileno, blkno; }
MTPOS_FORMAT = "@l"  # struct mtpos { long mt_blkno; }

# ppc, mips and sparc encode the direction in 3 bits at bit 29 (write = 4, read = 2).
_THREE_BIT_DIR = platform.machine().startswith(("ppc", "mips", "sparc"))
_IOC_WRITE, _IOC_READ = (4, 2) if _THREE_BIT_DIR else (1, 2)
_IOC_DIRSHIFT = 29 if _THREE_BIT_DIR else 30


def _ioc(direction: int, kind: str, nr: int, size: int) -> int:
    return (direction << _IOC_DIRSHIFT) | (size << 16) | (ord(kind) << 8) | nr


MTIOCTOP = _ioc(_IOC_WRITE, "m", 1, struct.calcsize(MTOP_FORMAT))
MTIOCGET = _ioc(_IOC_READ, "m", 2, struct.calcsize(MTGET_FORMAT))
MTIOCPOS = _ioc(_IOC_READ, "m", 3, struct.calcsize(MTPOS_FORMAT))

# MTIOCTOP operations (mt_op).
MTRESET, MTFSF, MTBSF, MTFSR, MTBSR, MTWEOF, MTREW, MTOFFL, MTNOP, MTRETEN = range(10)
MTBSFM, MTFSFM, MTEOM, MTERASE = 10, 11, 12, 13
MTRAS1, MTRAS2, MTRAS3 = 14, 15, 16
MTSETBLK, MTSETDENSITY, MTSEEK, MTTELL, MTSETDRVBUFFER = 20, 21, 22, 23, 24
MTFSS, MTBSS, MTWSM, MTLOCK, MTUNLOCK, MTLOAD, MTUNLOAD = 25, 26, 27, 28, 29, 30, 31
MTCOMPRESSION, MTSETPART, MTMKPART, MTWEOFI = 32, 33, 34, 35

# mt_gstat bits.
GMT_EOF = 0x80000000
GMT_BOT = 0x40000000
GMT_EOT = 0x20000000
GMT_SM = 0x10000000
GMT_EOD = 0x08000000
GMT_WR_PROT = 0x04000000
GMT_ONLINE = 0x01000000
GMT_D_6250 = 0x00800000
GMT_D_1600 = 0x00400000
GMT_D_800 = 0x00200000
GMT_DR_OPEN = 0x00040000
GMT_IM_REP_EN = 0x00010000
GMT_CLN = 0x00008000

MT_ST_BLKSIZE_MASK, MT_ST_BLKSIZE_SHIFT = 0xFFFFFF, 0
MT_ST_DENSITY_MASK, MT_ST_DENSITY_SHIFT = 0xFF000000, 24
MT_ISSCSI2 = 0x72  # mt_type of a SCSI-2 tape

# SETDRVBUFFER commands and option bits (count = command | bits).
MT_ST_BOOLEANS, MT_ST_SETBOOLEANS, MT_ST_CLEARBOOLEANS = 0x10000000, 0x30000000, 0x40000000
MT_ST_DEF_BLKSIZE, MT_ST_TIMEOUTS = 0x50000000, 0x70000000
MT_ST_CAN_BSR, MT_ST_SCSI2LOGICAL = 0x100, 0x800

DENSITY_NAMES = {0x58: "LTO-5", 0x5A: "LTO-6", 0x5C: "LTO-7", 0x5D: "LTO-7 M8", 0x5E: "LTO-8", 0x60: "LTO-9"}


def to_c_int(value: int) -> int:
    """mt_count is a signed int: 0x80000000 becomes -2147483648, as C would store it."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def pack_mtop(op: int, count: int) -> bytes:
    return struct.pack(MTOP_FORMAT, op, to_c_int(count))


@dataclass(frozen=True)
class MtGet:
    """``struct mtget`` as the driver fills it."""

    type: int = MT_ISSCSI2
    resid: int = 0  # partition number on st
    dsreg: int = 0
    gstat: int = 0
    erreg: int = 0
    fileno: int = -1
    blkno: int = -1

    @classmethod
    def unpack(cls, raw: bytes | bytearray) -> MtGet:
        type_, resid, dsreg, gstat, erreg, fileno, blkno = struct.unpack(MTGET_FORMAT, bytes(raw))
        return cls(type_, resid, dsreg, gstat & 0xFFFFFFFF, erreg, fileno, blkno)

    def pack(self) -> bytes:
        return struct.pack(MTGET_FORMAT, self.type, self.resid, self.dsreg, self.gstat, self.erreg,
                           self.fileno, self.blkno)

    @property
    def block_size(self) -> int:
        return (self.dsreg & MT_ST_BLKSIZE_MASK) >> MT_ST_BLKSIZE_SHIFT

    @property
    def density(self) -> int:
        return (self.dsreg & MT_ST_DENSITY_MASK) >> MT_ST_DENSITY_SHIFT


@dataclass(frozen=True)
class DriveStatus:
    """What ``mt status`` shows, decoded: the drive protocol's ``status()``."""

    online: bool
    bot: bool
    eof: bool
    eod: bool
    eot: bool
    write_protected: bool
    door_open: bool
    file_number: int  # -1: unknown (after BSF, SEEK, EOM…)
    block_number: int
    block_size: int  # 0: variable
    density: int

    @classmethod
    def from_mtget(cls, got: MtGet) -> DriveStatus:
        g = got.gstat
        return cls(
            online=bool(g & GMT_ONLINE), bot=bool(g & GMT_BOT), eof=bool(g & GMT_EOF), eod=bool(g & GMT_EOD),
            eot=bool(g & GMT_EOT), write_protected=bool(g & GMT_WR_PROT), door_open=bool(g & GMT_DR_OPEN),
            file_number=got.fileno, block_number=got.blkno, block_size=got.block_size, density=got.density,
        )

    @property
    def density_name(self) -> str:
        return DENSITY_NAMES.get(self.density, f"0x{self.density:02x}")

    def flags(self) -> list[str]:
        names = ("online", "bot", "eof", "eod", "eot", "write_protected", "door_open")
        return [name.upper() for name in names if getattr(self, name)]
