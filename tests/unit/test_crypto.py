"""Encrypted tar.gz output: readable by plain openssl, and by our own reader."""

import io
import os
import subprocess

import pytest

from stagebackup.pipeline.crypto import DecryptingReader, DecryptionError, EncryptingWriter, openssl_command

ITERATIONS = 1000  # the format, not the cost, is under test here


def encrypt(data: bytes, password: str, salt: bytes | None = None) -> bytes:
    out = io.BytesIO()
    with EncryptingWriter(out, password, ITERATIONS, salt=salt) as writer:
        for start in range(0, len(data), 7001):  # odd chunk sizes cross block boundaries
            writer.write(data[start:start + 7001])
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 100_000])
def test_openssl_decrypts_our_output(tmp_path, size):
    data = os.urandom(size)
    enc = tmp_path / "a.tar.gz.enc"
    enc.write_bytes(encrypt(data, "pässwörd"))
    command = openssl_command(ITERATIONS, str(enc)).split() + ["-pass", "stdin"]
    subprocess.run(command, input="pässwörd\n".encode(), check=True)
    assert (tmp_path / "a.tar.gz").read_bytes() == data


def test_our_reader_decrypts_openssl_output(tmp_path):
    data = os.urandom(300_000)
    (tmp_path / "plain").write_bytes(data)
    subprocess.run(
        ["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-iter", str(ITERATIONS), "-md", "sha256", "-salt",
         "-in", str(tmp_path / "plain"), "-out", str(tmp_path / "enc"), "-pass", "pass:s3cret"],
        check=True,
    )
    with open(tmp_path / "enc", "rb") as raw:
        reader = DecryptingReader(raw, "s3cret", ITERATIONS)
        chunks = iter(lambda: reader.read(65536), b"")
        assert b"".join(chunks) == data


def test_a_wrong_password_or_a_damaged_file_is_refused():
    blob = encrypt(b"x" * 1000, "right", salt=b"fixed-sa")  # fixed: a wrong key pads validly 1 time in 256
    with pytest.raises(DecryptionError, match="wrong password or damaged"):
        DecryptingReader(io.BytesIO(blob), "wrong", ITERATIONS).read()
    with pytest.raises(DecryptionError, match="Salted__"):
        DecryptingReader(io.BytesIO(b"PK\x03\x04 not ours"), "right", ITERATIONS)


def test_each_archive_gets_its_own_salt():
    assert encrypt(b"same", "pw")[8:16] != encrypt(b"same", "pw")[8:16]
