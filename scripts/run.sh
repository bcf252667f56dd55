#!/usr/bin/env bash
# make run: the whole stack on loopback, in the foreground, until Ctrl-C.
#
#   tool server  127.0.0.1:$TOOL_PORT   (build/mcp-tool-server)
#   provider     127.0.0.1:$IDP_PORT    (t/idp/dev-idp.mjs, oidc-provider)
#   gateway      127.0.0.1:$PORT        (/usr/sbin/nginx + build/ngx_http_mcp_auth_module.so)
#   downstream   127.0.0.1:$DOWNSTREAM_PORT  (t/downstream_api.mjs: an API the tool
#                                            server calls as the user, through token exchange)
#
# Runtime files (config, keys, logs, state) live in run/ (git-ignored);
# secrets are generated there on first run and kept for the next.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
PORT=8080
TOOL_PORT=${TOOL_PORT:-8808}
TLS_PORT=${TLS_PORT:-8443}
IDP_PORT=${IDP_PORT:-9400}
DOWNSTREAM_PORT=${DOWNSTREAM_PORT:-9500}
RUNDIR=${RUNDIR:-$root/run}
while [ $# -gt 0 ]; do
    case $1 in
        --port) PORT=$2; shift 2 ;;
        --rundir) RUNDIR=$2; shift 2 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

mkdir -p "$RUNDIR/data" "$RUNDIR/tmp"
chmod 711 "$RUNDIR"
umask 077

# --- secrets, made once -------------------------------------------------------
[ -s "$RUNDIR/identity.key" ] || openssl rand -hex 32 > "$RUNDIR/identity.key"
[ -s "$RUNDIR/keys" ] || "$root/scripts/mcp-auth-keygen" > "$RUNDIR/keys"
[ -s "$RUNDIR/idp-client-secret" ] || openssl rand -hex 24 > "$RUNDIR/idp-client-secret"
[ -s "$RUNDIR/admin.key" ] || openssl rand -hex 32 > "$RUNDIR/admin.key"
[ -s "$RUNDIR/exchange-client.secret" ] || openssl rand -hex 24 > "$RUNDIR/exchange-client.secret"
[ -s "$RUNDIR/service-client.secret" ] || openssl rand -hex 24 > "$RUNDIR/service-client.secret"
[ -s "$RUNDIR/enterprise-app.secret" ] || openssl rand -hex 24 > "$RUNDIR/enterprise-app.secret"
[ -s "$RUNDIR/enterprise-app-idp.secret" ] || openssl rand -hex 24 > "$RUNDIR/enterprise-app-idp.secret"
for who in demo viewer outsider; do
    [ -s "$RUNDIR/$who-password" ] || openssl rand -base64 12 | tr -d '/+=\n' > "$RUNDIR/$who-password"
done
demo_password=$(cat "$RUNDIR/demo-password")
viewer_password=$(cat "$RUNDIR/viewer-password")
outsider_password=$(cat "$RUNDIR/outsider-password")
if [ ! -s "$RUNDIR/tls.crt" ]; then
    # a self-signed certificate for the https server (clients must be told
    # to trust run/tls.crt, or use the http server on loopback)
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$RUNDIR/tls.key" -out "$RUNDIR/tls.crt" 2>/dev/null
fi

NGINX_PIDS=("$RUNDIR/nginx.pid")
. "$root/scripts/run-lib.sh"

# --- the OpenID provider ------------------------------------------------------
# It is the enterprise IdP too: the demo enterprise app signs users in as
# mcp-enterprise-app-idp and gets ID-JAGs for this gateway as mcp-enterprise-app.
base="http://127.0.0.1:$PORT"
cat > "$RUNDIR/id-jag-policy.json" <<EOT
[{"audience": "$base", "resource": "$base/mcp", "clients": {"mcp-enterprise-app-idp": "mcp-enterprise-app"},
  "scopes": ["snippets:read", "snippets:write"]}]
EOT
node "$root/t/idp/dev-idp.mjs" --port "$IDP_PORT" \
    --client-id mcp-gateway --client-secret "$(cat "$RUNDIR/idp-client-secret")" \
    --redirect-uri "http://127.0.0.1:$PORT/oauth-callback" \
    --redirect-uri "https://127.0.0.1:$TLS_PORT/oauth-callback" \
    --user demo --password "$demo_password" \
    --viewer-password "$viewer_password" --outsider-password "$outsider_password" \
    --extra-client "mcp-enterprise-app-idp:$(cat "$RUNDIR/enterprise-app-idp.secret")" \
    --id-jag-policy "$RUNDIR/id-jag-policy.json" \
    --keys-file "$RUNDIR/idp-keys.json" > "$RUNDIR/idp.log" 2>&1 &
pids+=($!)

