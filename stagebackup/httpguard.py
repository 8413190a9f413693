"""HTTP hygiene for every request: allowed Host names, integers that fit a database, proxies, framing.

- ``STAGEBACKUP_ALLOWED_HOSTS`` adds names (comma-separated, ``*`` for any) to ``127.0.0.1``, ``localhost``
  and ``::1``; a request naming another host gets 400, so a DNS-rebinding page cannot talk to the server.
- ``<int:…>`` in a route accepts 0 … 2^63-1 (larger numbers are no row id and overflow SQLite and
  PostgreSQL): anything else is 404. ``query_int`` does the same for query strings, with a 400 and a message.
- ``X-Forwarded-*`` is believed only from ``STAGEBACKUP_PROXY_COUNT`` proxies (``ProxyFix``); unset, never.
- ``MAX_CONTENT_LENGTH`` caps a request body (413 beyond it); a route that takes large uploads raises its own
  limit with ``request.max_content_length = current_app.config["IMPORT_MAX_CONTENT_LENGTH"]``.
"""

from __future__ import annotations

from flask import Flask, abort, current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from .dbtypes import DB_INT_MAX

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class DatabaseIntConverter(IntegerConverter):
    """``<int:…>`` that only matches numbers a BIGINT column can hold."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", DB_INT_MAX)
        super().__init__(url_map, *args, **kwargs)


def query_int(name: str, default: int, *, low: int = 0, high: int = DB_INT_MAX) -> int:
    """An integer from the query string; 400 with a message when it is not one or is out of range."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        abort(400, f"'{name}' must be a whole number")
    if not low <= value <= high:
        abort(400, f"'{name}' must be between {low} and {high}")
    return value


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without port or IPv6 brackets, lower case; "" when malformed."""
    header = header.strip().lower()
    if header.startswith("["):
        name, _bracket, rest = header[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest
    elif header.count(":") == 1:
        name, _colon, port = header.partition(":")
    else:
        name, port = header, ""
    if port and not port.isdigit():
        return ""
    return name.rstrip(".")


def allowed_hosts(config) -> set[str]:
    extra = str(config.get("ALLOWED_HOSTS") or "").replace(",", " ").split()
    return {host_name(h) or h for h in (*LOCAL_HOSTS, *extra)}


def _check_host() -> None:
    allowed = current_app.extensions["stagebackup_allowed_hosts"]
    if "*" in allowed:
        return
    if host_name(request.headers.get("Host") or request.environ.get("SERVER_NAME", "")) not in allowed:
        abort(400, "this host name is not served here (see STAGEBACKUP_ALLOWED_HOSTS)")


def _frame_header(response):
    response.headers["X-Frame-Options"] = "DENY"
    return response


def init_app(app: Flask) -> None:
    """Before any blueprint is registered (the ``int`` converter applies to routes added afterwards)."""
    app.url_map.converters["int"] = DatabaseIntConverter
    app.extensions["stagebackup_allowed_hosts"] = allowed_hosts(app.config)
    app.before_request(_check_host)
    app.after_request(_frame_header)
    proxies = int(app.config.get("PROXY_COUNT") or 0)
    if proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies,
                                x_prefix=proxies)
