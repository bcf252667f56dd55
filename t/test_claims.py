"""Access from the provider's claims, through the whole stack with the example
configuration: it admits the demo tenant only (mcp_auth_require_claim tid),
gives snippets:write to the group editors (mcp_auth_scope_claim) and
save_snippet to editors (mcp_auth_tool_claim, and --tool-claim at the tool
server).  The development provider's users: demo (editors), viewer (no
group), outsider (another tenant)."""

import json
import subprocess
import time

import pytest
import requests

from harness import NODE, ROOT
from idp_util import set_user_claims
from mcp_gateway import REDIRECT, Sse, Streamable, login, rpc, text_of
from metrics_util import metric, scrape
from oauth_client import Browser, McpOAuthClient, query_of

CLIENT = ROOT / "t" / "clients" / "sdk_client.mjs"


@pytest.fixture(scope="module")
def st(stack_factory):
    # the provider's access tokens live 3 s, so a refresh renews them there
    return stack_factory("claims", idp_options={"access_token_ttl": 3})


def sdk(st, user, transport):
    return subprocess.Popen([NODE, str(CLIENT), "--gateway", st.url, "--transport", transport,
                             "--scenario", "access", "--user", user,
                             "--password", getattr(st, "%s_password" % user)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def sdk_runs(st):
    procs = {(u, t): sdk(st, u, t) for u in ("demo", "viewer") for t in ("http", "sse")}
    out = {}
    for key, p in procs.items():
        stdout, stderr = p.communicate(timeout=90)
        lines = [json.loads(x) for x in stdout.splitlines() if x.startswith("{")]
        assert p.returncode == 0 and lines[-1].get("step") == "done", \
            "sdk_client %s failed:\n%s\n%s" % (key, stdout, stderr)
        out[key] = lines
    return out


def step(lines, name, **match):
    return [x for x in lines if x.get("step") == name and all(x.get(k) == v for k, v in match.items())]


@pytest.mark.parametrize("transport", ["http", "sse"])
def test_a_viewer_sees_and_calls_only_what_the_rules_allow(sdk_runs, transport):
    lines = sdk_runs[("viewer", transport)]
    assert step(lines, "tokens_saved")[0]["scope"] == "snippets:read"  # snippets:write is for editors
    assert step(lines, "tools_list")[0]["tools"] == ["get_snippet", "hello_mcp"]
    assert step(lines, "tool_call", tool="hello_mcp")[0]["is_error"] is False
    assert step(lines, "tool_call", tool="get_snippet")
    refused = step(lines, "tool_refused", tool="save_snippet")
    assert refused, lines
    # the SDK's error carries the HTTP status: as its code (Streamable
    # HTTP), or in its message (HTTP+SSE)
    assert refused[0]["code"] == 403 if transport == "http" else "(HTTP 403)" in refused[0]["error"], refused
    assert "your account may not call save_snippet: it requires groups = editors" in refused[0]["error"]
    # refused once, without a new login (no step-up loop)
    assert len([x for x in lines if x.get("step") == "redirect_to_authorization"]) == 1


@pytest.mark.parametrize("transport", ["http", "sse"])
def test_an_editor_sees_and_calls_every_tool(sdk_runs, transport):
    lines = sdk_runs[("demo", transport)]
    assert step(lines, "tokens_saved")[0]["scope"] == "snippets:read snippets:write"
    assert step(lines, "tools_list")[0]["tools"] == ["get_snippet", "hello_mcp", "save_snippet"]
    assert not step(lines, "tool_refused")
    assert step(lines, "tool_call", tool="get_snippet")[0]["text"] == "by access"


def test_an_account_of_another_tenant_is_refused_at_the_gateway_and_nothing_is_stored(st):
    before = scrape(st)
    c = McpOAuthClient(st.url, redirect_uri=REDIRECT)
    c.register()
    browser = Browser("outsider", st.outsider_password)
    back = browser.authorize(c.authorize_url(), REDIRECT)
    page = browser.last_page
    assert page.status_code == 403
    assert "Your account is not allowed to use this server" in page.text
    assert "outsider@example.test" in page.text
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    q = query_of(back)
    assert q["error"] == "access_denied" and q["state"] == c.state and "code" not in q
    after = scrape(st)
    assert metric(after, "mcp_auth_logins_total", outcome="not_admitted") \
        - metric(before, "mcp_auth_logins_total", outcome="not_admitted") == 1
    assert metric(after, "mcp_auth_sessions") == metric(before, "mcp_auth_sessions")
    # the other users of the tenant are let in
    assert login(st, "viewer").tokens["scope"] == "snippets:read"


def test_the_consent_page_says_what_each_scope_means(st):
    c = McpOAuthClient(st.url, redirect_uri=REDIRECT, scope="snippets:read snippets:write")
    c.register()
    r = requests.get(c.authorize_url(), allow_redirects=True, timeout=10)
    assert r.status_code == 200 and "decision" in r.text
    assert "Read the snippets saved in your name" in r.text
    assert "Save snippets in your name" in r.text
    # only snippets:write is for some accounts only
    assert r.text.count("Granted only if your organisation allows your account") == 1
    assert r.text.index("Granted only if") > r.text.index("snippets:write")


def test_the_tool_server_refuses_too_and_the_assertion_carries_the_claims(st):
    """A viewer's tools/list through the gateway lists what the tool server's
    own rules (--tool-claim, --tool-scope from the same configuration) allow."""
    viewer = login(st, "viewer")
    s = Streamable(st.url, viewer.tokens["access_token"]).initialize()
    names = sorted(t["name"] for t in s.request("tools/list")["result"]["tools"])
    assert names == ["get_snippet", "hello_mcp"]
    r = s.post(rpc("tools/call", {"name": "save_snippet", "arguments": {"snippetname": "x", "snippet": "y"}}))
    assert r.status_code == 403
    body = r.json()
    assert body["error"]["code"] == -32001
    assert "requires groups = editors" in body["error"]["message"]
    assert "WWW-Authenticate" not in r.headers


def test_a_user_removed_from_a_group_loses_the_scope_at_the_next_renewal(st):
    alice = login(st, "alice")
    assert alice.tokens["scope"] == "snippets:read snippets:write"
    s = Streamable(st.url, alice.tokens["access_token"]).initialize()
    assert "saved successfully" in text_of(s.call("save_snippet", snippetname="group", snippet="before"))
    set_user_claims(st.issuer, "alice", groups=[])
    try:
        # the provider's token expires; the client's refresh renews it there
        time.sleep(3.5)
        r = alice.refresh()
        assert r.status_code == 200, r.text
        assert r.json()["scope"] == "snippets:read"
        s2 = Streamable(st.url, alice.tokens["access_token"]).initialize()
        refused = s2.post(rpc("tools/call", {"name": "save_snippet",
                                             "arguments": {"snippetname": "group", "snippet": "after"}}))
        assert refused.status_code == 403
        assert "requires groups = editors" in refused.json()["error"]["message"]
        # the token issued before the change is refused too: the session's
        # claims decide, not the token's
        old = s.post(rpc("tools/call", {"name": "save_snippet",
                                        "arguments": {"snippetname": "group", "snippet": "after"}}))
        assert old.status_code == 403
        assert text_of(s2.call("get_snippet", snippetname="group")) == "before"
        # moved out of the tenant: the next renewal ends the session
        set_user_claims(st.issuer, "alice", tid="somewhere-else")
        time.sleep(3.5)
        assert alice.refresh().status_code == 400
    finally:
        set_user_claims(st.issuer, "alice", reset=True)


def test_a_provider_parameter_is_sent_on_the_login_request(stack_factory):
    st = stack_factory("provider-params", http_extra="    mcp_auth_provider_param access_type offline;\n"
                                                     "    mcp_auth_provider_param prompt consent;\n")
    c = McpOAuthClient(st.url, redirect_uri=REDIRECT)
    c.register()
    b = Browser("demo", st.demo_password)
    r = b.get(c.authorize_url())
    while r.status_code in (302, 303) and r.headers["Location"].startswith(st.url):
        r = b.get(r.headers["Location"])
    r = b.approve(r)
    q = query_of(r.headers["Location"])
    assert q["access_type"] == "offline" and q["prompt"] == "consent" and q["response_type"] == "code"
