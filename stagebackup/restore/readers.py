"""One archive file on local disk (a directory destination, or a tape file pulled into the cache):
restore its selected members, or list every member for verify. Formats: tgz, tgz encrypted, 7z."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from ..paths import display
from .extract import Owner, SafeExtractor, SizeOf
from .sevenzip import extract_7z, list_members, open_7z
from .tarstream import ArchiveDamaged, kind_of, plain_tar_stream, tar_members

COPY_BYTES = 1 << 20
# Errors that end the whole restore; anything else is reported for its member and the restore goes on.
FATAL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EMFILE, errno.ENFILE})


@dataclass(frozen=True)
class LocalArchive:
    path: str
    format: str  # tgz | 7z
    password: str | None = None  # set for encrypted archives
    iterations: int | None = None  # PBKDF2 rounds of an encrypted tar.gz

    @property
    def label(self) -> str:
        return display(self.path)


def extract_archive(archive: LocalArchive, extractor: SafeExtractor, selected: Callable[[str], bool], progress,
                    *, link_sources: dict[str, str] | None = None, size_of: SizeOf | None = None) -> None:
    """``link_sources`` maps a file that was not selected to the selected hard link whose data it holds;
    ``size_of`` limits each file to its catalogued size (None: a backup without member rows)."""
    if archive.format == "7z":
        extract_7z(archive.path, archive.password, extractor, selected, progress, size_of)
    else:
        _extract_tar(archive, extractor, selected, progress, link_sources or {}, size_of)


def _extract_tar(archive: LocalArchive, extractor: SafeExtractor, selected: Callable[[str], bool], progress,
                 link_sources: dict[str, str], size_of: SizeOf | None) -> None:
    """One pass over the archive; a second one only for selected hard links whose data was not selected
    (the plan's ``link_sources`` usually avoids it, but a backup without member rows cannot)."""
    pending: dict[str, list[str]] = {}
    _tar_pass(archive, extractor, selected, progress, link_sources, pending, size_of)
    if pending:
        sources = {target: links[0] for target, links in pending.items()}
        again: dict[str, list[str]] = {}
        _tar_pass(archive, extractor, lambda name: False, progress, sources, again, size_of)
        for target, links in pending.items():
            for link in links:
                if not (extractor.was_restored(link) or extractor.was_skipped(link)):
                    extractor.hardlink(link, target)  # refused with the reason if the data never came


def _tar_pass(archive: LocalArchive, extractor: SafeExtractor, selected, progress, link_sources: dict[str, str],
              pending: dict[str, list[str]], size_of: SizeOf | None) -> None:
    written_as_link: set[str] = set()
    with plain_tar_stream(archive.path, password=archive.password, iterations=archive.iterations) as stream:
        tar = tar_members(stream)
        for info in tar:
            progress.checkpoint()
            name = info.name
            alias = None
            if not selected(name):
                alias = link_sources.get(name.strip("/"))
                if alias is None or not info.isreg():
                    continue
            if info.islnk() and not extractor.was_restored(info.linkname):
                pending.setdefault(info.linkname.strip("/"), []).append(name)
                continue
            try:
                _extract_member(tar, info, alias, extractor, progress, written_as_link, size_of)
            except OSError as exc:
                if exc.errno in FATAL_ERRNOS:
                    raise
                extractor.refuse(name, f"cannot restore: {exc.strerror or exc}")
        tar.close()


def mtime_ns(info) -> int:
    """A tar member's mtime in nanoseconds, exact from its pax record (tarfile turns that into a float).

    A record that is not a finite number (only a damaged or foreign archive has one) gives the epoch: the
    member is still restored, and nothing raises in the middle of a restore.
    """
    for value in (info.pax_headers.get("mtime"), info.mtime):
        try:
            return int(Decimal(value).scaleb(9).to_integral_value())  # a pax string or tarfile's number
        except (ArithmeticError, ValueError, TypeError):  # "abc", "nan", "inf", None
            continue
    return 0


def owner_of(info) -> Owner:
    return Owner(info.uname or None, info.gname or None, info.uid, info.gid)


def _extract_member(tar, info, alias, extractor: SafeExtractor, progress, written_as_link: set[str],
                    size_of: SizeOf | None) -> None:
    name = info.name
    kind = kind_of(info)
    progress.advance(files=int(kind == "file"), current=name)  # regular files, as the plan counts
    if kind == "file":
        # An unselected file whose selected hard link needs its data is written under the link's name.
        sink = extractor.begin_file(alias or name, info.mode, mtime_ns(info), owner_of(info), size_of=size_of,
                                    catalogued_as=name)
        if alias is not None:
            written_as_link.add(alias)
        if sink is None:
            return
        try:
            _copy_data(tar, info, sink, progress)
        except BaseException:
            sink.abort()
            raise
        sink.close()
        if alias is not None:
            extractor.alias(name, alias)
    elif kind == "dir":
        extractor.directory(name, info.mode, mtime_ns(info), owner_of(info))
    elif kind == "symlink":
        extractor.symlink(name, info.linkname, mtime_ns(info), owner_of(info))
    elif kind == "hardlink":
        if name.strip("/") in written_as_link:
            return  # its data was restored under this very name
        extractor.hardlink(name, info.linkname)
    else:
        extractor.refuse(name, "device file, FIFO or other special file: not restored")


def _copy_data(tar, info, sink, progress) -> None:
    """A member's bytes straight from the stream into the file, through one reused buffer."""
    if info.sparse is not None:  # GNU sparse members: tarfile knows their map
        source = tar.extractfile(info)
        while chunk := source.read(COPY_BYTES):
            sink.write(chunk)
            progress.advance(nbytes=len(chunk))
        return
    stream = tar.fileobj
    stream.seek(info.offset_data)
    buffer = memoryview(bytearray(min(COPY_BYTES, max(info.size, 1))))
    remaining = info.size
    while remaining > 0:
        count = stream.readinto(buffer[:min(len(buffer), remaining)])
        if not count:
            raise EOFError("unexpected end of data")
        sink.write(buffer[:count])
        remaining -= count
        progress.advance(nbytes=count)
        if remaining:
            progress.checkpoint()


@dataclass(frozen=True)
class ListedMember:
    name: str
    kind: str
    size: int


def iter_members(archive: LocalArchive) -> Iterator[ListedMember]:
    """Every member, reading (and thereby checking) all of the archive's data; writes nothing."""
    if archive.format == "7z":
        with open_7z(archive.path, archive.password) as seven:
            members = list_members(seven)
            bad = seven.testzip()  # decompresses everything and checks each member's CRC
            if bad is not None:
                raise ArchiveDamaged(archive.path, f"CRC error in member {bad}")
        for member in members:
            yield ListedMember(member.name.strip("/"), member.kind, member.size if member.kind == "file" else 0)
        return
    with plain_tar_stream(archive.path, password=archive.password, iterations=archive.iterations) as stream:
        tar = tar_members(stream)
        for info in tar:
            kind = kind_of(info)  # the data is read (and skipped) by the next header read
            yield ListedMember(info.name.strip("/"), kind, info.size if kind == "file" else 0)
        tar.close()
        while stream.read(COPY_BYTES):  # to the end, so every gzip CRC (and the cipher padding) is checked
            pass
