#!/usr/bin/env bash
# Container entrypoint for StageBackup.
#
#   all (default)  upgrade the DB schema, then run web + worker + scheduler under honcho
#   web [ARGS]     upgrade the DB schema, then run gunicorn on :5555
#                  (extra ARGS are passed to gunicorn)
#   worker [ARGS]  run the job worker ("flask --app stagebackup worker run ARGS")
#   scheduler      enqueue scheduled runs ("flask --app stagebackup scheduler run"; start one or more:
#                  a database lease lets one enqueue)
#   anything else  exec'd as given (e.g. "bash", "flask --app stagebackup ...")
set -e

upgrade_schema() {
    flask --app stagebackup db upgrade
    flask --app stagebackup users needs-admin
}

case "${1:-all}" in
    web)
        cd /app
        upgrade_schema
        # X-Forwarded-* is trusted only through STAGEBACKUP_PROXY_COUNT (the app's ProxyFix).
        exec gunicorn --bind 0.0.0.0:5555 --workers 2 --threads 4 wsgi:app "${@:2}"
        ;;
    worker)
        cd /app
        exec flask --app stagebackup worker run "${@:2}"
        ;;
    scheduler)
        cd /app
        exec flask --app stagebackup scheduler run "${@:2}"
        ;;
    all)
        cd /app
        upgrade_schema
        # -d /app: run the processes from /app (wsgi.py, migrations/).
        exec honcho start -f /app/docker/Procfile -d /app
        ;;
    *)
        exec "$@"
        ;;
esac
