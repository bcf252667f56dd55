"""The official TypeScript SDK (@modelcontextprotocol/sdk, pinned in package.json)
against the whole stack, with its own OAuth support: t/clients/sdk_client.mjs
implements OAuthClientProvider (its "browser" approves our consent page and
logs in at the provider over HTTP) and prints what happened as JSON lines."""

import json
import subprocess

import pytest

from harness import NODE, ROOT

CLIENT = ROOT / "t" / "clients" / "sdk_client.mjs"
TTL = 3


@pytest.fixture(scope="module")
def st(stack_factory):
    return stack_factory("sdk", http_extra="    mcp_auth_access_token_ttl %d;\n"
                                           "    mcp_auth_stream_check 1s;\n" % TTL)


def start(st, transport, scenario):
    return subprocess.Popen([NODE, str(CLIENT), "--gateway", st.url, "--transport", transport,
                             "--scenario", scenario, "--user", "demo",
                             "--password", st.demo_password, "--ttl", str(TTL)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def runs(st):
    """The runs, concurrently (the full ones wait for their tokens to expire)."""
    procs = {("http", "full"): start(st, "http", "full"),
             ("sse", "full"): start(st, "sse", "full"),
             ("http", "stepup"): start(st, "http", "stepup"),
             ("http", "deny"): start(st, "http", "deny")}
    out = {}
    for key, p in procs.items():
        stdout, stderr = p.communicate(timeout=90)
        lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        out[key] = (p.returncode, lines, stderr)
    return out


def steps(lines, name=None):
    return [x for x in lines if "step" in x and (name is None or x["step"] == name)]


def http_log(lines):
    return [(x["http"], x["status"], x.get("grant_type")) for x in lines if "http" in x]


def ok_run(runs, key):
    rc, lines, stderr = runs[key]
    assert rc == 0 and steps(lines)[-1]["step"] == "done", \
        "sdk_client %s failed (rc %s):\n%s\n%s" % (key, rc, "\n".join(map(json.dumps, lines)), stderr)
    return lines


def tool_calls(lines, label):
    return {x["tool"]: x for x in steps(lines, "tool_call") if x["label"] == label}


@pytest.mark.parametrize("transport,mcp_path", [("http", "/mcp"), ("sse", "/mcp/sse")])
def test_the_sdk_discovers_registers_and_logs_in_from_the_401(runs, transport, mcp_path):
    lines = ok_run(runs, (transport, "full"))
    log = http_log(lines)
    first = log[:4]
    assert first[0][:2] == (("POST " if transport == "http" else "GET ") + mcp_path, 401)
    assert first[1][:2] == ("GET /.well-known/oauth-protected-resource/mcp", 200)
    assert first[2][:2] == ("GET /.well-known/oauth-authorization-server", 200)
    assert first[3][:2] == ("POST /register", 201)
    redirect = steps(lines, "redirect_to_authorization")[0]
    assert redirect["path"] == "/authorize"
    assert redirect["code_challenge_method"] == "S256"
    assert redirect["resource"].endswith("/mcp")
    pages = [x["browser"] for x in lines if "browser" in x]
    assert pages[:2] == ["consent", "login"]
    back = steps(lines, "browser_returned")[0]
    assert back["has_code"] and back["iss"] and not back["error"]
    assert ("POST /token", 200, "authorization_code") in log
    saved = steps(lines, "tokens_saved")[0]
    assert saved["has_refresh_token"] and saved["expires_in"] == TTL
    assert steps(lines, "connected")


@pytest.mark.parametrize("transport", ["http", "sse"])
def test_the_sdk_lists_and_calls_the_tools_through_the_gateway(runs, transport):
    lines = ok_run(runs, (transport, "full"))
    listed = [x for x in steps(lines, "tools_list") if x["label"] == "first"][0]
    assert listed["tools"] == ["get_snippet", "hello_mcp", "save_snippet"]
    calls = tool_calls(lines, "first")
    assert calls["hello_mcp"]["text"] == "Hello I am MCPTool!"
    assert "saved successfully" in calls["save_snippet"]["text"]
    assert calls["get_snippet"]["text"] == "saved over %s" % transport
    assert not any(c["is_error"] for c in calls.values())


@pytest.mark.parametrize("transport", ["http", "sse"])
def test_an_expired_access_token_is_refreshed_by_the_sdk_without_a_new_login(runs, transport):
    lines = ok_run(runs, (transport, "full"))
    i = lines.index(steps(lines, "access_token_expired")[0])
    after = http_log(lines[i:])
    assert after[0][1] == 401                              # the expired token is refused
    assert after[1] == ("POST /token", 200, "refresh_token")
    assert after[2][1] in (200, 202)                        # the retried call
    assert tool_calls(lines, "after_expiry")["hello_mcp"]["text"] == "Hello I am MCPTool!"
    assert steps(lines, "after_expiry")[0]["new_authorizations"] == 0


@pytest.mark.parametrize("transport", ["http", "sse"])
def test_after_revocation_the_sdk_sends_the_user_back_to_log_in(runs, transport):
    lines = ok_run(runs, (transport, "full"))
    assert steps(lines, "revoked")[0]["status"] == 200
    i = lines.index(steps(lines, "revoked")[0])
    after = http_log(lines[i:])
    assert after[0][1] == 401
    assert after[1] == ("POST /token", 400, "refresh_token")   # the revoked grant cannot refresh
    assert steps(lines[i:], "invalidate_credentials")[0]["scope"] == "tokens"
    assert steps(lines[i:], "redirect_to_authorization")        # the browser opens again
    assert ("POST /token", 200, "authorization_code") in after
    assert steps(lines, "after_revocation")[0]["new_authorizations"] == 1
    assert tool_calls(lines, "after_revocation")["hello_mcp"]["text"] == "Hello I am MCPTool!"


def test_a_read_only_sign_in_can_save_a_snippet_after_the_sdks_step_up(runs):
    """What SDK 1.32 does on 403 insufficient_scope: it refreshes (our token
    endpoint answers invalid_grant for a sign-in that hit a scope challenge),
    drops the tokens and re-authorizes asking for exactly the challenge's
    scope -- which the gateway makes the token's scopes plus the missing
    one, so the new sign-in keeps snippets:read and needs no second step-up."""
    lines = ok_run(runs, ("http", "stepup"))
    first = steps(lines, "redirect_to_authorization")[0]
    assert first["scope"] == "snippets:read"
    assert steps(lines, "tokens_saved")[0]["scope"] == "snippets:read"
    assert tool_calls(lines, "read_scope")["get_snippet"]["text"] == "Snippet 'stepup' not found"

    log = http_log(lines)
    i = next(n for n, e in enumerate(log) if e[1] == 403)
    assert log[i][0] == "POST /mcp"
    assert [x for x in lines if x.get("status") == 403][0]["www_authenticate_error"] \
        == "insufficient_scope"
    assert log[i + 1] == ("POST /token", 400, "refresh_token")   # the refresh is refused
    second = steps(lines, "redirect_to_authorization")[1]
    assert second["scope"] == "snippets:read snippets:write"
    assert "saved successfully" in tool_calls(lines, "step_up")["save_snippet"]["text"]
    assert steps(lines, "after_step_up")[0] == {"step": "after_step_up", "new_authorizations": 1,
                                                  "scope": "snippets:read snippets:write"}
    # reading again works with the same sign-in: no second step-up
    assert tool_calls(lines, "after_step_up")["get_snippet"]["text"] == "written after step-up"
    assert steps(lines, "after_read_again")[0]["new_authorizations"] == 0


def test_the_sdk_client_learns_of_a_deny_through_the_pages_link(runs):
    """Deny on the consent page shows a page (the gateway does not redirect to
    a client the user has not approved, RFC 9700 §4.11.2); its link takes the
    browser to the application's redirect URI with access_denied and the
    SDK's state, and no token is ever issued."""
    lines = ok_run(runs, ("http", "deny"))
    browser = [x["browser"] for x in lines if "browser" in x]
    assert browser == ["consent", "return_link"], browser
    back = steps(lines, "browser_returned")
    assert len(back) == 1
    assert back[0]["error"] == "access_denied" and not back[0]["has_code"]
    assert back[0]["state_matches"] is True
    assert steps(lines, "denial_learned")[0]["error"] == "access_denied"
    assert not any(x.get("grant_type") for x in lines if "http" in x)   # no /token request
