"""``flask explorer``: the storage explorer from the command line (same mounts, listing and path policy)."""

from __future__ import annotations

import os
from datetime import datetime

import click
from flask.cli import AppGroup

from ..errors import human_bytes
from ..explorer.listing import PAGE_MAX, SORTS, list_dir
from ..explorer.present import checked, listing_dict, offered_mounts
from .common import PathArg, echo_json, operator_errors

explorer_group = AppGroup("explorer", help="Browse the server's mounts and folders (metadata only).")


@explorer_group.command("mounts")
@click.option("--all", "show_system", is_flag=True, help="Include system mounts (proc, sysfs, overlay, /run, …).")
@click.option("--json", "as_json", is_flag=True)
@operator_errors
def mounts(show_system, as_json):
    """Mounted file systems: kind (disk/network/system), bind mounts with their source folder, free space."""
    found = offered_mounts(show_system)
    if as_json:
        echo_json({"mounts": found})
        return
    for m in found:
        room = (f"{human_bytes(m['free_bytes'])} free of {human_bytes(m['total_bytes'])}"
                if m["total_bytes"] else "space unknown")
        flags = " ro" if m["read_only"] else ""
        click.echo(f"{m['path']}\t{m['kind']}\t{m['fstype']}{flags}\t{m['device']}\t{room}")


@explorer_group.command("ls")
@click.argument("path", type=PathArg())
@click.option("--sort", type=click.Choice(SORTS), default="name", show_default=True)
@click.option("--offset", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True)
@click.option("--limit", type=click.IntRange(1, PAGE_MAX), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@operator_errors
def ls(path, sort, offset, limit, as_json):
    """List the folder PATH: folders first, a page at a time; never reads a file's contents."""
    listing = list_dir(checked(os.path.abspath(path)), offset=offset, limit=limit, sort=sort)
    if as_json:
        echo_json(listing_dict(listing))
        return
    for item in listing_dict(listing)["items"]:
        when = datetime.fromtimestamp(item["mtime"]).strftime("%Y-%m-%d %H:%M") if _sane(item["mtime"]) else "?"
        suffix = "/" if item["kind"] == "dir" else (f" -> {item['link_target']}" if item["link_target"] else "")
        click.echo(f"{oct(item['mode'] & 0o7777)[2:]:>4} {item['size']:>14} {when}  {item['name']}{suffix}")
    shown_to = listing.offset + len(listing.items)
    click.echo(f"({listing.offset + 1 if listing.items else 0}–{shown_to} of {listing.total})", err=True)


def _sane(timestamp: float) -> bool:
    try:
        datetime.fromtimestamp(timestamp)
    except (OverflowError, OSError, ValueError):
        return False
    return True
