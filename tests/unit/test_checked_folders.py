"""sync_copier.CheckedFolders and the mirror's removals: entries reached in a folder checked to be where it
was asked to be, and read-only trees removed by a job that is not root."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import traceback
from pathlib import Path

import pytest

from stagebackup.pipeline.mirror_ops import remove
from stagebackup.pipeline.sync_copier import REPLACED_MIRROR, CheckedFolders

NOBODY = 65534


def test_entries_are_reached_in_their_folder_and_a_folder_turned_link_is_refused(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "f").write_bytes(b"inside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "f").write_bytes(b"outside")
    folders = CheckedFolders(REPLACED_MIRROR)
    fd = folders.open(os.fsencode(tmp_path / "dir" / "f"))
    assert os.read(fd, 100) == b"inside"
    os.close(fd)
    os.rename(tmp_path / "dir", tmp_path / "dir.moved")
    os.symlink(tmp_path / "outside", tmp_path / "dir")
    folders.close()  # a new folder is checked again on its next use
    with pytest.raises(OSError) as refused:
        folders.open(os.fsencode(tmp_path / "dir" / "f"))
    assert refused.value.errno in (errno.ELOOP, errno.ENOTDIR) and refused.value.strerror == REPLACED_MIRROR
    (tmp_path / "a").mkdir()
    (tmp_path / "outside" / "c").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "a" / "b")
    with pytest.raises(OSError) as above:  # a link above the folder: the kernel's name for it differs
        folders.lstat(os.fsencode(tmp_path / "a" / "b" / "c" / "f"))
    assert above.value.errno == errno.ELOOP and above.value.strerror == REPLACED_MIRROR


@pytest.fixture
def reachable_dir():
    """A folder an unprivileged user can reach (pytest's tmp_path lies below a folder only root may enter)."""
    path = Path(tempfile.mkdtemp(prefix="stagebackup-nobody-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path)


def test_a_read_only_tree_is_removed_by_a_job_that_is_not_root(reachable_dir):
    """Without root, ``mirror_ops.remove`` makes each directory writable before it is listed, then removes the tree."""
    top = reachable_dir / "mirror"
    (top / "ro" / "locked").mkdir(parents=True)
    (top / "ro" / "f").write_bytes(b"x")
    (top / "ro" / "locked" / "g").write_bytes(b"y")
    for path in [top, top / "ro", top / "ro" / "locked", top / "ro" / "f", top / "ro" / "locked" / "g"]:
        os.chown(path, NOBODY, NOBODY)
    os.chmod(top / "ro" / "locked", 0)
    os.chmod(top / "ro", 0o500)
    pid = os.fork()
    if pid == 0:  # the child becomes an unprivileged user and removes the tree
        code = 1
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            remove(CheckedFolders(REPLACED_MIRROR), os.fsencode(top / "ro"), owners=False)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert os.listdir(top) == []
