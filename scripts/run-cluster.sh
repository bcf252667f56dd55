#!/usr/bin/env bash
# make run-cluster: the two-node variant on loopback, until Ctrl-C.
#
#   redis        127.0.0.1:$REDIS_PORT  (appendonly, fsync every write)
#   tool servers 127.0.0.1:8808, :8809  (--store redis: snippets shared)
#   provider     127.0.0.1:$IDP_PORT
#   edge A       127.0.0.1:8080         (the public URL: what a load balancer would be)
#   edge B       127.0.0.1:8081         (same issuer, same keys, same Redis)
#
# Both edges render nginx-cluster.conf.example.  Runtime files live in
# run-cluster/ (git-ignored); secrets are made on first run and kept.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
PORT_A=8080
PORT_B=8081
TOOL_A=8808
TOOL_B=8809
REDIS_PORT=${REDIS_PORT:-6390}
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
/usr/bin/redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$RUNDIR/redis" \
    --appendonly yes --appendfsync always --save '' > "$RUNDIR/redis.log" 2>&1 &
pids+=($!)
wait_port "$REDIS_PORT"

# --- the provider ------------------------------------------------------------------
node "$root/t/idp/dev-idp.mjs" --port "$IDP_PORT" \
    --client-id mcp-gateway --client-secret "$(cat "$RUNDIR/idp-client-secret")" \
    --redirect-uri "http://127.0.0.1:$PORT_A/oauth-callback" \
    --user demo --password "$demo_password" \
    --keys-file "$RUNDIR/idp-keys.json" > "$RUNDIR/idp.log" 2>&1 &
pids+=($!)

# --- the two edges' configurations ------------------------------------------------------
declare -A confs
for n in "a $PORT_A" "b $PORT_B"; do
    set -- $n
    confs[$1]=$(/usr/bin/python3 "$root/scripts/render-config.py" \
        --example "$root/nginx-cluster.conf.example" \
        --module "$root/build/ngx_http_mcp_auth_module.so" \
        --rundir "$RUNDIR/$1" --port "$2" --tool-port "$TOOL_A" \
        --idp "http://127.0.0.1:$IDP_PORT" \
        --replace "127.0.0.1:6379=127.0.0.1:$REDIS_PORT" \
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
        --store redis --redis-host 127.0.0.1 --redis-port "$REDIS_PORT" \
        > "$RUNDIR/tool-server-$1.log" 2>&1 &
    pids+=($!)
done

wait_port "$IDP_PORT"
wait_port "$TOOL_A"
wait_port "$TOOL_B"

# --- two edges ------------------------------------------------------------------------
for node in a b; do
    /usr/sbin/nginx -p "$RUNDIR/$node" -c "${confs[$node]}" -g 'daemon off;' >> "$RUNDIR/$node/nginx.log" 2>&1 &
    pids+=($!)
done
wait_port "$PORT_A"
wait_port "$PORT_B"

cat <<EOT

  ngx_mcp_auth, two edges on one Redis (Ctrl-C stops everything)

  Edge A (public URL)   http://127.0.0.1:$PORT_A/mcp     (and /mcp/sse)
  Edge B                http://127.0.0.1:$PORT_B/mcp     (a token from A works here)
  Redis                 127.0.0.1:$REDIS_PORT            (redis-cli -p $REDIS_PORT keys 'mcp_auth:*')
  Tool servers          127.0.0.1:$TOOL_A, 127.0.0.1:$TOOL_B (snippets in Redis)
  Identity provider     http://127.0.0.1:$IDP_PORT   (demo login: demo / $demo_password)
  Without a browser     service client: mcp-service / $(cat "$RUNDIR/service-client.secret")

  Try: log in through A with the Inspector
    npx mcp-inspector --web --transport http --server-url http://127.0.0.1:$PORT_A/mcp
  then point it at http://127.0.0.1:$PORT_B/mcp: the same login keeps working.

  Logs and state: $RUNDIR
EOT

wait -n "${pids[@]}" || true
echo "run-cluster.sh: a process stopped; see $RUNDIR/*.log" >&2
