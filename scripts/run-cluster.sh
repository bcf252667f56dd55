#!/usr/bin/env bash
# make run-cluster: the two-node variant on loopback, until Ctrl-C.
# make run-cluster SENTINEL=1 (run-cluster.sh --sentinel): the same on a
# Redis primary, a replica and three Sentinels.
#
#   redis        127.0.0.1:$REDIS_PORT  (appendonly, fsync every write)
#                with --sentinel: the primary at first; a replica on
#                127.0.0.1:$REPLICA_PORT and Sentinels on $SENTINEL_PORTS
#                (master name "mcp", down after 2 s); edges and tool
#                servers find the primary through the Sentinels, and every
#                change waits for the replica to have it (wait_replicas=1,
#                --redis-wait-replicas 1)
#   tool servers 127.0.0.1:8808, :8809  (--store redis: snippets shared)
#   provider     127.0.0.1:$IDP_PORT
#   edge A       127.0.0.1:8080         (the public URL: what a load balancer would be)
#   edge B       127.0.0.1:8081         (same issuer, same keys, same Redis)
#
# Both edges render nginx-cluster.conf.example.  Runtime files live in
# run-cluster/ (git-ignored); secrets are made on first run and kept.
set -euo pipefail

SENTINEL=0
case "${1:-}" in
    --sentinel) SENTINEL=1 ;;
    "") ;;
    *) echo "usage: $0 [--sentinel]" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
PORT_A=8080
PORT_B=8081
TOOL_A=8808
TOOL_B=8809
REDIS_PORT=${REDIS_PORT:-6390}
REPLICA_PORT=${REPLICA_PORT:-6391}
SENTINEL_PORTS=${SENTINEL_PORTS:-26390 26391 26392}
IDP_PORT=${IDP_PORT:-9400}
RUNDIR=${RUNDIR:-$root/run-cluster}

mkdir -p "$RUNDIR/redis" "$RUNDIR/a" "$RUNDIR/b" "$RUNDIR/data-a" "$RUNDIR/data-b"
chmod 711 "$RUNDIR" "$RUNDIR/a" "$RUNDIR/b"
umask 077

[ -s "$RUNDIR/identity.key" ] || openssl rand -hex 32 > "$RUNDIR/identity.key"
[ -s "$RUNDIR/keys" ] || "$root/scripts/mcp-auth-keygen" > "$RUNDIR/keys"
[ -s "$RUNDIR/idp-client-secret" ] || openssl rand -hex 24 > "$RUNDIR/idp-client-secret"
[ -s "$RUNDIR/admin.key" ] || openssl rand -hex 32 > "$RUNDIR/admin.key"
[ -s "$RUNDIR/exchange-client.secret" ] || openssl rand -hex 24 > "$RUNDIR/exchange-client.secret"
[ -s "$RUNDIR/service-client.secret" ] || openssl rand -hex 24 > "$RUNDIR/service-client.secret"
[ -s "$RUNDIR/demo-password" ] || openssl rand -base64 12 | tr -d '/+=\n' > "$RUNDIR/demo-password"
demo_password=$(cat "$RUNDIR/demo-password")
# every edge reads the same secrets
for node in a b; do
    for f in keys identity.key idp-client-secret admin.key exchange-client.secret service-client.secret; do cp "$RUNDIR/$f" "$RUNDIR/$node/$f"; done
done

NGINX_PIDS=("$RUNDIR/a/nginx.pid" "$RUNDIR/b/nginx.pid")
. "$root/scripts/run-lib.sh"

# --- Redis ----------------------------------------------------------------------
watch=()    # the processes whose end ends the run
if [ "$SENTINEL" = 0 ]; then
    /usr/bin/redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$RUNDIR/redis" \
        --appendonly yes --appendfsync always --save '' > "$RUNDIR/redis.log" 2>&1 &
    pids+=($!)
    watch+=($!)
    wait_port "$REDIS_PORT"
    redis_address="127.0.0.1:$REDIS_PORT"
    redis_args=(--redis-host 127.0.0.1 --redis-port "$REDIS_PORT")
