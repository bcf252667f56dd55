"""The "Your connected apps" page (mcp_auth_endpoint account, at /account in
the example configuration) in Debian's headless chromium, driven by
playwright-core (t/clients/account_page.mjs): a user with two apps signs in
at the provider's login form, sees both (names, hosts, scopes), clicks
Revoke on one: that app's token is refused at /mcp at once, the other's
still works.  Around it, with plain HTTP and the browser's own cookie: a
form without or with a wrong CSRF token is refused, so is one from another
site; another user's page lists neither app, and cannot revoke them; a user
the claim rules do not admit gets no page.  docs/account-page.png (the
README's) is written when missing or when MCP_UPDATE_SCREENSHOTS=1."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
from urllib.parse import urljoin

from harness import NODE, ROOT
from idp_util import provider_login
from mcp_gateway import REDIRECT, Streamable, login
from metrics_util import metric, scrape
from oauth_client import McpOAuthClient

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = ROOT / "t" / "clients" / "account_page.mjs"
DOCS_SCREENSHOT = ROOT / "docs" / "account-page.png"
OTHER_REDIRECT = "http://localhost:33419/callback"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed "
                                "(scripts/deps.sh installs it)")


@pytest.fixture(scope="module")
def st(stack_factory):
    return stack_factory("account")


def mcp_status(st, token):
    """The status of an MCP initialize with the token."""
    s = Streamable(st.url, token)
    r = s.post({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": s.version, "capabilities": {},
                           "clientInfo": {"name": "pytest", "version": "1"}}})
    return r.status_code


def run_driver(st, tmp_path, user, revoke=None, screenshot=None):
    out = tmp_path / ("browser-" + user)
    out.mkdir()
    cmd = [NODE, str(DRIVER), "--gateway", st.url, "--user", user,
           "--password", getattr(st, "%s_password" % user), "--out", str(out)]
    if revoke:
        cmd += ["--revoke", revoke]
    if screenshot:
        cmd += ["--screenshot", str(screenshot)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    failure = (out / "failure.txt").read_text() if (out / "failure.txt").exists() else ""
    assert r.returncode == 0 and lines and lines[-1].get("step") == "done", (
        "account page walkthrough failed:\n%s\n%s\npage:\n%s" % (r.stdout, r.stderr[-3000:], failure[:3000]))
    return {x["step"]: x for x in lines if "step" in x}, out


def account_session(st, user):
    """A requests session signed in to /account as `user`; returns (session, page)."""
    s = requests.Session()
    r = s.get(st.url + "/account", allow_redirects=False, timeout=15)
    assert r.status_code == 303, r.text
    back = provider_login(s, urljoin(r.url, r.headers["Location"]), user,
                          getattr(st, "%s_password" % user))
    for _ in range(5):
        if not back.is_redirect:
            break
        back = s.get(urljoin(back.url, back.headers["Location"]), allow_redirects=False, timeout=15)
    return s, back


def post_form(st, cookie_name, cookie_value, data, origin=None, site="same-origin"):
    headers = {"Origin": origin or st.url, "Sec-Fetch-Site": site}
    return requests.post(st.url + "/account", data=data, headers=headers,
                         cookies={cookie_name: cookie_value}, allow_redirects=False, timeout=15)


def audit(st):
    path = st.workdir / "audit.log"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def wait_audit(st, event, timeout=5.0):
    """The audit lines of `event` once there is one (the workers write
    theirs at most a second late)."""
    end = time.time() + timeout
    while True:
        found = [e for e in audit(st) if e["event"] == event]
        if found or time.time() > end:
            return found
        time.sleep(0.1)


def test_a_user_sees_their_apps_and_revokes_one(st, tmp_path):
    notes = login(st, "demo", client=McpOAuthClient(st.url, redirect_uri=REDIRECT, client_name="Notes App"))
    calendar = login(st, "demo", client=McpOAuthClient(st.url, redirect_uri=OTHER_REDIRECT,
                                                       client_name="Calendar <Bot>"))
    theirs = login(st, "alice", client=McpOAuthClient(st.url, redirect_uri=REDIRECT,
                                                      client_name="Alice's Assistant"))
    for c in (notes, calendar, theirs):
        assert mcp_status(st, c.tokens["access_token"]) == 200

    before = scrape(st)
    shot = tmp_path / "account-page.png"
    steps, out = run_driver(st, tmp_path, "demo", revoke="Notes App", screenshot=shot)
    assert steps["provider_login_page"]["origin"] == st.issuer
    page = steps["account_page"]
    assert page["path"] == "/account" and page["title"] == "Your connected apps"
    names = sorted(a["name"] for a in page["apps"])
    assert names == ["Calendar <Bot>", "Notes App"], page["apps"]
    by_name = {a["name"]: a for a in page["apps"]}
    assert "127.0.0.1" in by_name["Notes App"]["text"]
    assert "localhost" in by_name["Calendar <Bot>"]["text"]
    for c, name in ((notes, "Notes App"), (calendar, "Calendar <Bot>")):
        for scope in c.tokens["scope"].split():
            assert scope in by_name[name]["text"], (scope, by_name[name]["text"])
        assert "UTC" in by_name[name]["text"]
    assert "Alice" not in page["text"]

    # Revoke Notes App: its token is refused at once, Calendar's still works
    revoked = steps["revoked"]
    assert revoked["url"].endswith("/account?revoked=1")
    assert [a["name"] for a in revoked["apps"]] == ["Calendar <Bot>"]
    assert steps["posts"]["posts"] == [{"status": 303, "origin": st.url}]
    assert mcp_status(st, notes.tokens["access_token"]) == 401
    assert notes.refresh().status_code == 400
    assert mcp_status(st, calendar.tokens["access_token"]) == 200
    assert mcp_status(st, theirs.tokens["access_token"]) == 200
    # counted with the revocations; the page's answers under its own label
    after = scrape(st)
    assert metric(after, "mcp_auth_revocations_total", result="revoked") == \
        metric(before, "mcp_auth_revocations_total", result="revoked") + 1
    assert metric(after, "mcp_auth_responses_total", endpoint="account", **{"class": "3xx"}) >= 2
    assert metric(after, "mcp_auth_responses_total", endpoint="account", **{"class": "2xx"}) >= 2

    # the audit log says who revoked what (the session by its tag only)
    revoked_lines = wait_audit(st, "account.revoked")
    assert len(revoked_lines) == 1, revoked_lines
    line = revoked_lines[0]
    assert line["outcome"] == "revoked" and line["client_id"] == notes.client_id
    assert line["subject"] == "user-demo" and line["session"]
    assert [e for e in audit(st) if e["event"] == "account.signed_in" and e["subject"] == "user-demo"]

    # the browser's cookie: HttpOnly, scoped to the page
    ck = steps["cookies"]
    assert ck["name"] == "mcp_account" and ck["path"] == "/account"
    assert ck["http_only"] is True and ck["same_site"] == "Lax"
    calendar_sid = revoked["apps"][0]["session"]
    form = {"action": "revoke", "session": calendar_sid}
    # no CSRF token, a wrong one, another site's post: refused, nothing ends
    assert post_form(st, ck["name"], ck["value"], form).status_code == 403
    wrong = dict(form, csrf=ck["csrf"][:-2] + ("AA" if not ck["csrf"].endswith("AA") else "BB"))
    assert post_form(st, ck["name"], ck["value"], wrong).status_code == 403
    good = dict(form, csrf=ck["csrf"])
    assert post_form(st, ck["name"], ck["value"], good, site="cross-site").status_code == 403
    assert post_form(st, ck["name"], ck["value"], good,
                     origin="http://evil.example").status_code == 403
    # the right token without the cookie: refused too
    assert post_form(st, ck["name"], "", good).status_code == 403
    assert mcp_status(st, calendar.tokens["access_token"]) == 200

    # another user's page lists neither app, and cannot revoke Calendar
    s, alice_page = account_session(st, "alice")
    assert alice_page.status_code == 200, alice_page.text
    assert "Alice&#39;s Assistant" in alice_page.text or "Alice's Assistant" in alice_page.text
    assert "Calendar" not in alice_page.text and "Notes App" not in alice_page.text
    csrf = alice_page.text.split('name="csrf" value="')[1].split('"')[0]
    r = s.post(st.url + "/account", data={"csrf": csrf, "action": "revoke", "session": calendar_sid},
               headers={"Origin": st.url, "Sec-Fetch-Site": "same-origin"}, allow_redirects=False, timeout=15)
    assert r.status_code == 404, r.text
    assert mcp_status(st, calendar.tokens["access_token"]) == 200

    assert shot.stat().st_size > 5000
    if not DOCS_SCREENSHOT.exists() or os.environ.get("MCP_UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)


def test_a_user_the_claim_rules_do_not_admit_gets_no_page(st):
    """outsider belongs to another tenant (mcp_auth_require_claim tid)."""
    s, page = account_session(st, "outsider")
    assert page.status_code == 403, page.text
    assert "not allowed" in page.text
    assert not any(c.name.endswith("mcp_account") for c in s.cookies)


def test_a_new_browser_gets_the_empty_state(st):
    _, page = account_session(st, "viewer")
    assert page.status_code == 200, page.text
    assert "No app holds access in your name" in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    assert "form-action 'self'" in page.headers["Content-Security-Policy"]
