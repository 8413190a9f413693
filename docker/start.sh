#!/usr/bin/env bash
# Start script of the StageBackup image (its ENTRYPOINT).
#
#   all (default)    check /data and the database, upgrade the schema, then nginx + gunicorn + worker +
#                    scheduler under supervisord (PID 1)
#   web              the same without the worker and the scheduler (they run on other hosts)
#   worker [ARGS]    the same checks, then only "flask worker run ARGS" (e.g. --drive lto0), in the foreground
#   anything else    exec'd as given ("flask users create admin --role admin", "bash", …)
#
# Nothing starts before the schema is at the latest version; a data folder that is not writable or a
# database that does not answer stops the container with one line saying so (exit 1).
set -euo pipefail
cd /app

DATA=${STAGEBACKUP_DATA_DIR:-/data}

fail() {
    echo "stagebackup: cannot start: $*" >&2
    exit 1
}

check_data_dir() {
    local probe
    mkdir -p "$DATA" 2>/dev/null || true
    probe=$(mktemp -p "$DATA" .write-test.XXXXXX 2>/dev/null) \
        || fail "$DATA is not writable by $(id -un) (uid $(id -u)): mount a volume there, or chown a host folder to uid $(id -u)"
    rm -f "$probe"
}

upgrade_schema() {
    local out
    # The app creates the secret key and the master key when it first starts; the upgrade is that start.
    # Its own one-line reasons (unreachable database, invalid setting) are kept; a traceback is not shown.
    if ! out=$(flask --app stagebackup db upgrade 2>&1); then
        fail "$(grep -v '^[[:space:]]' <<<"$out" | grep -v '^Traceback' | tail -n 1)"
    fi
}

say_where_the_keys_are() {
    local had_secret=$1 had_master=$2
    [[ $had_secret == yes ]] || echo "stagebackup: created the session secret key $DATA/secret_key"
    [[ $had_master == yes ]] || echo "stagebackup: created the master key $DATA/master.key: it decrypts the" \
        "stored archive passwords; keep a copy apart from the backups (flask db backup --with-key-sealed)"
}

prepare() {
    local had_secret=no had_master=no
    check_data_dir
    [[ -e $DATA/secret_key ]] && had_secret=yes
    [[ -e $DATA/master.key ]] && had_master=yes
    upgrade_schema
    say_where_the_keys_are "$had_secret" "$had_master"
    flask --app stagebackup users needs-admin
    # Upgraded once here: the processes below need not race to check it again.
    export STAGEBACKUP_SCHEMA_AUTO_UPGRADE=0
}

mode=${1:-all}
case "$mode" in
    all | web)
        prepare
        [[ $mode == all ]] && run_jobs=true || run_jobs=false
        export STAGEBACKUP_RUN_JOBS=$run_jobs STAGEBACKUP_WORKER_ARGS=${STAGEBACKUP_WORKER_ARGS:-}
        exec supervisord -c /app/docker/supervisord.conf
        ;;
    worker)
        prepare
        exec flask --app stagebackup worker run "${@:2}"
        ;;
    *)
        exec "$@"
        ;;
esac