else
    # Every run starts $REDIS_PORT as the primary and $REPLICA_PORT as its
    # replica (which copies the primary's data), whichever was the primary
    # when the last run ended.  The servers read configuration files (the
    # Sentinels rewrite them as roles change) and write pid files, so that a
    # server killed to see a failover can be started again by hand (the
    # banner says how) and is still stopped with the rest on Ctrl-C.  The
    # run goes on when a Redis server ends: that is the point.
    sdir=$RUNDIR/sentinel
    read -r -a sentinel_ports <<< "$SENTINEL_PORTS"
    for port in "$REDIS_PORT" "$REPLICA_PORT"; do
        mkdir -p "$sdir/redis-$port"
        {
            echo "bind 127.0.0.1"
            echo "port $port"
            echo "dir $sdir/redis-$port"
            echo "pidfile $sdir/redis-$port.pid"
            echo "logfile $sdir/redis-$port.log"
            echo "appendonly yes"
            echo "appendfsync always"
            echo 'save ""'
            if [ "$port" = "$REPLICA_PORT" ]; then echo "replicaof 127.0.0.1 $REDIS_PORT"; fi
        } > "$sdir/redis-$port.conf"
        /usr/bin/redis-server "$sdir/redis-$port.conf" &
        pids+=($!)
        TERM_PIDFILES+=("$sdir/redis-$port.pid")
    done
    wait_port "$REDIS_PORT"
    wait_port "$REPLICA_PORT"
    redis_address="master=mcp wait_replicas=1"
    redis_args=(--redis-master mcp --redis-wait-replicas 1)
    for port in "${sentinel_ports[@]}"; do
        mkdir -p "$sdir/sentinel-$port"
        # a fresh configuration every run: what the Sentinels learnt (the
        # primary of the last run, its replicas, each other) is forgotten
        cat > "$sdir/sentinel-$port/sentinel.conf" <<EOT
bind 127.0.0.1
port $port
dir $sdir/sentinel-$port
sentinel resolve-hostnames no
sentinel monitor mcp 127.0.0.1 $REDIS_PORT 2
sentinel down-after-milliseconds mcp 2000
sentinel failover-timeout mcp 3000
EOT
        /usr/bin/redis-sentinel "$sdir/sentinel-$port/sentinel.conf" > "$sdir/sentinel-$port.log" 2>&1 &
        pids+=($!)
        watch+=($!)
        redis_address="sentinel=127.0.0.1:$port $redis_address"
        redis_args+=(--redis-sentinel "127.0.0.1:$port")
    done
    for port in "${sentinel_ports[@]}"; do wait_port "$port"; done
fi

# --- the provider ------------------------------------------------------------------
node "$root/t/idp/dev-idp.mjs" --port "$IDP_PORT" \
    --client-id mcp-gateway --client-secret "$(cat "$RUNDIR/idp-client-secret")" \
    --redirect-uri "http://127.0.0.1:$PORT_A/oauth-callback" \
    --user demo --password "$demo_password" \
    --keys-file "$RUNDIR/idp-keys.json" > "$RUNDIR/idp.log" 2>&1 &
pids+=($!)
watch+=($!)

# --- the two edges' configurations ------------------------------------------------------
declare -A confs
for n in "a $PORT_A" "b $PORT_B"; do
    set -- $n
    confs[$1]=$(/usr/bin/python3 "$root/scripts/render-config.py" \
        --example "$root/nginx-cluster.conf.example" \
        --module "$root/build/ngx_http_mcp_auth_module.so" \
        --rundir "$RUNDIR/$1" --port "$2" --tool-port "$TOOL_A" \
        --idp "http://127.0.0.1:$IDP_PORT" \
        --replace "127.0.0.1:6379=$redis_address" \
        --replace "server 127.0.0.1:8809;=server 127.0.0.1:$TOOL_B;" \
        --replace "http://127.0.0.1:$2;=http://127.0.0.1:$PORT_A;" \
        --replace "http://127.0.0.1:$2/mcp;=http://127.0.0.1:$PORT_A/mcp;")
    /usr/sbin/nginx -p "$RUNDIR/$1" -c "${confs[$1]}" -t -q
