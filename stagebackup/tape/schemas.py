"""The schemas of what StageBackup reads back from a tape: the label (file 0) and session index files
(``label.py`` describes both), checked before a word of them is believed.

A tape is input: it may come from another server, another version, a damaged cartridge or someone's
``dd``. Every value that reaches a catalog row is checked here for type, range (integers fit the
columns) and text that the database and the file system accept, so adopting a valid index cannot fail
half-way. Keys this version does not know are ignored (a label or an index written by a newer version
still reads); missing optional keys of an index take the defaults ``scan._adopt_index`` gives them.
"""

from __future__ import annotations

import json
import os
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, Strict, ValidationError

LABEL_FORMAT = "stagebackup-tape-label/1"
INDEX_FORMAT = "stagebackup-tape-index/1"
LABEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
INT32_MAX, INT64_MAX = 2**31 - 1, 2**63 - 1


def _fs_name(value: object) -> str:
    """A path as the index carries it: non-UTF-8 bytes as \\udcXX escapes (pydantic's own ``str`` refuses
    every surrogate, so this one checks by hand that ``os.fsencode`` takes it back to bytes)."""
    if not isinstance(value, str):
        raise ValueError("Input should be a valid string")
    if len(value) > 65536:
        raise ValueError("path longer than 65536 characters")
    try:
        os.fsencode(value)
    except UnicodeEncodeError:
        raise ValueError("path with a character no file name can hold") from None
    return value


def _label(value: str) -> str:
    if not LABEL_NAME.match(value):
        raise ValueError("not a tape label (1-32 letters, digits, '.', '_' or '-')")
    return value


Count = Annotated[int, Strict(), Field(ge=0, le=INT64_MAX)]
Small = Annotated[int, Strict(), Field(ge=0, le=INT32_MAX)]
Positive = Annotated[int, Strict(), Field(ge=1, le=INT32_MAX)]
Flag = Annotated[bool, Strict()]
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL; pydantic's str refuses lone surrogates itself
Text = Annotated[str, Strict(), Field(max_length=65536, pattern=NO_NUL)]
Name = Annotated[str, Strict(), Field(max_length=200, pattern=NO_NUL)]
FsName = Annotated[str, PlainValidator(_fs_name)]
Label = Annotated[str, Strict(), AfterValidator(_label)]
Sha256 = Annotated[str, Strict(), Field(pattern=r"^([0-9a-f]{64})?$")]
Seconds = Annotated[float, Strict(), Field(allow_inf_nan=False, ge=-(2.0**62), le=2.0**62)]
MemberKind = Annotated[str, Strict(), Field(pattern=r"^[a-z ]{1,8}$")]

# [path, kind, size, mtime, mode, link_target]
Member = tuple[FsName, MemberKind, Count, Seconds, Small, FsName | None]


class _TapeRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Piece(_TapeRecord):
    label: Label
    file_number: Positive  # file 0 is the label
    piece: Positive
    bytes: Count | None = None
    blocks: Count | None = None
    block_size: Small | None = None
    sha256: Sha256 | None = None


class ArchiveEntry(_TapeRecord):
    name: Text | None = None
    format: Literal["tgz", "7z"] | None = None
    encrypted: Flag | None = None
    kdf_iterations: Positive | None = None
    size: Count | None = None
    sha256: Sha256 | None = None
    seq: Small | None = None
    input_bytes: Count | None = None
    pieces: list[Piece] = []
    members: list[Member] = []


class SessionIndex(_TapeRecord):
    format: Literal[INDEX_FORMAT]  # type: ignore[valid-type]
    label: Label | None = None
    job: Count | None = None
    project: Name | None = None
    remark: Text | None = None
    written_at: Text | None = None
    archives: list[ArchiveEntry] = []


class TapeLabel(_TapeRecord):
    format: Literal[LABEL_FORMAT]  # type: ignore[valid-type]
    label: Label
    pool: Annotated[str, Strict(), Field(min_length=1, max_length=64)]
    uuid: Annotated[str, Strict(), Field(pattern=r"^[0-9a-fA-F-]{1,36}$")]
    created: Text | None = None
    block_size: Small | None = None


class Malformed(ValueError):
    """Why what a tape holds is not a label or an index StageBackup can use (the operator's reason)."""


def validate_index(data: object) -> dict:
    """``data`` (parsed JSON) itself once it matches the schema; Malformed with the first problem otherwise.

    The original objects are returned, not the model: nothing was coerced (scalars are strict), and a
    million members are not held twice.
    """
    return _validate(SessionIndex, data)


def validate_label(data: object) -> dict:
    return _validate(TapeLabel, data)


def _validate(model: type[BaseModel], data: object) -> dict:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        raise Malformed(_first_problem(exc)) from None
    except RecursionError:
        raise Malformed("nested too deeply") from None
    return data  # type: ignore[return-value]


def parse_json(data: bytes | bytearray) -> object:
    """JSON from a tape: Malformed (not UTF-8, not JSON, nested too deeply) instead of assorted errors.
    A bytearray is emptied once decoded, so its bytes and their text are not both held."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed(f"not UTF-8 text: byte {exc.start}") from None
    if isinstance(data, bytearray):
        del data[:]
    try:
        return json.loads(text)
    except RecursionError:
        raise Malformed("nested too deeply") from None
    except ValueError as exc:
        raise Malformed(f"not valid JSON: {exc}") from None


def _first_problem(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "the top level"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"
