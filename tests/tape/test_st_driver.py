"""st.py against the reference: request numbers, struct layouts, and the calls it makes (through a
patched ``fcntl.ioctl``, since this machine has no tape drive)."""

from __future__ import annotations

import errno
import fcntl
import platform
import struct

import pytest

from stagebackup.tape import mtio, st
from stagebackup.tape.drives import open_drive
from stagebackup.tape.errors import NoMedium, TapeIOError, WriteProtected

x86_or_arm64 = pytest.mark.skipif(platform.machine() not in ("x86_64", "aarch64"),
                                  reason="the reference's numbers are for x86_64/aarch64")


@x86_or_arm64
def test_request_numbers_match_the_reference():
    assert mtio.MTIOCTOP == 0x40086D01
    assert mtio.MTIOCGET == 0x80306D02
    assert mtio.MTIOCPOS == 0x80086D03


@x86_or_arm64
def test_struct_layouts():
    assert struct.calcsize(mtio.MTOP_FORMAT) == 8  # short + 2 bytes padding + int
    assert struct.calcsize(mtio.MTGET_FORMAT) == 48
    assert struct.calcsize(mtio.MTPOS_FORMAT) == 8
    raw = mtio.MtGet(fileno=7, blkno=9).pack()
    assert struct.unpack_from("@i", raw, 40)[0] == 7 and struct.unpack_from("@i", raw, 44)[0] == 9


def test_mtop_packing_and_signed_count():
    assert mtio.pack_mtop(mtio.MTFSF, 3) == struct.pack("@hi", 1, 3)
    assert struct.unpack("@hi", mtio.pack_mtop(mtio.MTSETDRVBUFFER, 0x80000000))[1] == -2147483648
    assert mtio.to_c_int(0x70000E10) == 0x70000E10  # 3600 s timeout: positive
    assert (mtio.MTWEOF, mtio.MTREW, mtio.MTOFFL, mtio.MTEOM, mtio.MTSETBLK, mtio.MTSEEK, mtio.MTTELL) == (
        5, 6, 7, 12, 20, 22, 23)
    assert (mtio.MTLOAD, mtio.MTUNLOAD, mtio.MTWEOFI, mtio.MTBSFM, mtio.MTFSFM) == (30, 31, 35, 10, 11)


def test_gstat_and_dsreg_decoding():
    got = mtio.MtGet(dsreg=(0x60 << 24) | 262144, gstat=mtio.GMT_BOT | mtio.GMT_ONLINE | mtio.GMT_WR_PROT,
                     fileno=0, blkno=0)
    status = mtio.DriveStatus.from_mtget(mtio.MtGet.unpack(got.pack()))
    assert status.bot and status.online and status.write_protected and not status.eof
    assert status.block_size == 262144 and status.density == 0x60 and status.density_name == "LTO-9"
    eof = mtio.DriveStatus.from_mtget(mtio.MtGet(gstat=mtio.GMT_EOF | mtio.GMT_EOD | mtio.GMT_EOT))
    assert eof.eof and eof.eod and eof.eot
    assert mtio.DriveStatus.from_mtget(mtio.MtGet(gstat=mtio.GMT_DR_OPEN)).door_open


class FakeSt:
    """Stands in for the kernel: records MTIOCTOP calls and answers GET/POS."""

    def __init__(self, mtget: mtio.MtGet, position: int = 0, fail: dict | None = None):
        self.mtget, self.position, self.fail, self.ops = mtget, position, fail or {}, []

    def __call__(self, fd, request, arg=0, mutate=True):
        if request == mtio.MTIOCTOP:
            op, count = struct.unpack(mtio.MTOP_FORMAT, arg)
            self.ops.append((op, count))
            if op in self.fail:
                raise OSError(self.fail[op], "fake")
            return 0
        if request == mtio.MTIOCGET:
            assert isinstance(arg, bytearray) and len(arg) == 48
            arg[:] = self.mtget.pack()
            return 0
        if request == mtio.MTIOCPOS:
            assert isinstance(arg, bytearray) and len(arg) == 8
            arg[:] = struct.pack(mtio.MTPOS_FORMAT, self.position)
            return 0
        raise AssertionError(hex(request))


@pytest.fixture
def fake_device(tmp_path):
    path = tmp_path / "nst0"
    path.write_bytes(b"")
    return str(path)


def test_operations_send_the_right_requests(monkeypatch, fake_device):
    fake = FakeSt(mtio.MtGet(gstat=mtio.GMT_ONLINE, fileno=3, blkno=0), position=1234)
    monkeypatch.setattr(fcntl, "ioctl", fake)
    handle = st.StHandle(fake_device)
    handle.rewind()
    handle.fsf(2)
    handle.bsf(1)
    handle.fsr(5)
    handle.bsr(1)
    handle.to_end_of_data()
    handle.write_filemarks(1)
    handle.set_block_size(0)
    handle.seek(42)
    handle.erase()
    handle.load()
    handle.unload()
    assert fake.ops == [(6, 1), (1, 2), (2, 1), (3, 5), (4, 1), (12, 1), (5, 1), (20, 0), (22, 42), (13, 0),
                        (30, 1), (7, 1)]
    assert handle.tell() == 1234
    status = handle.status()
    assert status.online and status.file_number == 3
    handle.close()


def test_real_ioctl_on_a_regular_file_is_enotty(fake_device):
    handle = st.StHandle(fake_device)
    with pytest.raises(OSError) as info:
        handle.rewind()
    assert info.value.errno == errno.ENOTTY
    handle.close()


def test_rewinding_node_is_refused(tmp_path):
    node = tmp_path / "st0"
    node.write_bytes(b"")
    link = tmp_path / "by-id-link"
    link.symlink_to(node)
    assert st.is_rewinding_node(str(link)) and not st.is_rewinding_node(str(tmp_path / "nst0"))
    with pytest.raises(OSError) as info:
        st.StHandle(str(link))
    assert info.value.errno == errno.EINVAL


@pytest.mark.parametrize("gstat, error", [
    (mtio.GMT_DR_OPEN, NoMedium), (mtio.GMT_ONLINE | mtio.GMT_WR_PROT, WriteProtected),
])
def test_open_drive_reports_status_problems(monkeypatch, fake_device, gstat, error):
    monkeypatch.setattr(fcntl, "ioctl", FakeSt(mtio.MtGet(gstat=gstat)))
    config = {"DRIVES": {"lto": fake_device}}
    with pytest.raises(error) as info:
        open_drive(config, "lto")
    assert "lto" in str(info.value)


def test_drive_errors_become_operator_messages(monkeypatch, fake_device):
    monkeypatch.setattr(fcntl, "ioctl", FakeSt(mtio.MtGet(gstat=mtio.GMT_ONLINE), fail={mtio.MTFSF: errno.EIO}))
    from stagebackup.tape.drives import opened

    with pytest.raises(TapeIOError, match="I/O error on drive lto"):
        with opened({"DRIVES": {"lto": fake_device}}, "lto") as tape:
            tape.fsf(1)
