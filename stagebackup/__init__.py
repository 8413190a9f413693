"""StageBackup: a self-hosted backup server (archives, sync mirrors, LTO tape)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from . import catalogue
from .atrest import restrict_umask, tighten
from .config import ensure_data_dir, load_config, load_or_create_secret
from .dbtypes import begin_read_only, configure_engine, engine_options
from .extensions import babel, csrf, db, limiter, login_manager, migrate
from .keys import ensure_master_key

# templates/, static/ and migrations/ live at the top of the checkout (the design's layout).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


# Static files need no database; /healthz opens it itself, to answer 503 rather than fail when it is down.
NO_DATABASE_BEFORE_VIEW = ("static", "auth.healthz")


def _read_only_for_safe_methods() -> None:
    """GET/HEAD pages only read: on SQLite their transaction must not take the write lock."""
    from flask import request

    if request.method in ("GET", "HEAD") and request.endpoint not in NO_DATABASE_BEFORE_VIEW:
        begin_read_only(db.session())


def select_locale() -> str:
    """The browser's choice (cookie ``lang``, set by the language switch), else Chinese as in the seeds."""
    from flask import current_app, request

    choice = request.cookies.get("lang", "")
    return choice if choice in current_app.config["LANGUAGES"] else current_app.config["BABEL_DEFAULT_LOCALE"]


def _tighten_install(app: Flask) -> None:
    """An install made before files were private: group and other lose their access, said once in the log."""
    changed = tighten(app.config)
    if changed:
        app.logger.warning("tightened permissions of %d file(s) and folder(s) in StageBackup's data (group and "
                           "other access removed), e.g. %s", len(changed), changed[0])


def create_app(test_config: dict | None = None) -> Flask:
    restrict_umask()  # before the first file: the database, the cache and the keys are for this user only
    config = load_config(test_config)
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.update(config)
    try:
        ensure_data_dir(app.config)
        _tighten_install(app)
        if not app.config.get("SECRET_KEY"):
            app.config["SECRET_KEY"] = load_or_create_secret(Path(app.config["DATA_DIR"]) / "secret_key")
        ensure_master_key(Path(app.config["DATA_DIR"]))
    except OSError as exc:
        raise SystemExit(f"cannot use data directory {app.config['DATA_DIR']}: {exc.strerror}") from exc
    try:
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options(app.config["SQLALCHEMY_DATABASE_URI"]))
        db.init_app(app)
    except ArgumentError as exc:  # unparsable URL or unknown database kind
        raise SystemExit(f"invalid STAGEBACKUP_DATABASE_URL: {exc}") from exc
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)  # every form and every htmx POST carries the token
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "zh_CN")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(PROJECT_ROOT / "translations"))
    babel.init_app(app, locale_selector=select_locale)
    catalogue.install(app)
    login_manager.init_app(app)  # who is signed in; stagebackup/auth/gate.py decides what they may reach
    limiter.init_app(app)  # throttles the sign-in form only
    with app.app_context():
        configure_engine(db.engine, int(app.config["SQLITE_BUSY_TIMEOUT_MS"]))

    from . import httpguard, models, tape_models  # noqa: F401  (tables must be known to Alembic)
    from .auditlog import bp as audit_bp
    from .auth import bp as auth_bp
    from .backup import bp as backup_bp
    from .cli import register_cli
    from .explorer import bp as explorer_bp
    from .restore import bp as restore_bp
    from .settings_web import bp as settings_bp
    from .tapes_web import bp as tapes_bp

    httpguard.init_app(app)  # before the blueprints: their <int:…> routes use its converter
    # Before the sign-in gate (auth_bp) loads the user: a GET's first statement must already be read-only.
    app.before_request(_read_only_for_safe_methods)
    app.register_blueprint(auth_bp)
    app.register_blueprint(backup_bp)
    app.register_blueprint(explorer_bp)
    app.register_blueprint(restore_bp)
    app.register_blueprint(audit_bp)
    app.register_blueprint(tapes_bp)
    app.register_blueprint(settings_bp)
    register_cli(app)

    if app.config["SCHEMA_AUTO_UPGRADE"]:
        from .schema import upgrade_to_head

        try:
            upgrade_to_head(app)
        except OperationalError as exc:
            where = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).render_as_string(hide_password=True)
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise SystemExit(f"cannot open the database {where}: {reason}") from exc
    return app
