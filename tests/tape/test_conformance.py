"""The st conformance cases of tape-st-reference.md §5, numbered as there, run on every rig."""

from __future__ import annotations

import errno
import os

import pytest

from stagebackup.tape import mtio

from .rig import MiB, block


def expect_errno(code, func, *args):
    with pytest.raises(OSError) as info:
        func(*args)
    assert info.value.errno == code, f"expected {errno.errorcode[code]}, got {info.value!r}"
    return info.value


def reads(tape, count, size=MiB):
    """The next ``count`` read results: bytes, or the errno name."""
    out = []
    for _ in range(count):
        try:
            out.append(tape.read(size))
        except OSError as exc:
            out.append(errno.errorcode[exc.errno])
    return out


def write_files(tape, sizes, block_size=512):
    """Files of ``sizes`` blocks each, each ended by a filemark; blocks are numbered across the tape."""
    n = 0
    for count in sizes:
        for _ in range(count):
            tape.write(block(n, block_size))
            n += 1
        tape.write_filemarks(1)


def test_01_second_open_is_busy(rig):
    with rig.open():
        expect_errno(errno.EBUSY, rig.open)
    rig.open().close()  # free again once closed


def test_02_no_cartridge(rig):
    rig.eject()
    expect_errno(errno.ENOMEDIUM, rig.open)
    with rig.open(nonblock=True) as tape:
        status = tape.status()
        assert status.door_open and not status.online


def test_03_write_protected(rig):
    rig.write_protect(True)
    expect_errno(errno.EROFS, rig.open, True)
    with rig.open(write=True, nonblock=True) as tape:
        assert tape.status().write_protected
        expect_errno(errno.EACCES, tape.write, block(0))
        expect_errno(errno.EACCES, tape.write_filemarks, 1)
        expect_errno(errno.EACCES, tape.erase)
    rig.write_protect(False)
    with rig.open(write=False) as tape:
        expect_errno(errno.EACCES, tape.write, block(0))


def test_04_rewind_and_variable_mode(rig):
    with rig.open() as tape:
        tape.write(block(0))
        tape.rewind()
        status = tape.status()
        assert (status.file_number, status.block_number) == (0, 0)
        assert status.bot and status.online and tape.tell() == 0
        tape.set_block_size(0)
        status = tape.status()
        assert status.block_size == 0
        if rig.density is not None:
            assert status.density == rig.density


def test_05_block_sizes_round_trip(rig):
    sizes = [512, 64 * 1024, 256 * 1024, MiB]
    with rig.open() as tape:
        for i, size in enumerate(sizes):
            tape.write(block(i, size))
        tape.write_filemarks(1)
        tape.rewind()
        for i, size in enumerate(sizes):
            assert tape.read(MiB) == block(i, size)
        assert tape.read(MiB) == b""


def test_06_short_buffer_is_enomem_and_skips_the_block(rig):
    with rig.open() as tape:
        tape.write(block(0, 256 * 1024))
        tape.write_filemarks(1)
        tape.rewind()
        expect_errno(errno.ENOMEM, tape.read, 64 * 1024)
        assert tape.read(MiB) == b""


def test_07_block_limits(rig):
    with rig.open() as tape:
        expect_errno(errno.EINVAL, tape.write, bytes(rig.max_block + 1))
        assert tape.write(b"") == 0


def test_08_fixed_block_mode(rig):
    with rig.open() as tape:
        tape.set_block_size(4096)
        assert tape.write(block(0, 8192)) == 8192
        expect_errno(errno.EINVAL, tape.write, bytes(1000))
        tape.write_filemarks(1)
        tape.set_block_size(0)
        tape.rewind()
        assert [len(b) for b in reads(tape, 3)] == [4096, 4096, 0]


def test_09_no_rewind_node_keeps_position_and_close_writes_a_mark(rig):
    with rig.open() as tape:
        tape.write(block(0))
        tape.write(block(1))
    with rig.open() as tape:
        tape.rewind()
        assert reads(tape, 5) == [block(0), block(1), b"", b"", "EIO"]


def test_10_rewinding_node(rig):
    with rig.open(rewind_on_close=True) as tape:
        tape.write(block(0))
    with rig.open() as tape:
        assert tape.status().bot
        assert reads(tape, 2) == [block(0), b""]


def test_11_weof_then_close_gives_exactly_one_mark(rig):
    with rig.open() as tape:
        tape.write(block(0))
        tape.write_filemarks(1)
    with rig.open() as tape:
        tape.rewind()
        assert reads(tape, 4) == [block(0), b"", b"", "EIO"]


def test_12_two_marks_make_an_empty_file(rig):
    with rig.open() as tape:
        tape.write(block(0))
        tape.write_filemarks(2)
        tape.rewind()
        assert reads(tape, 5) == [block(0), b"", b"", b"", "EIO"]


def test_13_append_at_end_of_data(rig):
    with rig.open() as tape:
        write_files(tape, [1, 2, 3])
    with rig.open() as tape:
        tape.to_end_of_data()
        status = tape.status()
        assert status.file_number == 3 and status.eod
        expect_errno(errno.EIO, tape.read, MiB)
        tape.write(block(6))
        tape.write_filemarks(1)
        tape.rewind()
        files, blocks = 0, 0
        while True:
            try:
                data = tape.read(MiB)
            except OSError:
                break
            if data:
                blocks += 1
            else:
                files += 1
        assert (files, blocks) == (4 + 1, 7)  # four marks, then the zero read at end of data


