"""The module builds, loads into the packaged nginx and serves discovery."""

import json
import re
from pathlib import Path

import pytest
import requests

from harness import MODULE_SO


def test_the_module_is_a_loadable_nginx_dynamic_module(nginx_factory):
    nx = nginx_factory("syntax")
    result = nx.test_config()
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
    assert MODULE_SO.stat().st_size > 0


def test_authorization_server_metadata_is_served_as_json(gateway):
    r = requests.get(gateway.url + "/.well-known/oauth-authorization-server", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    doc = r.json()
    assert doc["issuer"] == gateway.url
    assert doc["authorization_endpoint"] == gateway.url + "/authorize"
    assert doc["token_endpoint"] == gateway.url + "/token"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["response_types_supported"] == ["code"]
    assert doc["authorization_response_iss_parameter_supported"] is True


def test_openid_configuration_is_the_same_document(gateway):
    a = requests.get(gateway.url + "/.well-known/oauth-authorization-server", timeout=5)
    b = requests.get(gateway.url + "/.well-known/openid-configuration", timeout=5)
    assert b.status_code == 200
    assert json.loads(a.text) == json.loads(b.text)


def test_protected_resource_metadata_names_the_issuer_byte_for_byte(gateway):
    for path in ("/.well-known/oauth-protected-resource",
                 "/.well-known/oauth-protected-resource/mcp"):
        r = requests.get(gateway.url + path, timeout=5)
        assert r.status_code == 200, path
        doc = r.json()
        assert doc["resource"] == gateway.url + "/mcp"
        assert doc["authorization_servers"] == [gateway.url]
        assert doc["bearer_methods_supported"] == ["header"]


def test_metadata_answers_cors_preflight_from_any_origin(gateway):
    r = requests.options(gateway.url + "/.well-known/oauth-authorization-server",
                         headers={"Origin": "http://localhost:6274",
                                  "Access-Control-Request-Method": "GET"}, timeout=5)
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_metadata_refuses_other_methods_with_an_oauth_error(gateway):
    r = requests.post(gateway.url + "/.well-known/oauth-authorization-server", data="x",
                      timeout=5)
    assert r.status_code == 405
    assert r.json()["error"] == "invalid_request"
    assert "GET" in r.headers["Allow"]


def test_a_bad_issuer_is_reported_by_nginx_t(nginx_factory):
    nx = nginx_factory("badissuer",
                       replace=[("mcp_auth_issuer      http://127.0.0.1:",
                                 "mcp_auth_issuer      ftp://127.0.0.1:")])
    result = nx.test_config()
    assert result.returncode != 0
    assert "mcp_auth_issuer" in result.stderr and "https" in result.stderr



def test_rate_limited_registration_gets_a_json_error(nginx_factory):
    import requests as rq
    nx = nginx_factory("ratelimit", replace=[("rate=60r/m", "rate=1r/m"),
                                             ("burst=60 nodelay", "burst=1 nodelay")]).start()
    statuses = []
    for _ in range(4):
        r = rq.post(nx.url + "/register", json={"redirect_uris": ["http://127.0.0.1/cb"]},
                    timeout=5)
        statuses.append(r.status_code)
    assert 429 in statuses
    r = rq.post(nx.url + "/register", json={}, timeout=5)
    assert r.status_code == 429
    assert r.json()["error"] == "temporarily_unavailable"
    assert r.headers["Retry-After"] == "10"


def test_the_example_lets_browsers_log_in_and_stops_a_flood_of_authorize(stack_factory):
    """The example's limit on the steps of a login anyone can take
    (mcp_login: 5 r/s, burst 45, per address), as shipped, not relaxed as
    for the rest of the suite: five logins in a row pass, a script's flood
    of /authorize gets JSON 429s, and the callback is not limited."""
    from mcp_gateway import REDIRECT, Streamable, login, text_of
    from oauth_client import McpOAuthClient

    st = stack_factory("loginlimit", replace=[("rate=5000r/s", "rate=5r/s")])
    users = [login(st) for _ in range(5)]
    assert text_of(Streamable(st.url, users[-1].tokens["access_token"]).initialize()
                   .call("hello_mcp")) == "Hello I am MCPTool!"
    c = McpOAuthClient(st.url, redirect_uri=REDIRECT)
    c.register()
    answers = [requests.get(c.authorize_url(), allow_redirects=False, timeout=5)
               for _ in range(60)]
    statuses = [r.status_code for r in answers]
    assert statuses[0] in (302, 303) and 429 in statuses, statuses
    limited = answers[statuses.index(429)]
    assert limited.json()["error"] == "temporarily_unavailable"
    assert limited.headers["Retry-After"] == "10"
    # a callback is answered by the module (here: an unknown state), never a 429
    r = requests.get(st.url + "/oauth-callback", params={"state": "x", "code": "y"}, timeout=5)
    assert r.status_code != 429


def test_setting_up_never_touches_the_users_own_nginx_or_redis(tmp_path):
    """scripts/deps.sh (run by make test and make run) installs what is
    missing and nothing else: on a machine whose packaged nginx and Redis
    are running (someone's production edge), it must not stop, restart or
    even look for them.  The system's tools are stood in for by stubs that
    record every call; one package is reported missing so that the install
    path runs."""
    import os
    import stat
    import subprocess
    from harness import ROOT
    calls = tmp_path / "calls"
    stubs = tmp_path / "bin"
    stubs.mkdir()

    def stub(name, body="exit 0"):
        p = stubs / name
        p.write_text('#!/bin/sh\necho "%s $*" >> %s\n%s\n' % (name, calls, body))
        p.chmod(p.stat().st_mode | stat.S_IXUSR)

    # every package installed but one; "running" answers for any process
    stub("dpkg-query", 'case "$*" in *fonts-liberation*) exit 1;; esac; echo "install ok installed"')
    stub("apt-get")
    for name in ("pgrep", "pkill", "killall", "kill", "service", "systemctl", "invoke-rc.d",
                 "nginx", "redis-cli", "start-stop-daemon"):
        stub(name)
    env = dict(os.environ, PATH="%s:%s" % (stubs, os.environ["PATH"]))
    r = subprocess.run(["bash", str(ROOT / "scripts" / "deps.sh")], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    recorded = calls.read_text().splitlines()
    assert any(c.startswith("apt-get install") and "fonts-liberation" in c for c in recorded), recorded
    touched = [c for c in recorded if not c.startswith(("dpkg-query", "apt-get"))]
    assert touched == [], touched


# Each mistake is reported by nginx -t on the line that makes it.
@pytest.mark.parametrize("directive, words", [
    ("mcp_auth_access_token_ttl 10x;", "invalid value"),
    ("mcp_auth_access_token_ttl 0;", "must be positive"),
    ("mcp_auth_code_ttl 11m;", "from 1s to 10m"),
    ("mcp_auth_consent_remember yes;", "invalid value"),
    ("mcp_auth_secure_cookies maybe;", "invalid value"),
    ("mcp_auth_provider_client_auth tls_client_auth;", "invalid value"),
    ("mcp_auth_provider_scopes profile email;", "openid"),
    ("mcp_auth_scopes mcp\"x;", "not a valid scope"),
    ("mcp_auth_token_path token;", "must be a path"),
    ("mcp_auth_provider_token_endpoint http://idp.example/token;", "https"),
    ("mcp_auth_resource https://mcp.example/;", "must not end with"),
    ("mcp_auth_client_metadata_ports 443 https;", "not a port number"),
    ("mcp_auth_tool_scope save_snippet bad\"scope;", "scope"),
    ("mcp_auth_identity_audience \"\";", "must not be empty"),
    ("mcp_auth_require_claim groups;", "invalid number of arguments"),
    ("mcp_auth_require_claim a..b editors;", "not a claim path"),
    ("mcp_auth_require_email_domain \"example com\";", "not a domain name"),
    ("mcp_auth_scope_claim bad\"scope groups editors;", "not a valid scope"),
    ("mcp_auth_tool_claim save_snippet groups;", "a claim path and at least one value"),
    ("mcp_auth_scope_description snippets:read \"line\tbreak\";", "must not hold a tab"),
    ("mcp_auth_provider_param redirect_uri https://evil.example/;", "set by the gateway itself"),
    ("mcp_auth_provider_param access_type offline extra;", "invalid number of arguments"),
])
def test_nginx_t_names_the_line_of_a_bad_directive(nginx_factory, directive, words):
    nx = nginx_factory("badline", http_extra="    %s\n" % directive)
    lines = Path(nx.conf).read_text().splitlines()
    line = next(i + 1 for i, text in enumerate(lines) if text.strip() == directive)
    result = nx.test_config()
    assert result.returncode != 0
    assert words in result.stderr, result.stderr
    assert re.search(r" in \S*nginx\.conf:%d\n" % line, result.stderr), (line, result.stderr)


def test_locations_with_the_same_settings_share_one_core(gateway):
    """One core (its keys read once) per distinct set of settings, not one
    per location: the test configuration's locations (endpoints and guarded
    /mcp) differ only in what they serve, the TLS server in nothing."""
    m = re.search(r"mcp_auth: core \S+, (\d+) configurations for (\d+) locations",
                  gateway.error_log())
    assert m, gateway.error_log()[-2000:]
    cores, locations = int(m.group(1)), int(m.group(2))
    assert locations >= 10 and cores <= 2, (cores, locations)
