#!/usr/bin/env bash
# Run a command against a throwaway MariaDB server.
#
# Usage: .ci/with-mariadb.sh COMMAND [ARGS...]
#
# Creates a private MariaDB data directory (mariadb-install-db) in a temporary
# directory, starts mariadbd on a free 127.0.0.1 port with its own socket,
# creates the database stagebackup_test, exports
#   STAGEBACKUP_TEST_MYSQL_URL=mysql+pymysql://root@127.0.0.1:PORT/stagebackup_test?charset=utf8mb4
# runs COMMAND, then always stops the server and deletes its directory.
# Exits with COMMAND's exit status.
#
# If STAGEBACKUP_TEST_MYSQL_URL is already set, COMMAND is simply exec'd
# against that server and nothing is started.
#
# Server binaries (mariadbd, mariadb-install-db, mariadb-admin, mariadb) come
# from Debian's mariadb-server package, looked up on $PATH and in /usr/sbin.
# The server's character set is utf8mb4 with Debian's default collation
# (utf8mb4_general_ci, case-insensitive): StageBackup's own tables must not
# depend on the server's defaults, and this keeps the tests honest about that.
# Exit status 3: no MariaDB server binaries found.
# Exit status 4: the server could not be created or started.
set -euo pipefail

prog=with-mariadb

# shellcheck source=throwaway-server.sh
source "$(dirname "${BASH_SOURCE[0]}")/throwaway-server.sh"

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

if [[ -n "${STAGEBACKUP_TEST_MYSQL_URL:-}" ]]; then
    exec "$@"
fi

# --- locate the server tools -----------------------------------------------
find_tool() {
    local path
    if path=$(PATH="$PATH:/usr/sbin:/usr/bin" command -v "$1"); then
        echo "$path"
        return 0
    fi
    return 1
}

mariadbd=$(find_tool mariadbd) && install_db=$(find_tool mariadb-install-db) \
    && admin=$(find_tool mariadb-admin) && client=$(find_tool mariadb) \
    || die 3 "no MariaDB server binaries (mariadbd, mariadb-install-db, mariadb-admin, mariadb) found; install them, e.g. '.ci/install-debian-deps.sh mariadb-server', or set STAGEBACKUP_TEST_MYSQL_URL to an existing database"

# --- run the server as a non-root user -------------------------------------
user_opt=()
if [[ $(id -u) -eq 0 ]]; then
    id mysql >/dev/null 2>&1 || die 3 "running as root but there is no 'mysql' user to run the server as"
    user_opt=(--user=mysql)
fi


# --- cleanup ---------------------------------------------------------------
dbdir=""
server_pid=""

# shellcheck disable=SC2317  # invoked via trap
cleanup() {
    local rc=$?
    set +e
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        "$admin" --no-defaults --socket="$dbdir/sock" -uroot shutdown >/dev/null 2>&1 || kill "$server_pid"
        for _ in $(seq 300); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$server_pid" 2>/dev/null
    fi
    if [[ -n "$dbdir" && -d "$dbdir" ]]; then
        rm -rf -- "$dbdir"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- create and start the server -------------------------------------------
dbdir=$(mktemp -d "${TMPDIR:-/tmp}/stagebackup-mariadb.XXXXXXXX")
chmod 700 "$dbdir"
mkdir "$dbdir/data"
if [[ ${#user_opt[@]} -gt 0 ]]; then
    chown -R mysql:mysql "$dbdir"
fi

# normal root authentication: root@127.0.0.1 signs in over TCP without a password (the server listens on
# 127.0.0.1 only and lives as long as the command).
if ! install_out=$(cd / && "$install_db" --no-defaults "${user_opt[@]}" --datadir="$dbdir/data" \
        --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve 2>&1); then
    echo "$install_out" >&2
    die 4 "mariadb-install-db failed"
fi

port=$(free_port)
(cd / && exec "$mariadbd" --no-defaults "${user_opt[@]}" --datadir="$dbdir/data" --socket="$dbdir/sock" \
    --pid-file="$dbdir/mariadbd.pid" --log-error="$dbdir/log" --port="$port" --bind-address=127.0.0.1 \
    --skip-name-resolve --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --max-connections=300 --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=0 \
    --innodb-doublewrite=0 --skip-log-bin) </dev/null >/dev/null 2>&1 &
server_pid=$!

ready=0
for _ in $(seq 600); do
    if "$admin" --no-defaults --socket="$dbdir/sock" -uroot --connect-timeout=1 ping >/dev/null 2>&1; then
        ready=1
        break
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [[ $ready -ne 1 ]]; then
    echo "$prog: MariaDB failed to start; server log ($dbdir/log):" >&2
    cat "$dbdir/log" >&2 || true
    die 4 "could not start MariaDB on 127.0.0.1:$port"
fi
"$client" --no-defaults --socket="$dbdir/sock" -uroot -e "CREATE DATABASE stagebackup_test" \
    || die 4 "could not create the database stagebackup_test"
echo "$prog: server on 127.0.0.1:$port" >&2

export STAGEBACKUP_TEST_MYSQL_URL="mysql+pymysql://root@127.0.0.1:$port/stagebackup_test?charset=utf8mb4"

run_command "$@"
