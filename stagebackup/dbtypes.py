"""Column types and engine settings that keep hostile file names and concurrent processes safe."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Float, Integer, LargeBinary, Text, event, inspect
from sqlalchemy.engine import Connection, Engine, Result, make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from .paths import as_text

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for big tables.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
DB_INT_MAX = 2**63 - 1  # the largest number an INTEGER/BIGINT column holds: a larger one overflows the driver


def utcnow() -> datetime:
    """Naive UTC: SQLite drops time zones, so every timestamp is stored the same way everywhere."""
    return datetime.now(UTC).replace(tzinfo=None)


class JSONText(TypeDecorator):
    """JSON in a TEXT column, ASCII-escaped.

    File names may hold bytes that are not UTF-8; Python carries them as lone surrogates, which no
    database accepts as text. ``ensure_ascii`` turns them into ``\\udcXX`` escapes that load back to
    the same string, on SQLite and PostgreSQL alike (jsonb would reject them).
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else json.dumps(value, ensure_ascii=True)

    def process_result_value(self, value, dialect):
        return None if value is None else json.loads(value)


class MessageText(TypeDecorator):
    """TEXT for messages and log lines that may quote file names: never fails on a hostile name."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else as_text(value)


class FSPath(TypeDecorator):
    """A file-system path stored as its exact bytes, returned as a ``surrogateescape`` str."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else os.fsencode(value)

    def process_result_value(self, value, dialect):
        return None if value is None else os.fsdecode(bytes(value))


MYSQL_DIALECTS = ("mysql", "mariadb")


@compiles(DateTime, *MYSQL_DIALECTS)
def _mysql_datetime(_type, _compiler, **_kw) -> str:
    """MySQL's DATETIME drops the fraction of a second; the queue orders jobs queued within one second."""
    return "DATETIME(6)"


@compiles(Float, *MYSQL_DIALECTS)
def _mysql_double(_type, _compiler, **_kw) -> str:
    """MySQL's FLOAT is single precision: seven digits, so a file's mtime (1.7e9 s) lost its seconds' fraction
    and the sync restore's "changed since job N" check saw every file as changed. DOUBLE keeps microseconds."""
    return "DOUBLE"


@compiles(Text, *MYSQL_DIALECTS)
def _mysql_text(_type, _compiler, **_kw) -> str:
    """MySQL's TEXT holds 64 KiB; a restore's path list or a long error message may be longer."""
    return "LONGTEXT"


def is_mysql(dialect_name: str) -> bool:
    return dialect_name in MYSQL_DIALECTS


def engine_options(url: str) -> dict:
    """Connection pool settings per database kind (SQLite: the defaults)."""
    if url.startswith("sqlite"):
        return {}
    options: dict = {"pool_pre_ping": True}
    if is_mysql(make_url(url).get_backend_name()):
        # As on PostgreSQL, a statement sees what others committed: InnoDB's default (REPEATABLE READ) keeps
        # a transaction's first snapshot, which would hide new jobs from a polling loop. Connections are
        # renewed before the server's wait_timeout (8 h by default) closes them.
        options.update(isolation_level="READ COMMITTED", pool_recycle=3600)
    return options


def binary_collation(connection: Connection) -> str:
    """Names compare byte for byte (file names are case-sensitive, and "a " is not "a")."""
    return "utf8mb4_nopad_bin" if getattr(connection.dialect, "is_mariadb", False) else "utf8mb4_0900_bin"


def prepare_mysql_database(connection: Connection) -> None:
    """Before the first migration on MySQL/MariaDB: tables created from now on default to utf8mb4 with a
    binary collation, whatever the server's default (often latin1 or a case-insensitive utf8mb4)."""
    if not is_mysql(connection.dialect.name):
        return
    if not inspect(connection).has_table("alembic_version"):
        connection.exec_driver_sql(f"ALTER DATABASE CHARACTER SET utf8mb4 COLLATE {binary_collation(connection)}")
    connection.commit()  # Alembic commits only a transaction it began itself


READ_ONLY_OPTION = "stagebackup_read_only"


def begin_read_only(session: Session) -> Connection:
    """The session's connection, opened read-only if not yet open: on SQLite a plain BEGIN (no write lock),
    on PostgreSQL no transaction at all."""
    if session.in_transaction():
        return session.connection()
    options: dict = {READ_ONLY_OPTION: True}
    # PostgreSQL runs READ COMMITTED, where every statement reads its own snapshot, in a transaction or not: a
    # request that only reads gains nothing from BEGIN … ROLLBACK but two round trips (a card poll 3.95–4.04 →
    # 3.07 ms in-process; docs/performance.md, "Web polling"). The pool puts the connection back in
    # transactions when the request returns it. Not MySQL/MariaDB: PyMySQL switches autocommit with a
    # statement each way, which is what it would save.
    if session.get_bind().dialect.name == "postgresql":
        options["isolation_level"] = "AUTOCOMMIT"
    return session.connection(execution_options=options)


def plain_rows(session: Session, statement, values: dict | None = None) -> Result:
    """A read's rows as plain rows, on the session's connection (its transaction, read-only or not): for the
    statements every request or poll runs, where the ORM's result set-up and objects cost more than the query
    (docs/performance.md, "Web polling"). No autoflush: callers read what is committed or already flushed."""
    return session.connection().execute(statement, values)


def configure_engine(engine: Engine, busy_timeout_ms: int) -> None:
    """SQLite: WAL, a busy timeout, and ``BEGIN IMMEDIATE``.

    With pysqlite's deferred transactions, a transaction that reads and then writes can fail at once
    with "database is locked" when another process wrote in between, whatever the busy timeout.
    Taking the write lock at BEGIN makes every writer wait its turn instead. Transactions are kept
    short (the worker commits at least once a second), so readers queue only briefly; connections
    marked ``READ_ONLY_OPTION`` (page requests that only read) use a plain deferred BEGIN and take no
    lock at all.
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        read_only = conn.get_execution_options().get(READ_ONLY_OPTION)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