def test_14_forward_space_files(rig):
    with rig.open() as tape:
        write_files(tape, [1, 2, 3, 2, 1])
        tape.rewind()
        tape.fsf(1)
        assert tape.status().file_number == 1
        tape.fsf(2)
        assert tape.status().file_number == 3
        tape.rewind()
        tape.fsf(4)
        assert tape.status().file_number == 4
        tape.fsf(1)
        assert tape.status().file_number == 5
        expect_errno(errno.EIO, tape.fsf, 1)


def test_15_backward_space_file(rig):
    with rig.open() as tape:
        write_files(tape, [1, 2, 3, 2])
        tape.rewind()
        tape.fsf(3)
        tape.bsf(1)
        status = tape.status()
        assert (status.file_number, status.block_number) == (2, -1)
        tape.fsf(1)
        status = tape.status()
        assert (status.file_number, status.block_number) == (3, 0)
        assert tape.read(MiB) == block(6)
        tape.rewind()
        expect_errno(errno.EIO, tape.bsf, 1)


def test_16_space_records(rig):
    with rig.open() as tape:
        write_files(tape, [5, 1])
        tape.rewind()
        tape.fsr(3)
        assert tape.read(MiB) == block(3)
        tape.bsr(2)
        assert tape.read(MiB) == block(2)
        expect_errno(errno.EIO, tape.fsr, 5)
        status = tape.status()
        assert (status.file_number, status.block_number) == (1, 0)
        assert tape.read(MiB) == block(5)


def test_17_writing_in_the_middle_destroys_what_follows(rig):
    with rig.open() as tape:
        write_files(tape, [1, 2, 3])
        tape.rewind()
        tape.fsf(1)
        tape.write(block(99))
        tape.write_filemarks(1)
        tape.to_end_of_data()
        assert tape.status().file_number == 2
        tape.rewind()
        tape.fsf(1)
        assert reads(tape, 3) == [block(99), b"", b""]


def test_18_eom_after_a_write_adds_no_mark(rig):
    with rig.open() as tape:
        tape.write(block(0))
        tape.to_end_of_data()
        tape.rewind()
        assert reads(tape, 2) == [block(0), "EIO"]


def test_19_seek_to_a_stored_position(rig):
    with rig.open() as tape:
        write_files(tape, [3, 2])
        tape.rewind()
        tape.fsf(1)
        position = tape.tell()
        assert position == 4  # three blocks and a filemark
        assert tape.read(MiB) == block(3)
        tape.rewind()
        tape.seek(position)
        assert tape.read(MiB) == block(3)
        if not rig.real:
            assert tape.status().file_number == -1  # st cannot know it after SEEK


def test_20_early_warning_zone(rig):
    rig.new_cartridge(capacity=1 * MiB, early_warning=256 * 1024)
    size = 64 * 1024
    acknowledged, results = [], []
    with rig.open() as tape:
        for i in range(40):
            try:
                tape.write(block(i, size))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                results.append("ENOSPC")
                continue
            acknowledged.append(i)
            results.append("ok" + ("+EOT" if tape.status().eot else ""))
        tape.write_filemarks(1)
    first_eot = results.index("ok+EOT")
    assert all(r == "ok" for r in results[:first_eot])
    assert results[first_eot + 1] == "ENOSPC" and results[first_eot + 2].startswith("ok")
    assert results[-3:] == ["ENOSPC"] * 3  # the physical end: every write fails
    assert len(acknowledged) * size <= MiB
    with rig.open() as tape:
        tape.rewind()
        assert reads(tape, len(acknowledged) + 1, size) == [block(i, size) for i in acknowledged] + [b""]


def test_21_past_capacity(rig):
    rig.new_cartridge(capacity=512 * 1024, early_warning=0)
    with rig.open() as tape:
        tape.write(block(0, 256 * 1024))
        expect_errno(errno.ENOSPC, tape.write, block(1, 512 * 1024))
        assert tape.status().eod


def test_22_erase(rig):
    with rig.open() as tape:
        write_files(tape, [2, 1])
        tape.rewind()
        tape.erase()
        expect_errno(errno.EIO, tape.read, MiB)
        tape.to_end_of_data()
        assert tape.status().file_number == 0


def test_23_unsupported_and_privileged_operations(rig):
    with rig.open() as tape:
        expect_errno(errno.ENOSYS, tape.op, mtio.MTTELL, 1)
        expect_errno(errno.ENOSYS, tape.op, mtio.MTRESET, 1)
        harmless = mtio.MT_ST_SETBOOLEANS | mtio.MT_ST_CAN_BSR
        if os.geteuid() == 0:
            tape.set_drive_buffer(harmless)
        else:
            expect_errno(errno.EPERM, tape.set_drive_buffer, harmless)


def test_24_unload(rig):
    if rig.real and not os.environ.get("STAGEBACKUP_TEST_TAPE_ALLOW_EJECT"):
        pytest.skip("ejects the cartridge: set STAGEBACKUP_TEST_TAPE_ALLOW_EJECT=1 on a standalone drive")
    with rig.open() as tape:
        tape.write(block(0))
        tape.unload()
        expect_errno(errno.ENOMEDIUM, tape.read, MiB)
        assert tape.status().door_open


def test_25_btape_position(rig):
    per_file = 1000
    with rig.open() as tape:
        for f in range(2):
            for b in range(per_file):
                tape.write(block(f * per_file + b))
            tape.write_filemarks(1)
        for f, b in [(0, 4), (0, 200), (1, 0), (1, 600)]:
            tape.rewind()
            if f:
                tape.fsf(f)
            if b:
                tape.fsr(b)
            assert tape.read(MiB) == block(f * per_file + b), (f, b)
