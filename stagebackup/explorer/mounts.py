"""What is mounted where (seed 001 §3.2): tell data disks from the system's own paths.

In a container the operator's disks appear as bind mounts of real file systems (``/data`` on ext4),
beside the container's overlay root and the pseudo file systems; on a host the root disk is data too.
Only ``/proc/self/mounts`` is read: no file system is touched.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

MOUNTS_FILE = "/proc/self/mounts"

PSEUDO_FS = {
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs",
    "efivarfs", "fusectl", "hugetlbfs", "mqueue", "nsfs", "overlay", "proc", "pstore", "ramfs", "rpc_pipefs",
    "securityfs", "selinuxfs", "shm", "squashfs", "sysfs", "tmpfs", "tracefs",
}
NETWORK_FS = {"9p", "afs", "ceph", "cifs", "glusterfs", "nfs", "nfs4", "smb3", "smbfs", "virtiofs"}
NETWORK_FUSE = re.compile(r"^fuse\.(sshfs|rclone|s3fs|davfs2?|gcsfuse|glusterfs|juicefs|ceph.*)$")
# Paths that belong to the system even when a real file system is mounted there (Docker bind-mounts
# /etc/hosts and friends from the host's disk).
SYSTEM_PREFIXES = ("/proc", "/sys", "/dev", "/run", "/etc", "/boot", "/snap", "/var/lib/docker")

DISK, NETWORK, SYSTEM = "disk", "network", "system"


@dataclass(frozen=True)
class Mount:
    device: str
    path: str  # surrogate-escaped, exact
    fstype: str
    read_only: bool
    kind: str  # disk | network | system


def _unescape(field: str) -> str:
    """``/proc/mounts`` writes space, tab, newline and backslash in names as ``\\ooo`` octal escapes."""
    raw = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), os.fsencode(field))
    return os.fsdecode(raw)


def classify(path: str, fstype: str) -> str:
    if fstype in PSEUDO_FS or any(path == p or path.startswith(p + "/") for p in SYSTEM_PREFIXES):
        return SYSTEM
    if fstype in NETWORK_FS or NETWORK_FUSE.match(fstype):
        return NETWORK
    return DISK


def parse_mounts(text: str) -> list[Mount]:
    mounts: list[Mount] = []
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) < 4:
            continue
        device, path, fstype, options = _unescape(fields[0]), _unescape(fields[1]), fields[2], fields[3]
        mounts.append(Mount(device, path, fstype, "ro" in options.split(","), classify(path, fstype)))
    return mounts


def read_mounts(mounts_file: str = MOUNTS_FILE) -> list[Mount]:
    with open(mounts_file, encoding="utf-8", errors="surrogateescape") as fh:
        return parse_mounts(fh.read())


def mount_for(path: str, mounts: list[Mount]) -> Mount | None:
    """The mount a path lives on: the longest mount point that contains it (the last one mounted wins)."""
    best: Mount | None = None
    for mount in mounts:
        root = mount.path.rstrip("/")
        if path == mount.path or path.startswith(root + "/") or mount.path == "/":
            if best is None or len(mount.path) >= len(best.path):
                best = mount
    return best
