"""The drive under test: a virtual cartridge always, a real drive when STAGEBACKUP_TEST_TAPE is set.

Every conformance test gets a rig and opens the device through it, so one test body checks both. A
real drive is blanked (rewind + short erase) before each test: use a scratch cartridge.
"""

from __future__ import annotations

import os

import pytest

from stagebackup.tape import vlibrary
from stagebackup.tape.st import StHandle
from stagebackup.tape.virtual import VirtualHandle

REAL_DEVICE = os.environ.get("STAGEBACKUP_TEST_TAPE")
MiB = 1024 * 1024


class VirtualRig:
    real = False
    density = 0x5E
    max_block = 8 * MiB

    def __init__(self, vtape_dir: str, capacity: int = 256 * MiB, early_warning: int = 2 * MiB):
        self.dir, self.drive, self.count = vtape_dir, "vt0", 0
        self.new_cartridge(capacity, early_warning)

    def new_cartridge(self, capacity: int, early_warning: int) -> str:
        self.count += 1
        name = f"C{self.count:03d}"
        vlibrary.create_cartridge(self.dir, name, capacity_bytes=capacity, early_warning_bytes=early_warning)
        vlibrary.insert(self.dir, self.drive, name)
        self.cartridge = name
        return name

    def open(self, write: bool = True, nonblock: bool = False, rewind_on_close: bool = False):
        return VirtualHandle(self.dir, self.drive, write=write, nonblock=nonblock, rewind_on_close=rewind_on_close)

    def eject(self) -> None:
        vlibrary.insert(self.dir, self.drive, None)

    def write_protect(self, on: bool) -> None:
        vlibrary.set_write_protect(self.dir, self.cartridge, on)


class RealRig:
    real = True
    density = None
    max_block = int(os.environ.get("STAGEBACKUP_TEST_TAPE_MAX_BLOCK", 8 * MiB))

    def __init__(self, device: str):
        self.device = device
        with self.open() as tape:
            tape.set_block_size(0)
            tape.rewind()
            tape.erase()

    def open(self, write: bool = True, nonblock: bool = False, rewind_on_close: bool = False):
        device = self.device
        if rewind_on_close:
            device = os.environ.get("STAGEBACKUP_TEST_TAPE_REWINDING") or pytest.skip(
                "set STAGEBACKUP_TEST_TAPE_REWINDING=/dev/stN to test the rewinding node")
        return StHandle(device, write=write, nonblock=nonblock, allow_rewinding=rewind_on_close)

    def new_cartridge(self, capacity: int, early_warning: int):
        pytest.skip("needs a small virtual cartridge (filling a real tape takes hours)")

    def eject(self):
        pytest.skip("needs an operator to remove the cartridge")

    def write_protect(self, on: bool):
        pytest.skip("needs an operator to set the write-protect tab")


def block(index: int, size: int = 512) -> bytes:
    """A block whose first bytes say which it is (scsi_debug keeps only the first 4 bytes of a block)."""
    tag = index.to_bytes(4, "big") + f"<{index:08d}>".encode()
    return (tag * (size // len(tag) + 1))[:size]
