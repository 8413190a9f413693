"""The members of a plain tar stream, in order: the usual ones read here, anything else by ``tarfile``.

Why: ``tarfile`` spends about 27 µs on each member of our archives (a pax header with the nanosecond mtime,
and often the path, before nearly every member: its records are found with regular expressions and decoded
one field at a time, and two headers are parsed), and a restore reads every member's header, selected or not.
At a million members that is most of a one-folder restore. The usual member — an optional per-file pax header
of well-formed records with the standard keys, then a POSIX ustar header of a plain type (``FastTarInfo``
parses those) — is read here in about a third of the time, into the same ``TarInfo`` that ``tarfile`` makes
(``tests/unit/test_tarmembers.py`` holds the two to the same members on generated and damaged archives).

At the first member that is anything else — a global pax header, GNU long names or sparse files, unknown pax
keys, records that do not cover the header exactly, base-256 numbers, a bad checksum, the end-of-archive
block, a short read — the bytes read for it are put back and a ``tarfile.TarFile`` opened at that point reads
it and every member after it: whatever ``tarfile`` does with such input (and with damage) is what happens.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator

from .tarinfo import FastTarInfo, ustar_info

BLOCK = tarfile.BLOCKSIZE
PAX_MAX_BYTES = 64 * 1024  # a longer extended header (never ours) goes to tarfile
_PLAIN_TYPES = frozenset({tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE, tarfile.LNKTYPE, tarfile.SYMTYPE,
                          tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE})
_TEXT_KEYS = frozenset({"path", "linkpath", "uname", "gname", "hdrcharset", "comment"})
_NUMBER_KEYS = frozenset({"uid", "gid", "size", "mtime", "atime", "ctime"})
_SET_NUMBERS = {"uid": int, "gid": int, "size": int, "mtime": float}  # tarfile keeps atime and ctime as text
_RECORD = re.compile(rb"([1-9][0-9]{0,9}) ([a-z]+)=")
_HDRCHARSET = re.compile(rb"\d+ hdrcharset=([^\n]+)\n")
_ENCODING, _ERRORS = "utf-8", "surrogateescape"


class _Unusual(Exception):
    """This member is for tarfile to read."""


class TarMembers:
    """The members of the plain tar bytes ``stream`` (a ``tarstream.ForwardReader``), in order. A member's data
    is read from ``fileobj`` (``seek(info.offset_data)`` first); ``extractfile`` reads a member tarfile read
    (a GNU sparse file)."""

    def __init__(self, stream):
        self.fileobj = stream
        self._tar: tarfile.TarFile | None = None
        self._consumed: list[bytes] = []  # the bytes read for the member being read, to put back

    def __iter__(self) -> Iterator[tarfile.TarInfo]:
        next_header = self.fileobj.tell()
        while self._tar is None:
            if self.fileobj.seek(next_header) < next_header:  # as tarfile checks it
                raise tarfile.ReadError("unexpected end of data")
            self._consumed.clear()
            try:
                info, next_header = self._usual()
            except _Unusual:
                self.fileobj.unread(b"".join(self._consumed))
                break
            yield info
        yield from self._by_tarfile()

    def _by_tarfile(self) -> Iterator[tarfile.TarInfo]:
        """The members from here on, read by tarfile; its ValueErrors on damaged headers (a pax ``hdrcharset``
        that is not UTF-8, a GNU sparse map that is not numbers, ``HeaderTooLarge``) are damage too, as its
        ReadError is."""
        try:
            self._tar = tarfile.open(fileobj=self.fileobj, mode="r:", encoding=_ENCODING, errors=_ERRORS,
                                     tarinfo=FastTarInfo)
            for info in self._tar:  # (its iteration, not next(): the archive may have ended at its start)
                self._tar.members.clear()  # tarfile keeps every member it read (about 1 KiB each) otherwise
                yield info
        except ValueError as exc:
            raise tarfile.ReadError(f"damaged header: {exc}") from exc

    def extractfile(self, info: tarfile.TarInfo):
        if self._tar is None:
            raise ValueError("only a member tarfile read has a reader of its own")
        return self._tar.extractfile(info)

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()

    # -- the usual member ----------------------------------------------------------------------------
    def _read(self, size: int) -> bytes:
        data = self.fileobj.read(size)
        self._consumed.append(data)
        if len(data) != size:
            raise _Unusual
        return data

    def _header(self) -> FastTarInfo:
        info = ustar_info(self._read(BLOCK), _ENCODING, _ERRORS)
        if info is None:
            raise _Unusual
        return info

    def _usual(self) -> tuple[tarfile.TarInfo, int]:
        """The member at the stream's position and where the next header starts; _Unusual if not usual."""
        start = self.fileobj.tell()
        info = self._header()
        pax = None
        if info.type == tarfile.XHDTYPE:
            if info.size > PAX_MAX_BYTES:
                raise _Unusual
            data = self._read(_padded(info.size))
            if data.count(0, info.size) != len(data) - info.size:  # tarfile would read records in the padding
                raise _Unusual
            pax = _records(data[:info.size])
            info = self._header()
        if info.type not in _PLAIN_TYPES:
            raise _Unusual
        if pax is not None:
            _apply(info, pax)
        info.offset, info.offset_data = start, self.fileobj.tell()
        return info, info.offset_data + (_padded(info.size) if info.isreg() else 0)


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _records(data: bytes) -> dict[str, str]:
    """A pax header's records (``LEN KEY=VALUE\\n``, known keys only) as tarfile reads them, if they cover
    ``data`` exactly; anything else is _Unusual."""
    pax: dict[str, str] = {}
    pos, end = 0, len(data)
    while pos < end:
        found = _RECORD.match(data, pos)
        if found is None:
            raise _Unusual
        record_end = pos + int(found.group(1))
        key = found.group(2).decode("ascii")
        if record_end > end or not (key in _TEXT_KEYS or key in _NUMBER_KEYS):
            raise _Unusual
        # tarfile's slice: the value ends one byte before the record (its newline, whatever that byte is),
        # and a later record of the same key wins.
        pax[key] = data[found.end():record_end - 1].decode(_ENCODING, _ERRORS)
        pos = record_end
    # tarfile first looks for a hdrcharset record anywhere in the header (a value may hold one), decodes the
    # first it finds strictly, and keeps it unless a real record follows.
    first = _HDRCHARSET.search(data)
    if first is not None and ("hdrcharset" not in pax or not first.group(1).isascii()):
        raise _Unusual
    return pax


def _apply(info: tarfile.TarInfo, pax: dict[str, str]) -> None:
    """The records over the header's fields, as tarfile's ``_apply_pax_info`` sets them."""
    for key, value in pax.items():
        if key in _SET_NUMBERS:
            try:
                setattr(info, key, _SET_NUMBERS[key](value))
            except ValueError:
                setattr(info, key, 0)
        elif key == "path":
            info.name = value.rstrip("/")
        elif key == "linkpath":
            info.linkname = value
        elif key in ("uname", "gname"):
            setattr(info, key, value)
    info.pax_headers = pax
