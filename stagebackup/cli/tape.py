"""``flask tape``: drives, cartridges and the tape catalog. Thin: the work is in ``stagebackup.tape``."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from .. import audit
from ..dbtypes import utcnow
from ..errors import human_bytes
from ..extensions import db
from ..tape import admin, inventory, media
from ..tape.drives import is_virtual, resolve
from ..tape.errors import LoadedTapeUnknown, TapeError, TapeFileNotFound, TapeNotFound, TapeVerifyFailed, WrongTape
from ..tape.reader import TapeReader
from ..tape.scan import scan as scan_tape
from ..tape_models import Tape
from .common import NAME, actor, echo_json, operator_errors

tape_group = AppGroup("tape", help="Tape drives, cartridges and the tape catalog.")
FILE_NUMBER = click.IntRange(0, 2**31 - 1)


def resolve_drive(name: str) -> str:
    return resolve(current_app.config, name)


@tape_group.command("status")
@click.argument("drive", type=NAME)
@click.option("--json", "as_json", is_flag=True)
@operator_errors
def status(drive, as_json):
    """Show what DRIVE reports (as `mt status`) and the label of its tape."""
    data = admin.status(current_app.config, resolve_drive(drive))
    if as_json:
        echo_json(data)
        return
    click.echo(f"drive {data['drive']} ({data['device']})")
    if data["busy"]:
        click.echo(f"busy: {data['message']}; last seen tape: {data['label'] or '-'}")
        return
    click.echo(f"status: {' '.join(data['flags']) or '-'}; file {data['file_number']} block {data['block_number']}; "
               f"block size {data['block_size'] or 'variable'}; density {data['density_name']}")
    if data["cartridge"]:
        click.echo(f"cartridge: {data['cartridge']}")
    if data["label"]:
        tape = data.get("tape")
        usage = (f", {tape['state']}, {human_bytes(tape['bytes_used'])} used of {human_bytes(tape['capacity_bytes'])}"
                 if tape else "")
        click.echo(f"tape: {data['label']} (pool {data['pool']}{usage})")
    if data["message"]:
        click.echo(f"note: {data['message']}")


@tape_group.command("label")
@click.argument("drive", type=NAME)
@click.argument("label", type=NAME)
@click.option("--pool", type=NAME, default="default", show_default=True, help="Pool the tape joins.")
@click.option("--force", is_flag=True, help="Overwrite a labelled tape that is blank or expired, or a foreign one.")
@operator_errors
def label(drive, label, pool, force):
    """Write LABEL as file 0 of the tape in DRIVE and add it to the inventory."""
    if not pool.strip() or len(pool) > 64:
        raise click.UsageError("--pool must be 1 to 64 characters")
    drive = resolve_drive(drive)
    tape = admin.label(current_app.config, drive, label, pool=pool.strip(), force=force, actor=actor())
    audit.record(actor(), "tape.label", label, details={"drive": drive, "pool": pool, "force": force,
                                                        "over": tape["over"]})
    db.session.commit()
    click.echo(f"tape {tape['label']} labelled in {drive} (pool {tape['pool']}, "
               f"{human_bytes(tape['capacity_bytes'])})")


@tape_group.command("rewind")
@click.argument("drive", type=NAME)
@operator_errors
def rewind(drive):
    """Rewind the tape in DRIVE."""
    admin.rewind(current_app.config, resolve_drive(drive))
    click.echo("rewound")


@tape_group.command("eject")
@click.argument("drive", type=NAME)
@operator_errors
def eject(drive):
    """Rewind and unload the tape in DRIVE."""
    drive = resolve_drive(drive)
    admin.eject(current_app.config, drive)
    audit.record(actor(), "tape.eject", drive)
    db.session.commit()
    click.echo(f"{drive}: tape unloaded")


@tape_group.command("load")
@click.argument("drive", type=NAME)
@click.argument("cartridge", required=False)
@click.option("--capacity", type=click.IntRange(1024 * 1024, 2**63 - 1), default=None,
              help="Virtual drives: capacity in bytes of a new cartridge (default STAGEBACKUP_VTAPE_CAPACITY_BYTES).")
@click.option("--write-protect/--no-write-protect", "write_protected", default=None,
              help="Virtual drives: set the cartridge's write-protect tab.")
@operator_errors
def load(drive, cartridge, capacity, write_protected):
    """Load a tape. Virtual drives: insert CARTRIDGE (by name or label; a blank one is created if new).
    Real drives: load the inserted cartridge (CARTRIDGE, if given, must be its label)."""
    drive = resolve_drive(drive)
    data = admin.load(current_app.config, drive, cartridge, capacity=capacity, write_protected=write_protected)
    if cartridge and not is_virtual(current_app.config, drive) and data["label"] != cartridge:
        raise WrongTape(drive, data["label"] or "unlabelled", cartridge)
    audit.record(actor(), "tape.load", drive, details={"cartridge": cartridge})
    db.session.commit()
    shown = data["label"] or f"blank cartridge {data['cartridge'] or ''}".strip()
    click.echo(f"{drive}: {shown} loaded" + (f" ({data['message']})" if data["message"] else ""))


@tape_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_(as_json):
    """The tape inventory."""
    tapes = db.session.scalars(select(Tape).order_by(Tape.pool, Tape.label)).all()
    if as_json:
        echo_json([media.tape_dict(t) for t in tapes])
        return
    for t in tapes:
        wp = " write-protected" if t.write_protected else ""
        click.echo(f"{t.label:<12} pool {t.pool:<10} {t.state:<9} {human_bytes(t.bytes_used)} used of "
                   f"{human_bytes(t.capacity_bytes)}{wp}")


def _tape_for(name: str) -> Tape:
    """A tape label, or a drive name meaning the tape last seen in it."""
    tape = media.get_tape(name)
    if tape is not None:
        return tape
    try:
        drive = resolve_drive(name)
    except TapeError:
        raise TapeNotFound(name) from None
    row = media.drive_row(drive)
    label = row.loaded_label if row else None
    if label is None:
        label = admin.status(current_app.config, drive)["label"]
    tape = media.get_tape(label) if label else None
    if tape is None:
        raise LoadedTapeUnknown(drive)
    return tape


@tape_group.command("files")
@click.argument("drive_or_label", type=NAME)
@click.option("--json", "as_json", is_flag=True)
@operator_errors
def files(drive_or_label, as_json):
    """The catalog of one tape: one line (object) per tape file."""
    tape = _tape_for(drive_or_label)
    rows = inventory.file_rows(tape)
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        void = "  VOID (partial)" if r["void"] else ""
        piece = f" piece {r['piece']}" if r["kind"] == "archive" and r["piece"] > 1 else ""
        click.echo(f"{r['file_number']:>5}  {r['kind']:<7} job {r['job'] or '-':<5} {r['bytes']:>14}  "
                   f"{r['sha256'] or '-'}  {r['archive'] or ''}{piece}{void}")


@tape_group.command("read")
@click.argument("drive", type=NAME)
@click.option("--file", "file_number", type=FILE_NUMBER, required=True, help="Tape file number (0 = label).")
@click.option("--out", default="-", show_default=True, help="Write to this path; '-' is standard output.")
@operator_errors
def read(drive, file_number, out):
    """Copy tape file N, as written, to a file or standard output."""
    drive = resolve_drive(drive)
    with TapeReader(current_app.config, drive) as reader:
        if out == "-":
            size, sha = reader.copy_file(file_number, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            try:
                with open(out, "xb") as fh:
                    size, sha = reader.copy_file(file_number, fh)
            except FileExistsError:
                raise click.ClickException(f"{out} exists; not overwriting it") from None
    click.echo(f"{reader.label['label']} file {file_number}: {size} bytes, sha256 {sha}", err=True)


@tape_group.command("verify")
@click.argument("drive", type=NAME)
@click.option("--file", "file_number", type=FILE_NUMBER, required=True)
@operator_errors
def verify(drive, file_number):
    """Read tape file N back and compare its SHA-256 with the catalog."""
    drive = resolve_drive(drive)

    class _Null:
        def write(self, _data):
            pass

    with TapeReader(current_app.config, drive) as reader:
        label = reader.label["label"]
        row = media.file_row(label, file_number)
        if row is None or not row.sha256:
            raise TapeFileNotFound(drive, label, file_number)
        expected = row.sha256
        db.session.rollback()  # no transaction held while the tape is read
        size, actual = reader.copy_file(file_number, _Null())
    if actual != expected:
        raise TapeVerifyFailed(label, file_number, actual, expected)
    row = media.file_row(label, file_number)

    row.verified_at = utcnow()
    db.session.commit()
    click.echo(f"{label} file {file_number}: OK ({size} bytes, sha256 {actual})")


@tape_group.command("scan")
@click.argument("drive", type=NAME)
@click.option("--json", "as_json", is_flag=True)
@operator_errors
def scan(drive, as_json):
    """Read the whole tape and rebuild its catalog (inventory, files, jobs, archives, members)."""
    drive = resolve_drive(drive)
    summary = scan_tape(current_app.config, drive, echo=(lambda _m: None) if as_json else click.echo,
                        error=lambda message: click.echo(message, err=True))
    audit.record(actor(), "tape.scan", summary["label"], details=summary)
    db.session.commit()
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"tape {summary['label']}: {summary['files']} file(s) read, {summary['added']} added to the "
                   f"catalog, {summary['archives']} archive(s) catalogued, {summary['mismatched']} mismatch(es)")
    if summary["errors"]:  # the rest is catalogued, but a script must not take this tape for a clean one
        raise TapeError(drive, f"{len(summary['errors'])} damaged index file(s) on {summary['label']} skipped "
                               "(reported above); their archives are not catalogued")
