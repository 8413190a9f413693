"""Many-row inserts without SQLAlchemy's per-row work, for the two tables a job fills by the thousand.

A backup of 50,000 files writes 50,000 ``[PACK]`` log lines and 50,000 catalog rows. Through the ORM's
bulk insert each row costs more Python than the database's own work; here rows are plain tuples handed to
the driver's ``executemany``. Only the columns named in ``convert`` go through their type's bind
processor (timestamps on SQLite, hostile text); every other value must already be what the driver stores.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table

from .extensions import db


def insert_rows(table: Table, columns: Sequence[str], rows: list[tuple], *, convert: Sequence[str] = ()) -> None:
    """Insert ``rows`` (tuples in the order of ``columns``) in the session's current transaction."""
    if not rows:
        return
    conn = db.session.connection()
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
    conn.exec_driver_sql(str(compiled), params)
