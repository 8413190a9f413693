"""Reading 7z archives (plain or AES with hidden names) member by member through py7zr.

py7zr's own ``extractall`` writes through paths; here its ``WriterFactory`` hook hands us each member's
bytes instead, and the SafeExtractor decides where (and whether) they go. Directories and metadata come
from the archive's header; the archive file is passed as an open file object, which also keeps py7zr
from decompressing folders in parallel threads behind our back.
"""

from __future__ import annotations

import contextlib
import lzma
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import py7zr
from py7zr.exceptions import Bad7zFile, CrcError, PasswordRequired
from py7zr.helpers import get_sanitized_output_path
from py7zr.io import Py7zIO, WriterFactory

from .extract import SafeExtractor, SizeOf
from .file_sink import FileSink
from .member_names import Refused, member_parts
from .tarstream import ArchiveDamaged, WrongPassword

_FILETIME_EPOCH = 116_444_736_000_000_000  # 1970-01-01 in 100 ns units since 1601


@dataclass(frozen=True)
class SevenZipMember:
    name: str
    kind: str  # file | dir | symlink | special
    size: int
    mode: int
    mtime_ns: int


def _member(entry) -> SevenZipMember:
    if entry.is_directory:
        kind = "dir"
    elif entry.is_symlink:
        kind = "symlink"
    elif entry.is_socket or entry.is_junction:
        kind = "special"
    else:
        kind = "file"
    # 7z keeps FILETIME: 100 ns units since 1601.
    mtime_ns = (entry.lastwritetime - _FILETIME_EPOCH) * 100 if entry.lastwritetime is not None else 0
    mode = entry.posix_mode if entry.posix_mode is not None else (0o755 if kind == "dir" else 0o644)
    return SevenZipMember(entry.filename, kind, int(entry.uncompressed or 0), mode, mtime_ns)


@contextlib.contextmanager
def open_7z(path: str, password: str | None) -> Iterator[py7zr.SevenZipFile]:
    """Open an archive whose SHA-256 was checked: a failure to open with a password means the password."""
    with open(path, "rb") as raw:
        try:
            archive = py7zr.SevenZipFile(raw, mode="r", password=password)
        except PasswordRequired:
            raise WrongPassword(path) from None
        except OSError:
            raise  # a disk or tape read error is reported as itself, never as a password problem
        except Exception as exc:  # noqa: BLE001 - a wrong header key shows as Bad7zFile, TypeError, LZMAError…
            # The file's SHA-256 matched the catalog, so with a password, garbage in the decrypted header
            # means the key is wrong (which error py7zr raises depends on the garbage).
            if password is not None:
                raise WrongPassword(path) from exc
            raise ArchiveDamaged(path, f"{type(exc).__name__}: {exc}") from exc
        try:
            yield archive
        except PasswordRequired:
            raise WrongPassword(path) from None
        except (lzma.LZMAError, CrcError, Bad7zFile, EOFError) as exc:
            if password is not None:
                raise WrongPassword(path) from exc
            raise ArchiveDamaged(path, f"{type(exc).__name__}: {exc}") from exc
        finally:
            archive.close()


def list_members(archive: py7zr.SevenZipFile) -> list[SevenZipMember]:
    return [_member(entry) for entry in archive.files]


class _Sink(Py7zIO):
    """One member's bytes, as py7zr writes them: into a file, a symlink's target, or nowhere."""

    def __init__(self, on_data: Callable[[bytes], None], on_close: Callable[[], None]):
        self._on_data, self._on_close = on_data, on_close
        self._size = 0

    def write(self, s) -> int:
        self._size += len(s)
        self._on_data(s)
        return len(s)

    def read(self, size=None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        pass

    def size(self) -> int:
        return self._size

    def close(self) -> None:
        on_close, self._on_close = self._on_close, lambda: None
        on_close()


class _Factory(WriterFactory):
    def __init__(self, create: Callable[[str], Py7zIO]):
        self._create = create

    def create(self, filename: str) -> Py7zIO:
        return self._create(filename)


def extract_7z(path: str, password: str | None, extractor: SafeExtractor, selected: Callable[[str], bool],
               progress, size_of: SizeOf | None = None) -> None:
    """Restore the selected members of one 7z archive through ``extractor``."""
    with open_7z(path, password) as archive:
        members = list_members(archive)
        by_key: dict[str, SevenZipMember] = {}
        targets: list[str] = []
        for member in members:
            if not selected(member.name):
                continue
            try:
                member_parts(member.name)
            except Refused as exc:
                extractor.refuse(member.name, str(exc))
                continue
            if member.kind == "dir":
                extractor.directory(member.name, member.mode, member.mtime_ns)
            elif member.kind == "special":
                extractor.refuse(member.name, "special file (socket or junction) not restored")
            else:
                by_key[get_sanitized_output_path(member.name, None).as_posix()] = member
                targets.append(member.name)
        if not targets:
            return

        def create(filename: str) -> Py7zIO:
            member = by_key[filename]
            progress.checkpoint()
            progress.advance(files=int(member.kind == "file"), current=member.name)  # as the plan counts
            if member.kind == "symlink":
                chunks: list[bytes] = []
                return _Sink(chunks.append, lambda: extractor.symlink(member.name, b"".join(chunks), member.mtime_ns))
            sink: FileSink | None = extractor.begin_file(member.name, member.mode, member.mtime_ns, size_of=size_of)
            if sink is None:
                return _Sink(lambda data: None, lambda: None)

            def write(data: bytes) -> None:
                try:
                    sink.write(data)
                except BaseException:
                    sink.abort()  # py7zr still closes the member: that commits nothing now
                    raise
                progress.advance(nbytes=len(data))

            return _Sink(write, sink.close)

        archive.extract(targets=targets, factory=_Factory(create))