# --- a downstream API (whoami_downstream calls it with an exchanged token) --------
node "$root/t/downstream_api.mjs" --port "$DOWNSTREAM_PORT" --issuer "http://127.0.0.1:$IDP_PORT" \
    --jwks-uri "http://127.0.0.1:$IDP_PORT/jwks" --audience downstream-api \
    --require-scope downstream:read > "$RUNDIR/downstream-api.log" 2>&1 &
pids+=($!)

# --- the gateway's configuration ---------------------------------------------------
conf=$(/usr/bin/python3 "$root/scripts/render-config.py" --module "$root/build/ngx_http_mcp_auth_module.so" \
    --rundir "$RUNDIR" --port "$PORT" --tool-port "$TOOL_PORT" --tls-port "$TLS_PORT" \
    --idp "http://127.0.0.1:$IDP_PORT")
/usr/sbin/nginx -p "$RUNDIR" -c "$conf" -t -q
# the per-tool rules (scopes, claims) are written once, in nginx's configuration; the
# tool server enforces the same ones
scope_args=$(/usr/bin/python3 "$root/scripts/render-config.py" --tool-scope-args "$conf")
tool_scopes=()
[ -z "$scope_args" ] || mapfile -t tool_scopes <<< "$scope_args"

# --- the tool server ------------------------------------------------------------
"$root/build/mcp-tool-server" --listen "127.0.0.1:$TOOL_PORT" --data-dir "$RUNDIR/data" \
    --identity-key "$RUNDIR/identity.key" "${tool_scopes[@]}" \
    --exchange-token-url "http://127.0.0.1:$PORT/token" --exchange-client-id mcp-tool-server \
    --exchange-client-secret-file "$RUNDIR/exchange-client.secret" \
    --whoami-downstream-url "http://127.0.0.1:$DOWNSTREAM_PORT/whoami" \
    --whoami-downstream-audience downstream-api --whoami-downstream-scope downstream:read \
    > "$RUNDIR/tool-server.log" 2>&1 &
pids+=($!)

wait_port "$IDP_PORT"
wait_port "$TOOL_PORT"
wait_port "$DOWNSTREAM_PORT"

# --- the gateway ---------------------------------------------------------------
/usr/sbin/nginx -p "$RUNDIR" -c "$conf" -g 'daemon off;' >> "$RUNDIR/nginx.log" 2>&1 &
pids+=($!)
wait_port "$PORT"

cat <<EOT

  ngx_mcp_auth is running (Ctrl-C stops everything)

  MCP, Streamable HTTP   $base/mcp
  MCP, HTTP+SSE          $base/mcp/sse
  Discovery              $base/.well-known/oauth-authorization-server
  The same over https    https://127.0.0.1:$TLS_PORT/mcp   (self-signed: $RUNDIR/tls.crt)
  Identity provider      http://127.0.0.1:$IDP_PORT   (demo login: demo / $demo_password   group editors: every tool)
                         (viewer login: viewer / $viewer_password   no group: no save_snippet)
                         (outsider login: outsider / $outsider_password   another tenant: refused)
  Without a browser      service client: mcp-service / $(cat "$RUNDIR/service-client.secret")
                         (grant_type=client_credentials at $base/token, scope snippets:read)
  Enterprise app         mcp-enterprise-app / $(cat "$RUNDIR/enterprise-app.secret")
                         (an ID-JAG from the provider, which knows the app as mcp-enterprise-app-idp /
                          $(cat "$RUNDIR/enterprise-app-idp.secret"); the whole flow with the official SDK:
                          node t/clients/enterprise_client.mjs --gateway $base --idp http://127.0.0.1:$IDP_PORT \\
                            --idp-client-id mcp-enterprise-app-idp --idp-client-secret-file $RUNDIR/enterprise-app-idp.secret \\
                            --login demo --password-file $RUNDIR/demo-password --redirect-uri $base/oauth-callback \\
                            --client-id mcp-enterprise-app --client-secret-file $RUNDIR/enterprise-app.secret)

  Connect the MCP Inspector (in this folder, another terminal):
    npx mcp-inspector --web --transport http --server-url $base/mcp
    (or --transport sse --server-url $base/mcp/sse)
    -> flip Connect, Allow on the consent page, log in as demo,
       then Tools -> hello_mcp -> Execute Tool.

  Calling an API as the user: the tool whoami_downstream (token exchange at $base/token
                         for downstream-api, an API on 127.0.0.1:$DOWNSTREAM_PORT)
  Your connected apps    $base/account
  Admin API (loopback)   scripts/mcp-auth-admin --url $base/_mcp_auth/admin --key-file $RUNDIR/admin.key \\
                           sessions --subject user-demo
  Metrics (Prometheus)   $base/_mcp_auth/metrics   and   http://127.0.0.1:$TOOL_PORT/metrics
  Audit log              $RUNDIR/audit.log   (written at most a second late)
  Logs and state: $RUNDIR
EOT

# exit (and stop the rest) as soon as any of them stops
wait -n "${pids[@]}" || true
echo "run.sh: a process stopped; see $RUNDIR/*.log" >&2
