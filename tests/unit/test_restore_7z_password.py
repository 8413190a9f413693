"""A wrong password on a 7z with encrypted headers is always reported as such, whatever garbage it yields."""

import py7zr
import pytest

from stagebackup.restore.sevenzip import open_7z
from stagebackup.restore.tarstream import WrongPassword


def test_every_wrong_password_is_reported_as_wrong_password(tmp_path):
    archive = tmp_path / "a.7z"
    filters = [{"id": py7zr.FILTER_LZMA2, "preset": 1}, {"id": py7zr.FILTER_CRYPTO_AES256_SHA256}]
    with py7zr.SevenZipFile(archive, "w", password="right", header_encryption=True, filters=filters) as z:
        z.writestr(b"hello " * 100, "a.txt")
    # A wrong key decrypts the header into garbage; py7zr then raises LZMAError, TypeError… depending on it.
    for n in range(10):
        with pytest.raises(WrongPassword):
            with open_7z(str(archive), f"wrong-{n}") as opened:
                opened.readall()
    with open_7z(str(archive), "right") as opened:
        assert opened.getnames() == ["a.txt"]


def test_a_header_that_decrypts_to_garbage_is_a_wrong_password(tmp_path, monkeypatch):
    """Seen in CI once in a few hundred keys: the garbage parses far enough for py7zr to say Bad7zFile.

    Which error comes depends on the random garbage, so this case is forced: the archive's SHA-256 was checked
    before it is opened, so with a password given, a header that does not parse means the key is wrong.
    """
    archive = tmp_path / "a.7z"
    archive.write_bytes(b"7z\xbc\xaf\x27\x1c")

    def garbage_header(*args, **kwargs):
        raise py7zr.Bad7zFile("end id expected but b'^' found")

    monkeypatch.setattr(py7zr, "SevenZipFile", garbage_header)
    with pytest.raises(WrongPassword):
        with open_7z(str(archive), "wrong"):
            pass
