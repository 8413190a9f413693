"""Moving the catalog to another database (``flask db copy --to URL``): SQLite to PostgreSQL or MariaDB.

The target is brought to this version's schema by the same Alembic migrations every process runs at start,
then must be empty: a copy never merges into rows that are already there. Every table is copied in
foreign-key order, rows in primary-key order (a job refers to older jobs only), through the column types, so
file names keep their exact bytes. The target takes all rows in one transaction: a failed copy leaves it
empty. Afterwards new rows continue after the copied ids: PostgreSQL's sequences are moved past them
(MariaDB's AUTO_INCREMENT and SQLite's rowid follow the largest id by themselves).

Stop the worker and the web server first: rows written during the copy may be missed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import Integer, Table, func, inspect, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError

from .dbtypes import READ_ONLY_OPTION
from .errors import N_, ConflictError, ValidationError
from .extensions import db
from .schema import upgrade_to_head

BATCH_ROWS = 5000


@dataclass
class CopyOutcome:
    target: str  # the URL without its password
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows copied


def masked(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _rows_in_use(conn: Connection) -> tuple[str, int] | None:
    """The first of StageBackup's tables in the target that holds rows."""
    present = set(inspect(conn).get_table_names())
    for table in db.metadata.sorted_tables:
        if table.name in present:
            count = conn.execute(select(func.count()).select_from(table)).scalar_one()
            if count:
                return table.name, count
    return None


def _refuse_unless_empty(engine: Engine, url: str) -> None:
    with engine.connect() as conn:
        found = _rows_in_use(conn)
    if found:
        raise ConflictError(
            N_("the target database %(url)s is not empty (table %(table)s holds %(rows)s rows): "
               "db copy only fills an empty database"),
            url=masked(url), table=found[0], rows=found[1],
        )


def _target_engine(url: str) -> Engine:
    """The target's engine, its schema upgraded to head by a second app bound to it (same data dir)."""
    from . import create_app

    target_app = create_app({"DATABASE_URL": url, "DATA_DIR": current_app.config["DATA_DIR"],
                             "SCHEMA_AUTO_UPGRADE": False})
    with target_app.app_context():
        engine = db.engine
        try:
            _refuse_unless_empty(engine, url)  # before the upgrade: a database in use stays untouched
            upgrade_to_head(target_app)
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise ValidationError(N_("cannot open the database %(url)s: %(reason)s"), url=masked(url),
                                  reason=reason) from exc
        return engine


def _copy_table(source: Connection, target: Connection, table: Table) -> int:
    rows = source.execution_options(yield_per=BATCH_ROWS).execute(
        select(table).order_by(*table.primary_key.columns)
    )
    copied = 0
    for batch in rows.mappings().partitions():
        target.execute(table.insert(), [dict(row) for row in batch])
        copied += len(batch)
    return copied


def _continue_sequences(target: Connection) -> None:
    """PostgreSQL: each serial/identity primary key's sequence continues after the largest copied id."""
    if target.dialect.name != "postgresql":
        return
    for table in db.metadata.sorted_tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, Integer) or pk[0].autoincrement is False:
            continue
        target.execute(
            text("SELECT setval(pg_get_serial_sequence(:table, :column), max_id) FROM "
                 f'(SELECT max("{pk[0].name}") AS max_id FROM "{table.name}") AS m WHERE max_id IS NOT NULL'),
            {"table": table.name, "column": pk[0].name},
        )


def copy_database(url: str) -> CopyOutcome:
    """Copy every row of this app's database into the empty database at ``url``."""
    target_engine = _target_engine(url)
    outcome = CopyOutcome(masked(url))
    try:
        with db.engine.connect().execution_options(**{READ_ONLY_OPTION: True}) as source, \
                target_engine.begin() as target:
            source.begin()  # one snapshot of the source
            for table in db.metadata.sorted_tables:
                outcome.rows[table.name] = _copy_table(source, target, table)
            _continue_sequences(target)
    finally:
        target_engine.dispose()
    return outcome
