"""What is mounted where (seed 001 §3.2): tell data disks from the system's own paths.

In a container the operator's disks appear as bind mounts of real file systems (``/data`` on ext4),
beside the container's overlay root and the pseudo file systems; on a host the root disk is data too.
``/proc/self/mountinfo`` is read because, unlike ``/proc/self/mounts``, it names the folder of the file
system that is mounted (its 4th field, "root"): anything but ``/`` is a bind mount of that folder. Space
comes from ``statvfs``; no file system is otherwise touched.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

MOUNTINFO_FILE = "/proc/self/mountinfo"

PSEUDO_FS = {
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs",
    "efivarfs", "fuse.gvfsd-fuse", "fuse.lxcfs", "fuse.portal", "fusectl", "hugetlbfs", "mqueue", "nfsd", "nsfs",
    "overlay", "proc", "pstore", "ramfs", "rpc_pipefs", "securityfs", "selinuxfs", "shm", "squashfs", "sysfs",
    "tmpfs", "tracefs",
}
NETWORK_FS = {"9p", "afs", "ceph", "cifs", "glusterfs", "nfs", "nfs4", "smb3", "smbfs", "virtiofs"}
NETWORK_FUSE = re.compile(r"^fuse\.(sshfs|rclone|s3fs|davfs2?|gcsfuse|glusterfs|juicefs|ceph.*)$")
# Paths that belong to the system even when a real file system is mounted there (Docker bind-mounts
# /etc/hosts and friends from the host's disk; snaps and container runtimes keep their layers below these).
SYSTEM_PREFIXES = ("/proc", "/sys", "/dev", "/run", "/etc", "/boot", "/snap", "/var/lib/docker",
                   "/var/lib/containers", "/var/lib/kubelet")

DISK, NETWORK, SYSTEM = "disk", "network", "system"


@dataclass(frozen=True)
class Space:
    total: int
    free: int  # available to an unprivileged writer (f_bavail), as df shows it

    @property
    def used_percent(self) -> int:
        return round(100 * (self.total - self.free) / self.total) if self.total else 0


@dataclass(frozen=True)
class Mount:
    device: str
    path: str  # surrogate-escaped, exact
    fstype: str
    read_only: bool
    kind: str  # disk | network | system
    root: str = "/"  # the folder of the device that appears at ``path``
    dev: str = ""  # major:minor: bind mounts of one file system share it

    @property
    def bind(self) -> bool:
        return self.root != "/"

    @property
    def source(self) -> str:
        """The device and, for a bind mount, the folder of it (as ``findmnt`` writes it: ``/dev/sda1[/srv]``)."""
        return f"{self.device}[{self.root}]" if self.bind else self.device


def _unescape(field: str) -> str:
    """The kernel writes space, tab, newline and backslash in names as ``\\ooo`` octal escapes."""
    raw = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), os.fsencode(field))
    return os.fsdecode(raw)


def classify(path: str, fstype: str) -> str:
    if fstype in PSEUDO_FS or any(path == p or path.startswith(p + "/") for p in SYSTEM_PREFIXES):
        return SYSTEM
    if fstype in NETWORK_FS or NETWORK_FUSE.match(fstype):
        return NETWORK
    return DISK


def _parse_line(line: str) -> Mount | None:
    """``36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue``: ids,
    major:minor, root, mount point, mount options, optional fields up to ``-``, then type, source, super
    options."""
    fields = line.split(" ")
    try:
        dash = fields.index("-", 6)
        dev, root, path, options = fields[2], fields[3], fields[4], fields[5]
        fstype, device = fields[dash + 1], fields[dash + 2]
    except (ValueError, IndexError):
        return None
    path = _unescape(path)
    return Mount(_unescape(device), path, _unescape(fstype), "ro" in options.split(","), classify(path, fstype),
                 root=_unescape(root), dev=dev)


def parse_mountinfo(text: str) -> list[Mount]:
    return [mount for line in text.splitlines() if (mount := _parse_line(line)) is not None]


def read_mounts(mountinfo_file: str = MOUNTINFO_FILE) -> list[Mount]:
    with open(mountinfo_file, encoding="utf-8", errors="surrogateescape") as fh:
        return parse_mountinfo(fh.read())


def visible(mounts: list[Mount], *, show_system: bool) -> list[Mount]:
    """The mounts to offer, in path order; a mount point mounted over keeps only its last mount."""
    last = {mount.path: mount for mount in mounts}
    return sorted((m for m in last.values() if show_system or m.kind != SYSTEM), key=lambda m: os.fsencode(m.path))


def space(path: str) -> Space | None:
    """Free and total bytes of the file system holding ``path`` (None when it cannot be asked, e.g. a
    stale network mount answering ESTALE)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return Space(st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)


def mount_for(path: str, mounts: list[Mount]) -> Mount | None:
    """The mount a path lives on: the longest mount point that contains it (the last one mounted wins)."""
    best: Mount | None = None
    for mount in mounts:
        root = mount.path.rstrip("/")
        if path == mount.path or path.startswith(root + "/") or mount.path == "/":
            if best is None or len(mount.path) >= len(best.path):
                best = mount
    return best