done
# the per-tool scope rules, written once in the edges' configuration (the
# same on both), enforced by the tool servers too
scope_args=$(/usr/bin/python3 "$root/scripts/render-config.py" --tool-scope-args "${confs[a]}")
[ "$scope_args" = "$(/usr/bin/python3 "$root/scripts/render-config.py" --tool-scope-args "${confs[b]}")" ] ||
    { echo "run-cluster.sh: the two edges have different mcp_auth_tool_scope rules" >&2; exit 1; }
tool_scopes=()
[ -z "$scope_args" ] || mapfile -t tool_scopes <<< "$scope_args"

# --- two tool servers on one snippet store -------------------------------------------
for t in "a $TOOL_A" "b $TOOL_B"; do
    set -- $t
    "$root/build/mcp-tool-server" --listen "127.0.0.1:$2" --data-dir "$RUNDIR/data-$1" \
        --identity-key "$RUNDIR/identity.key" "${tool_scopes[@]}" \
        --store redis "${redis_args[@]}" \
        > "$RUNDIR/tool-server-$1.log" 2>&1 &
    pids+=($!)
    watch+=($!)
done

wait_port "$IDP_PORT"
wait_port "$TOOL_A"
wait_port "$TOOL_B"

# --- two edges ------------------------------------------------------------------------
for node in a b; do
    /usr/sbin/nginx -p "$RUNDIR/$node" -c "${confs[$node]}" -g 'daemon off;' >> "$RUNDIR/$node/nginx.log" 2>&1 &
    pids+=($!)
    watch+=($!)
done
wait_port "$PORT_A"
wait_port "$PORT_B"

failover_lines=""
if [ "$SENTINEL" = 0 ]; then
    title="two edges on one Redis"
    redis_lines="  Redis                 127.0.0.1:$REDIS_PORT            (redis-cli -p $REDIS_PORT keys 'mcp_auth:*')"
else
    title="two edges on Redis with Sentinel failover"
    redis_lines="  Redis                 primary 127.0.0.1:$REDIS_PORT, replica 127.0.0.1:$REPLICA_PORT (for now)
  Sentinels             ${sentinel_ports[*]/#/127.0.0.1:}, master name mcp
                        (redis-cli -p ${sentinel_ports[0]} sentinel get-master-addr-by-name mcp)"
    failover_lines="

  Try a failover: kill the primary
    kill -9 \$(cat $sdir/redis-$REDIS_PORT.pid)
  The Sentinels promote the replica within some 4 s; meanwhile requests
  that need Redis get 503 with Retry-After, and service resumes by itself.
  The new primary has no replica then: edges and tool servers confirm
  changes with as many replicas as are connected (none: the primary's disk
  alone) until the old primary is back.  Start it again; the Sentinels
  make it a replica of the new primary:
    /usr/bin/redis-server $sdir/redis-$REDIS_PORT.conf --daemonize yes
  (Ctrl-C stops it too)."
fi
cat <<EOT

  ngx_mcp_auth, $title (Ctrl-C stops everything)

  Edge A (public URL)   http://127.0.0.1:$PORT_A/mcp     (and /mcp/sse)
  Edge B                http://127.0.0.1:$PORT_B/mcp     (a token from A works here)
$redis_lines
  Tool servers          127.0.0.1:$TOOL_A, 127.0.0.1:$TOOL_B (snippets in Redis)
  Identity provider     http://127.0.0.1:$IDP_PORT   (demo login: demo / $demo_password)
  Without a browser     service client: mcp-service / $(cat "$RUNDIR/service-client.secret")

  Try: log in through A with the Inspector
    npx mcp-inspector --web --transport http --server-url http://127.0.0.1:$PORT_A/mcp
  then point it at http://127.0.0.1:$PORT_B/mcp: the same login keeps working.$failover_lines

  Logs and state: $RUNDIR
EOT

wait -n "${watch[@]}" || true
echo "run-cluster.sh: a process stopped; see $RUNDIR/*.log" >&2
