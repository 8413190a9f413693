"""Many-row inserts without SQLAlchemy's per-row work, for the two tables a job fills by the thousand.

A backup of 50,000 files writes 50,000 ``[PACK]`` log lines and 50,000 catalog rows. Through the ORM's
bulk insert each row costs more Python than the database's own work; here rows are plain tuples handed to
the driver's ``executemany``. Only the columns named in ``convert`` go through their type's bind
processor (timestamps on SQLite, hostile text); every other value must already be what the driver stores.

On SQLite the rows go ``SQLITE_ROWS`` to a statement (``INSERT … VALUES (…), (…), …``) instead: the
driver's ``executemany`` releases and retakes the GIL around every row's step, and while a job compresses,
those hand-overs with the archive writer's threads cost more than the inserts (measured with
``bench/bench_tgz.py``: the catalog written during compression slowed the tar writer).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Table

from .extensions import db

SQLITE_ROWS = 500  # rows per multi-row INSERT (500 x 9 columns; SQLite >= 3.32 allows 32,766 parameters)


def insert_rows(table: Table, columns: Sequence[str], rows: list[tuple], *, convert: Sequence[str] = (),
                conn: Connection | None = None) -> None:
    """Insert ``rows`` (tuples in the order of ``columns``) in the session's current transaction (or ``conn``'s)."""
    if not rows:
        return
    conn = conn if conn is not None else db.session.connection()
    dialect = conn.dialect
    processors = [(columns.index(name), table.c[name].type.bind_processor(dialect)) for name in convert]
    processors = [(index, proc) for index, proc in processors if proc is not None]
    if processors:
        converted = []
        for row in rows:
            row = list(row)
            for index, proc in processors:
                row[index] = proc(row[index])
            converted.append(tuple(row))
        rows = converted
    compiled = table.insert().compile(dialect=dialect, column_keys=list(columns))
    if compiled.positional:
        order = [columns.index(key) for key in compiled.positiontup]
        params = rows if order == sorted(order) else [tuple(row[i] for i in order) for row in rows]
    else:
        params = [dict(zip(columns, row, strict=True)) for row in rows]
    if dialect.name == "sqlite" and compiled.positional:
        _insert_multi_row(conn, str(compiled), params)
    else:
        conn.exec_driver_sql(str(compiled), params)


def _insert_multi_row(conn, single_row_sql: str, params: list[tuple]) -> None:
    """``single_row_sql`` (``INSERT … VALUES (?, …)``) repeated over ``params`` as multi-row statements."""
    head, values, one_row = single_row_sql.rpartition(" VALUES ")
    for start in range(0, len(params), SQLITE_ROWS):
        chunk = params[start : start + SQLITE_ROWS]
        flat = tuple(value for row in chunk for value in row)
        conn.exec_driver_sql(head + values + ",".join([one_row] * len(chunk)), flat)
