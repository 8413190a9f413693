"""Encrypted tar.gz in the format of ``openssl enc -aes-256-cbc -pbkdf2 -md sha256``.

Layout: ``b"Salted__"`` + 8 random salt bytes + AES-256-CBC ciphertext with PKCS#7 padding; key and IV are
the 48 bytes of PBKDF2-HMAC-SHA256(password, salt, iterations). Any Linux rescue system decrypts it with

    openssl enc -d -aes-256-cbc -pbkdf2 -iter N -md sha256 -in ARCHIVE.tar.gz.enc -out ARCHIVE.tar.gz

CBC carries no authentication of its own: integrity is the SHA-256 of the whole encrypted file, recorded in
the catalog and checked before anything is decrypted or extracted.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from ..errors import N_, StageBackupError

MAGIC = b"Salted__"
SALT_BYTES = 8
HEADER_BYTES = len(MAGIC) + SALT_BYTES
BLOCK_BYTES = 16
SUFFIX = ".enc"


class DecryptionError(StageBackupError):
    """An archive that does not decrypt."""

    template = None  # free-form: each raise site passes its N_ template


def openssl_command(iterations: int, path: str = "ARCHIVE.tar.gz.enc") -> str:
    """The command that decrypts our output without StageBackup (shown in docs/backups.md and the job log)."""
    out = path[: -len(SUFFIX)] if path.endswith(SUFFIX) else path + ".dec"
    return f"openssl enc -d -aes-256-cbc -pbkdf2 -iter {iterations} -md sha256 -in {path} -out {out}"


def _cipher(password: bytes, salt: bytes, iterations: int) -> Cipher:
    if not password:
        raise StageBackupError(N_("an empty password cannot encrypt or decrypt"))
    material = PBKDF2HMAC(algorithm=hashes.SHA256(), length=48, salt=salt, iterations=iterations).derive(password)
    return Cipher(algorithms.AES256(material[:32]), modes.CBC(material[32:]))


def _as_bytes(password: str | bytes) -> bytes:
    return password if isinstance(password, bytes) else password.encode("utf-8", "surrogateescape")


class EncryptingWriter:
    """A write-only stream that encrypts into ``raw``; ``close()`` writes the padding, not ``raw``'s close."""

    def __init__(self, raw: BinaryIO, password: str | bytes, iterations: int, *, salt: bytes | None = None):
        salt = salt if salt is not None else os.urandom(SALT_BYTES)
        self._raw = raw
        self._encryptor = _cipher(_as_bytes(password), salt, iterations).encryptor()
        self._padder = padding.PKCS7(128).padder()
        self._closed = False
        raw.write(MAGIC + salt)

    def write(self, data: bytes) -> int:
        chunk = self._encryptor.update(self._padder.update(data))
        if chunk:
            self._raw.write(chunk)
        return len(data)

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._raw.write(self._encryptor.update(self._padder.finalize()) + self._encryptor.finalize())

    def __enter__(self) -> EncryptingWriter:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()


class DecryptingReader:
    """A read-only stream of the plaintext of an encrypted archive read from ``raw``.

    A wrong password is usually detected by the padding check at the end; the caller should also expect
    the decompressor to reject garbage (gzip's magic number) at the start.
    """

    def __init__(self, raw: BinaryIO, password: str | bytes, iterations: int):
        header = raw.read(HEADER_BYTES)
        if len(header) != HEADER_BYTES or not header.startswith(MAGIC):
            raise DecryptionError(N_("not an encrypted StageBackup archive (no OpenSSL 'Salted__' header)"))
        self._raw = raw
        self._decryptor = _cipher(_as_bytes(password), header[len(MAGIC):], iterations).decryptor()
        self._unpadder = padding.PKCS7(128).unpadder()
        self._buffer = bytearray()
        self._eof = False

    def _fill(self, wanted: int) -> None:
        while not self._eof and (wanted < 0 or len(self._buffer) < wanted):
            chunk = self._raw.read(max(wanted, 1 << 20) if wanted > 0 else 1 << 20)
            if chunk:
                self._buffer += self._unpadder.update(self._decryptor.update(chunk))
                continue
            self._eof = True
            try:
                self._buffer += self._unpadder.update(self._decryptor.finalize()) + self._unpadder.finalize()
            except ValueError as exc:
                raise DecryptionError(N_("decryption failed: wrong password or damaged archive")) from exc

    def read(self, size: int = -1) -> bytes:
        self._fill(size if size is not None and size >= 0 else -1)
        if size is None or size < 0 or size >= len(self._buffer):
            data, self._buffer = bytes(self._buffer), bytearray()
            return data
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()
