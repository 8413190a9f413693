"""StageBackup: a self-hosted backup server (archives, sync mirrors, LTO tape)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from .config import ensure_data_dir, load_config, load_or_create_secret
from .dbtypes import READ_ONLY_OPTION, configure_engine
from .extensions import db, migrate

# templates/, static/ and migrations/ live at the top of the checkout (the design's layout).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _read_only_for_safe_methods() -> None:
    """GET/HEAD pages only read: on SQLite their transaction must not take the write lock."""
    from flask import request

    if request.method in ("GET", "HEAD") and request.endpoint != "static" and not db.session().in_transaction():
        db.session.connection(execution_options={READ_ONLY_OPTION: True})


def create_app(test_config: dict | None = None) -> Flask:
    config = load_config(test_config)
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.update(config)
    ensure_data_dir(app.config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = load_or_create_secret(Path(app.config["DATA_DIR"]) / "secret_key")
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True})

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    with app.app_context():
        configure_engine(db.engine, int(app.config["SQLITE_BUSY_TIMEOUT_MS"]))

    from . import models  # noqa: F401  (tables must be known to Alembic)
    from .backup import bp as backup_bp
    from .cli import register_cli

    app.register_blueprint(backup_bp)
    register_cli(app)
    app.before_request(_read_only_for_safe_methods)

    if app.config["SCHEMA_AUTO_UPGRADE"]:
        from .schema import upgrade_to_head

        upgrade_to_head(app)
    return app
