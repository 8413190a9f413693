#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster.
#
# Usage: .ci/with-postgres.sh COMMAND [ARGS...]
#
# Starts a private PostgreSQL cluster in a temporary directory on a free
# 127.0.0.1 port, exports
#   STAGEBACKUP_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
# runs COMMAND, then always stops the cluster and deletes its directory.
# Exits with COMMAND's exit status.
#
# If STAGEBACKUP_TEST_PG_URL is already set, COMMAND is simply exec'd against
# that database and nothing is started.
#
# Server binaries are looked up in $PG_BINDIR if set, else in the newest
# /usr/lib/postgresql/<ver>/bin (Debian/Ubuntu layout), else on $PATH.
# Exit status 3: no PostgreSQL server binaries found.
# Exit status 4: the cluster could not be created or started.
set -euo pipefail

prog=with-postgres

# shellcheck source=throwaway-server.sh
source "$(dirname "${BASH_SOURCE[0]}")/throwaway-server.sh"

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

if [[ -n "${STAGEBACKUP_TEST_PG_URL:-}" ]]; then
    exec "$@"
fi

# --- locate initdb / pg_ctl ------------------------------------------------
find_bindir() {
    if [[ -n "${PG_BINDIR:-}" ]]; then
        [[ -x "$PG_BINDIR/initdb" && -x "$PG_BINDIR/pg_ctl" ]] && { echo "$PG_BINDIR"; return 0; }
        return 1
    fi
    local d
    # newest version first (sort -V handles 9.6 < 10 < 15 < 16)
    while IFS= read -r d; do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
            echo "$d"
            return 0
        fi
    done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -rV)
    local initdb_path
    if initdb_path=$(command -v initdb) && command -v pg_ctl >/dev/null; then
        dirname "$initdb_path"
        return 0
    fi
    return 1
}

if ! bindir=$(find_bindir); then
    die 3 "no PostgreSQL server binaries (initdb, pg_ctl) found in ${PG_BINDIR:-/usr/lib/postgresql/*/bin or \$PATH}; install them, e.g. '.ci/install-debian-deps.sh postgresql', or set STAGEBACKUP_TEST_PG_URL to an existing database"
fi

# --- run server tools as a non-root user -----------------------------------
as_root=0
if [[ $(id -u) -eq 0 ]]; then
    as_root=1
    id postgres >/dev/null 2>&1 || die 3 "running as root but there is no 'postgres' user to run the server as"
    command -v runuser >/dev/null || die 3 "running as root but 'runuser' is not available"
fi

pg() {
    # cd / so that the tools never trip over an unreadable working directory
    # (e.g. /root when running as the postgres user).
    if [[ $as_root -eq 1 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}


# --- cleanup ---------------------------------------------------------------
pgdir=""
started=0

# shellcheck disable=SC2317  # invoked via trap
cleanup() {
    local rc=$?
    set +e
    if [[ $started -eq 1 ]]; then
        if ! pg "$bindir/pg_ctl" -D "$pgdir" -m fast -w stop >/dev/null 2>&1; then
            pg "$bindir/pg_ctl" -D "$pgdir" -m immediate -w stop >/dev/null 2>&1
        fi
    fi
    if [[ -n "$pgdir" && -d "$pgdir" ]]; then
        rm -rf -- "$pgdir"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- create and start the cluster ------------------------------------------
pgdir=$(mktemp -d "${TMPDIR:-/tmp}/stagebackup-pg.XXXXXXXX")
chmod 700 "$pgdir"
if [[ $as_root -eq 1 ]]; then
    chown postgres:postgres "$pgdir"
fi

# --locale=C: always available and compatible with UTF8, so initdb does not
# fail on hosts whose $LANG names a locale that is not installed.
if ! initdb_out=$(pg "$bindir/initdb" -D "$pgdir" -U postgres -A trust --no-sync -E UTF8 --locale=C 2>&1); then
    echo "$initdb_out" >&2
    die 4 "initdb failed"
fi

port=$(free_port)
# -k: put the unix socket in the cluster dir, not /var/run/postgresql
# (which may not exist or may belong to a system cluster).
if ! pg "$bindir/pg_ctl" -D "$pgdir" -w -t 60 -l "$pgdir/log" \
        -o "-k $pgdir -p $port -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
        start >/dev/null; then
    # pg_ctl may have left a postmaster behind (e.g. on timeout); try to stop it.
    started=1
    echo "$prog: PostgreSQL failed to start; server log ($pgdir/log):" >&2
    cat "$pgdir/log" >&2 || true
    die 4 "could not start PostgreSQL on 127.0.0.1:$port"
fi
started=1
echo "$prog: cluster on 127.0.0.1:$port" >&2

export STAGEBACKUP_TEST_PG_URL="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"

run_command "$@"
