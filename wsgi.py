"""WSGI entry point: ``gunicorn wsgi:app``."""

from stagebackup import create_app

app = create_app()
