# Shared by .ci/with-postgres.sh and .ci/with-mariadb.sh (sourced, not run): error exits, a free TCP port,
# and running the command while the script keeps the server alive. The sourcing script sets $prog.

die() {
    local code=$1
    shift
    echo "$prog: error: $*" >&2
    exit "$code"
}

free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# Run the command in the background and wait for it, so that a SIGTERM/SIGHUP
# sent to the script (CI cancel, timeout(1)) is forwarded to the command
# right away and the server is stopped afterwards (the script's EXIT trap).
# "<&0" keeps our stdin (a non-interactive shell would otherwise give a
# background job /dev/null). SIGINT is not forwarded: Ctrl-C already reaches
# the whole process group. Exits with the command's status.
run_command() {
    "$@" <&0 &
    child=$!
    got_signal=0
    trap 'forward TERM' TERM
    trap 'forward HUP' HUP
    trap 'forward ""' INT
    while :; do
        got_signal=0
        rc=0
        wait "$child" || rc=$?
        # wait returns early when a trapped signal arrives; wait again for the
        # command's real exit status.
        [[ $got_signal -eq 1 ]] || break
    done
    exit "$rc"
}

# shellcheck disable=SC2317  # invoked via trap
forward() {
    got_signal=1
    if [[ -n "$1" ]]; then
        kill -s "$1" "$child" 2>/dev/null || true
    fi
}
