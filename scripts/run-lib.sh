# Shared by run.sh and run-cluster.sh (sourced): start processes in the
# background, wait for their ports, and stop them all on Ctrl-C or exit.
# The caller sets RUNDIR, and NGINX_PIDS to the nginx pid files to QUIT;
# it may add to TERM_PIDFILES pid files of redis-server processes that are
# not its children (started again by hand) to TERM.

pids=()
TERM_PIDFILES=()
stop_all() {
    trap - INT TERM EXIT
    echo
    echo "stopping..."
    for f in "${NGINX_PIDS[@]}"; do
        if [ -f "$f" ]; then kill -QUIT "$(cat "$f")" 2>/dev/null || true; fi
    done
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for f in "${TERM_PIDFILES[@]}"; do
        # a stale file (the server was killed) may name a pid used since
        pid=$(cat "$f" 2>/dev/null) || continue
        if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = redis-server ]; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    wait 2>/dev/null || true
    echo "stopped."
}
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$(basename "$0"): nothing listening on port $1 (see $RUNDIR/*.log)" >&2
    exit 1
}
