"""The authorization server through real nginx and the real provider.

The whole flow is driven by HTTP as a browser and an MCP client would
(t/oauth_client.py); then a matrix of bad inputs, each with its exact status
and error.  RFC sections are named in the test docstrings where they matter.
"""

import json
import time
from urllib.parse import urlencode, urlsplit

import pytest
import requests

from idp_util import set_faults
from oauth_client import Browser, McpOAuthClient, parse_forms, pkce_pair, query_of, return_link

REDIRECT = "http://127.0.0.1:33418/callback"


@pytest.fixture(scope="module")
def gw(stack):
    return stack


def browser(gw, login="demo"):
    return Browser(login, gw.demo_password if login == "demo" else gw.alice_password)


def client(gw, **kw):
    c = McpOAuthClient(gw.url, redirect_uri=kw.pop("redirect_uri", REDIRECT), **kw)
    c.register()
    return c


def start(gw, c, b=None, **extra):
    """GET /authorize; returns (browser, response)."""
    b = b or browser(gw)
    return b, b.get(c.authorize_url(**extra))


def assert_error_page(r, status=400):
    """An error shown to the user: never a redirect (RFC 6749 §4.1.2.1)."""
    assert r.status_code == status, r.text[:500]
    assert "Location" not in r.headers
    assert r.headers["Content-Type"].startswith("text/html")


def assert_redirect_error(r, c, error):
    """An outcome for a client this browser has not approved and logged in
    through: a page with a link to it, never an automatic redirect (RFC 9700
    §4.11.2); the link carries the error, state and iss (RFC 6749 §4.1.2.1,
    RFC 9207)."""
    assert r.status_code == (200 if error == "access_denied" else 400), r.text[:500]
    assert "Location" not in r.headers
    assert r.headers["Content-Type"].startswith("text/html")
    loc = return_link(r.text)
    assert loc and loc.startswith(c.redirect_uri), r.text[:2000]
    q = query_of(loc)
    assert q["error"] == error, q
    assert q["state"] == c.state
    assert q["iss"] == c.metadata["issuer"]
    assert urlsplit(c.redirect_uri).hostname in r.text   # the page says where the link goes


# --- the happy path ------------------------------------------------------------

def test_a_public_client_logs_in_and_gets_sealed_tokens(gw):
    c = client(gw)
    tokens = c.login(browser(gw))
    assert tokens["token_type"] == "Bearer"
    assert 0 < tokens["expires_in"] <= 3600
    assert tokens["refresh_token"] and tokens["refresh_token"] != tokens["access_token"]
    assert set(tokens["scope"].split()) == {"snippets:read", "snippets:write"}
    # the gateway's own token, not the provider's
    assert tokens["access_token"].startswith("k1.")


def test_the_redirect_back_carries_code_state_and_iss(gw):
    c = client(gw)
    redirect = browser(gw).authorize(c.authorize_url(), c.redirect_uri)
    q = query_of(redirect)
    assert q["state"] == c.state
    assert q["iss"] == gw.url          # RFC 9207
    assert len(q["code"]) >= 32


def test_a_confidential_client_authenticates_at_the_token_endpoint(gw):
    c = McpOAuthClient(gw.url, redirect_uri=REDIRECT, public=False)
    doc = c.register()
    assert doc["token_endpoint_auth_method"] == "client_secret_basic"
    assert doc["client_secret"]
    tokens = c.login(browser(gw))
    assert tokens["access_token"]


def test_token_responses_are_never_cached(gw):
    c = client(gw)
    c.login(browser(gw))
    r = c.refresh()
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"


def test_a_refresh_rotates_the_refresh_token(gw):
    c = client(gw)
    first = c.login(browser(gw))
    r = c.refresh()
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]


def test_a_retried_refresh_within_the_grace_window_gets_the_same_pair(gw):
    """RFC 9700 §4.14.2: a concurrent retry of a refresh is not reuse; it gets
    the very tokens the winning rotation returned, never a new pair."""
    c = client(gw)
    old = c.login(browser(gw))["refresh_token"]
    first = c.refresh(old)
    assert first.status_code == 200, first.text
    time.sleep(1.1)
    for _ in range(2):
        again = c.refresh(old)
        assert again.status_code == 200, again.text
        assert again.json()["access_token"] == first.json()["access_token"]
        assert again.json()["refresh_token"] == first.json()["refresh_token"]
        assert again.json()["expires_in"] <= first.json()["expires_in"]


def test_once_the_successor_is_used_the_old_refresh_token_ends_the_session(gw):
    c = client(gw)
    old = c.login(browser(gw))["refresh_token"]
    successor = c.refresh(old).json()["refresh_token"]
    newest = c.refresh(successor)
    assert newest.status_code == 200, newest.text
    from mcp_gateway import Streamable, rpc
    assert Streamable(gw.url, newest.json()["access_token"]).post(rpc("ping")).status_code != 401
    r = c.refresh(old)                              # within seconds: still reuse
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    r = c.refresh(newest.json()["refresh_token"])   # the session is gone
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert Streamable(gw.url, newest.json()["access_token"]).post(rpc("ping")).status_code == 401


def test_revocation_ends_the_session(gw):
    c = client(gw)
    tokens = c.login(browser(gw))
    assert c.revoke(tokens["access_token"]).status_code == 200
    r = c.refresh(tokens["refresh_token"])
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


def test_revoking_an_unknown_token_is_still_200(gw):
    """RFC 7009 §2.2."""
    c = client(gw)
    assert c.revoke("not-a-token").status_code == 200


def test_the_consent_page_names_the_client_and_escapes_it(gw):
    c = client(gw, client_name='<script>alert("x")</script>')
    b, r = start(gw, c)
    assert r.status_code in (302, 303)
    page = b.get(r.headers["Location"] if r.headers["Location"].startswith("http")
                 else gw.url + r.headers["Location"])
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text
    assert c.client_id in page.text
    assert "127.0.0.1" in page.text
    assert "snippets:write" in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    # same-origin: the form's POST carries our Origin (under no-referrer
    # browsers send "Origin: null"); other sites still get no referrer
    assert page.headers["Referrer-Policy"] == "same-origin"


def test_remembered_consent_skips_the_consent_page(gw):
    c = client(gw)
    b = browser(gw)
    b.authorize(c.authorize_url(), c.redirect_uri, remember=True)
    r = b.get(c.authorize_url())
    assert r.status_code in (302, 303)
    assert r.headers["Location"].startswith(gw.issuer), r.headers["Location"]


def test_remembered_consent_never_widens_the_scope(gw):
    """A choice remembered for snippets:read does not approve snippets:write:
    the consent page comes back and names the new scope."""
    c = client(gw, scope="snippets:read")
    b = browser(gw)
    c.exchange(b.authorize(c.authorize_url(), c.redirect_uri, remember=True))
    assert c.tokens["scope"] == "snippets:read"
    c.scope = "snippets:read snippets:write"
    r = b.get(c.authorize_url())
    assert r.status_code in (302, 303)
    loc = r.headers["Location"]
    assert "/consent?" in loc, loc              # not straight to the provider
    page = b.get(loc if loc.startswith("http") else gw.url + loc)
    assert "It now asks for more: <strong>snippets:write</strong>" in page.text
    # allowed (and remembered) again, the wider grant is remembered in turn
    c.exchange(b.authorize(c.authorize_url(), c.redirect_uri, remember=True))
    assert c.tokens["scope"] == "snippets:read snippets:write"
    r = b.get(c.authorize_url())
    assert r.headers["Location"].startswith(gw.issuer), r.headers["Location"]


# --- registration (RFC 7591) ---------------------------------------------------

def register(gw, body, **kw):
    return requests.post(gw.url + "/register", json=body, timeout=5, **kw)


@pytest.mark.parametrize("uris", [
    [],
    ["http://example.com/callback"],
    ["https://example.com/cb#frag"],
    ["javascript:alert(1)"],
    ["relative/path"],
])
def test_registration_refuses_bad_redirect_uris(gw, uris):
    r = register(gw, {"redirect_uris": uris, "token_endpoint_auth_method": "none"})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_redirect_uri"
    assert r.headers["Cache-Control"] == "no-store"


def test_registration_refuses_a_body_that_is_not_json(gw):
    r = requests.post(gw.url + "/register", data="redirect_uris=x",
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=5)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_client_metadata"


def test_registration_refuses_an_unknown_auth_method(gw):
    r = register(gw, {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_client_metadata"


def test_registration_refuses_an_unknown_scope(gw):
    r = register(gw, {"redirect_uris": [REDIRECT], "scope": "admin"})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_client_metadata"


def test_registration_refuses_an_oversized_body(gw):
    r = register(gw, {"redirect_uris": [REDIRECT], "client_name": "x" * 200_000})
    assert r.status_code == 413


@pytest.fixture(scope="module")
def bare(nginx_factory):
    """The example configuration alone, its zone used by nothing else."""
    return nginx_factory("bounds").start()


def _uris(n, length=0):
    out = []
    for i in range(n):
        u = "https://client.example/%d" % i
        out.append(u + "x" * max(0, length - len(u)))
    return out


LONG_URL = "https://client.example/" + "u" * 2048


@pytest.mark.parametrize("body,error,limit", [
    ({"redirect_uris": _uris(11)}, "invalid_redirect_uri", "at most 10 redirect_uris"),
    ({"redirect_uris": _uris(1, 2049)}, "invalid_redirect_uri", "2048"),
    ({"redirect_uris": _uris(1), "client_name": "n" * 201}, "invalid_client_metadata", "200"),
    ({"redirect_uris": _uris(1), "client_uri": LONG_URL}, "invalid_client_metadata", "2048"),
    ({"redirect_uris": _uris(1), "logo_uri": LONG_URL}, "invalid_client_metadata", "2048"),
    ({"redirect_uris": _uris(4, 2000)}, "invalid_client_metadata", "8 KiB"),
    ({"redirect_uris": _uris(1), "client_name": "Good\u202eppA"}, "invalid_client_metadata", "U+202E"),
    ({"redirect_uris": _uris(1), "client_name": "Go\u200bod"}, "invalid_client_metadata", "invisible"),
], ids=["11 redirect_uris", "long redirect_uri", "long client_name", "long client_uri", "long logo_uri",
        "8 KiB stored", "bidi override", "zero width space"])
def test_a_registration_past_a_bound_gets_its_rfc_7591_error_and_stores_nothing(bare, body, error, limit):
    """Anyone may register: every stored field is bounded (RFC 7591 §3.2.2)."""
    entries = lambda: requests.get(bare.url + "/_mcp_auth/status", timeout=5).json()["entries"]
    before = entries()
    r = requests.post(bare.url + "/register", json=dict(body, token_endpoint_auth_method="none"), timeout=5)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == error
    assert limit in r.json()["error_description"], r.json()
    assert r.headers["Cache-Control"] == "no-store"
    assert entries() == before
    # a registration at every bound is stored
    ok = requests.post(bare.url + "/register", json={"redirect_uris": _uris(10, 200), "client_name": "n" * 200,
                                                     "client_uri": LONG_URL[:2048],
                                                     "token_endpoint_auth_method": "none"}, timeout=5)
    assert ok.status_code == 201, ok.text
    assert entries() == before + 1


def test_registration_echoes_the_metadata_with_201(gw):
    r = register(gw, {"redirect_uris": [REDIRECT, "com.example.app:/cb"], "client_name": "App",
                      "token_endpoint_auth_method": "none"})
    assert r.status_code == 201
    doc = r.json()
    assert doc["redirect_uris"] == [REDIRECT, "com.example.app:/cb"]
    assert doc["client_name"] == "App"
    assert "client_secret" not in doc
    assert doc["client_id_issued_at"] <= time.time() + 5


def test_registration_answers_a_cors_preflight(gw):
    r = requests.options(gw.url + "/register", headers={
        "Origin": "http://localhost:6274", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"}, timeout=5)
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] in ("*", "http://localhost:6274")
    assert "POST" in r.headers["Access-Control-Allow-Methods"]


# --- authorize -----------------------------------------------------------------

def test_an_unknown_client_gets_an_error_page_not_a_redirect(gw):
    b = browser(gw)
    r = b.get(gw.url + "/authorize?" + urlencode({
        "response_type": "code", "client_id": "nope", "redirect_uri": REDIRECT,
        "code_challenge": pkce_pair()[1], "code_challenge_method": "S256", "state": "s"}))
    assert_error_page(r)


@pytest.mark.parametrize("evil", [
    "https://evil.example/callback",
    REDIRECT + "x",
    REDIRECT + "/../evil",
    REDIRECT + "?next=https://evil.example",
    "http://127.0.0.1.evil.example:33418/callback",
    "HTTP://127.0.0.1:33418/callback",
])
def test_an_unregistered_or_look_alike_redirect_uri_is_never_redirected_to(gw, evil):
    c = client(gw)
    b, r = start(gw, c, redirect_uri=evil)
    assert_error_page(r)


def test_a_loopback_redirect_uri_may_use_any_port(gw):
    """RFC 8252 §7.3."""
    c = client(gw)
    b, r = start(gw, c, redirect_uri="http://127.0.0.1:40001/callback")
    assert r.status_code in (302, 303)
    assert "/consent" in r.headers["Location"]


def test_a_repeated_client_id_is_refused_on_a_page(gw):
    c = client(gw)
    url = c.authorize_url() + "&client_id=" + c.client_id
    r = browser(gw).get(url)
    assert_error_page(r)


def test_the_gateway_is_no_open_redirector(gw):
    """RFC 9700 §4.11.2: anyone can register https://phish.example/cb and send a
    user to /authorize with a deliberately bad parameter; the gateway shows a
    page naming the error and where the link goes, and sends nobody there."""
    c = McpOAuthClient(gw.url, redirect_uri="https://phish.example/cb")
    c.register()
    for bad in ({"response_type": None}, {"scope": "no-such-scope"}, {"code_challenge_method": "plain"}):
        url = c.authorize_url()
        for k, v in bad.items():
            q = query_of(url)
            if v is None:
                q.pop(k)
            else:
                q[k] = v
            url = url.split("?")[0] + "?" + urlencode(q)
        r = browser(gw).get(url)
        assert r.status_code == 400, (bad, r.status_code)
        assert "Location" not in r.headers, bad
        assert "phish.example" in r.text
        assert return_link(r.text).startswith("https://phish.example/cb?error=")


def test_errors_go_back_automatically_once_the_user_approved_and_logged_in(gw):
    c = client(gw)
    b = browser(gw)
    c.exchange(b.authorize(c.authorize_url(), c.redirect_uri, remember=True))
    r = b.get(c.authorize_url(scope="no-such-scope"))
    assert r.status_code == 303
    loc = r.headers["Location"]
    assert loc.startswith(c.redirect_uri)
    assert query_of(loc)["error"] == "invalid_scope"
    # another browser, which never approved the client, gets the page
    assert "Location" not in browser(gw).get(c.authorize_url(scope="no-such-scope")).headers


def test_a_long_state_is_refused_and_not_echoed(gw):
    c = client(gw)
    r = browser(gw).get(c.authorize_url(state="s" * 513))
    assert r.status_code == 400
    q = query_of(return_link(r.text))
    assert q["error"] == "invalid_request" and "state" not in q


def test_missing_pkce_is_refused_back_to_the_client(gw):
    c = client(gw)
    url = c.authorize_url().replace("code_challenge=", "x_code_challenge=")
    r = browser(gw).get(url)
    assert_redirect_error(r, c, "invalid_request")


def test_plain_pkce_is_refused(gw):
    c = client(gw)
    b, r = start(gw, c, code_challenge_method="plain")
    assert_redirect_error(r, c, "invalid_request")


def test_response_type_token_is_unsupported(gw):
    c = client(gw)
    b, r = start(gw, c, response_type="token")
    assert_redirect_error(r, c, "unsupported_response_type")


def test_an_unknown_scope_is_invalid_scope(gw):
    c = client(gw)
    b, r = start(gw, c, scope="snippets:read admin")
    assert_redirect_error(r, c, "invalid_scope")


def test_a_foreign_resource_is_invalid_target(gw):
    """RFC 8707 §2."""
    c = client(gw)
    b, r = start(gw, c, resource="https://other.example/mcp")
    assert_redirect_error(r, c, "invalid_target")


@pytest.mark.parametrize("variant", ["{url}/mcp", "{url}/mcp/", "HTTP://127.0.0.1:{port}/mcp"])
def test_our_resource_is_accepted_with_a_trailing_slash_or_other_case(gw, variant):
    c = client(gw)
    b, r = start(gw, c, resource=variant.format(url=gw.url, port=gw.port))
    assert r.status_code in (302, 303)
    assert "/consent" in r.headers["Location"]


# --- consent ----------------------------------------------------------------------

def consent_page(gw, c, b=None):
    b, r = start(gw, c, b)
    loc = r.headers["Location"]
    page = b.get(loc if loc.startswith("http") else gw.url + loc)
    assert page.status_code == 200
    return b, page


def test_consent_deny_sends_access_denied_to_the_client(gw):
    c = client(gw)
    b, page = consent_page(gw, c)
    r = b.approve(page, decision="deny")
    assert_redirect_error(r, c, "access_denied")


def test_a_consent_post_without_its_csrf_token_is_forbidden(gw):
    c = client(gw)
    b, page = consent_page(gw, c)
    form = parse_forms(page.text)[0]
    data = {k: v for k, v in form["fields"].items() if "csrf" not in k}
    data["decision"] = "allow"
    r = b.session.post(gw.url + "/consent", data=data, allow_redirects=False, timeout=5,
                       headers={"Origin": gw.url})
    assert r.status_code == 403
    assert "Location" not in r.headers


def test_a_cross_site_consent_post_is_forbidden(gw):
    c = client(gw)
    b, page = consent_page(gw, c)
    r = b.approve(page, extra_headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403


def test_a_consent_post_from_another_origin_is_forbidden(gw):
    c = client(gw)
    b, page = consent_page(gw, c)
    r = b.approve(page, extra_headers={"Origin": "https://evil.example"})
    assert r.status_code == 403


def test_a_consent_post_from_another_browser_is_forbidden(gw):
    """The CSRF token is bound to the browser that saw the page."""
    c = client(gw)
    b, page = consent_page(gw, c)
    other = browser(gw)
    r = other.approve(page)
    assert r.status_code == 403


def test_an_unknown_consent_request_is_an_error_page(gw):
    r = browser(gw).get(gw.url + "/consent?authz=nope")
    assert_error_page(r)


# --- callback ------------------------------------------------------------------------

def test_a_callback_with_an_unknown_state_is_an_error_page(gw):
    r = browser(gw).get(gw.url + "/oauth-callback?code=abc&state=forged")
    assert_error_page(r)


def provider_redirect(gw, c):
    """Consent given; returns (browser, the 302 to the provider)."""
    b, page = consent_page(gw, c)
    r = b.approve(page)
    assert r.status_code in (302, 303)
    assert r.headers["Location"].startswith(gw.issuer)
    return b, r


def test_a_callback_in_another_browser_is_refused(gw):
    """The provider's state is bound to the browser that started the login."""
    c = client(gw)
    b, r = provider_redirect(gw, c)
    state = query_of(r.headers["Location"])["state"]
    other = browser(gw)
    r = other.get(gw.url + "/oauth-callback?" + urlencode({"code": "x", "state": state}))
    assert_error_page(r)


def test_a_provider_error_is_passed_to_the_client_as_access_denied(gw):
    c = client(gw)
    b, r = provider_redirect(gw, c)
    state = query_of(r.headers["Location"])["state"]
    r = b.get(gw.url + "/oauth-callback?" + urlencode({"error": "access_denied", "state": state}))
    assert_redirect_error(r, c, "access_denied")


# --- token ----------------------------------------------------------------------------

def code_for(gw, c):
    return browser(gw).authorize(c.authorize_url(), c.redirect_uri)


def test_a_wrong_code_verifier_is_invalid_grant(gw):
    c = client(gw)
    r = c.exchange(code_for(gw, c), verifier=pkce_pair()[0])
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


def test_a_replayed_code_fails_and_revokes_what_it_issued(gw):
    """OAuth 2.1 §4.1.3, RFC 9700 §4.5.3.1."""
    c = client(gw)
    redirect = code_for(gw, c)
    first = c.exchange(redirect)
    assert first.status_code == 200
    tokens = first.json()
    again = c.exchange(redirect)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    r = c.refresh(tokens["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


WRONG_VERIFIER = "wrong-verifier-" * 3 + "x"


def _steal(gw, c, redirect, attack):
    """Someone who saw the redirect (the code) but is not the rightful client."""
    code = query_of(redirect)["code"]
    if attack == "wrong verifier":
        return c.token_request({"grant_type": "authorization_code", "code": code,
                                "redirect_uri": c.redirect_uri, "code_verifier": WRONG_VERIFIER})
    if attack == "another client":
        thief = client(gw)
        return thief.token_request({"grant_type": "authorization_code", "code": code,
                                    "redirect_uri": c.redirect_uri, "code_verifier": c.verifier})
    assert attack == "another redirect_uri"
    return c.token_request({"grant_type": "authorization_code", "code": code,
                            "redirect_uri": "http://127.0.0.1:33418/other",
                            "code_verifier": c.verifier})


@pytest.mark.parametrize("attack", ["wrong verifier", "another client", "another redirect_uri"])
def test_a_leaked_code_cannot_be_burnt_by_someone_who_cannot_redeem_it(gw, attack):
    """RFC 9700 §4.5: only a presentation that would succeed consumes the code."""
    c = client(gw)
    redirect = code_for(gw, c)
    r = _steal(gw, c, redirect, attack)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_grant"
    mine = c.exchange(redirect)
    assert mine.status_code == 200, mine.text
    assert c.refresh().status_code == 200


def test_a_failed_theft_of_a_used_code_changes_nothing_but_a_rightful_replay_revokes(gw):
    """OAuth 2.1 §4.1.3: a replay by the code's own client ends the session."""
    c = client(gw)
    redirect = code_for(gw, c)
    assert c.exchange(redirect).status_code == 200
    for attack in ("wrong verifier", "another client", "another redirect_uri"):
        r = _steal(gw, c, redirect, attack)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", (attack, r.text)
    assert c.refresh().status_code == 200          # the session is untouched
    again = c.exchange(redirect)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    r = c.refresh()
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_a_code_is_bound_to_its_client(gw):
    c = client(gw)
    redirect = code_for(gw, c)
    thief = client(gw)
    thief.state = c.state
    thief.verifier = c.verifier
    r = thief.exchange(redirect)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


def test_a_code_is_bound_to_its_redirect_uri(gw):
    c = client(gw)
    redirect = code_for(gw, c)
    r = c.token_request({"grant_type": "authorization_code", "code": query_of(redirect)["code"],
                         "redirect_uri": "http://127.0.0.1:33418/other",
                         "code_verifier": c.verifier})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


def test_an_unknown_client_at_the_token_endpoint_is_invalid_client(gw):
    r = requests.post(gw.url + "/token", data={"grant_type": "authorization_code", "code": "x",
                                               "client_id": "nobody", "code_verifier": "v" * 43,
                                               "redirect_uri": REDIRECT}, timeout=5)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"


def test_a_confidential_client_with_a_wrong_secret_is_invalid_client(gw):
    c = McpOAuthClient(gw.url, redirect_uri=REDIRECT, public=False)
    c.register()
    c.login(browser(gw))
    c.client_secret = "wrong"
    r = c.refresh()
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"


@pytest.mark.parametrize("data,error", [
    ({}, "invalid_request"),
    ({"grant_type": "password", "username": "u", "password": "p"}, "unsupported_grant_type"),
    # a registered client: the grant is for the example's service clients only
    ({"grant_type": "client_credentials"}, "unauthorized_client"),
    ({"grant_type": "authorization_code"}, "invalid_request"),
    ({"grant_type": "refresh_token"}, "invalid_request"),
    ({"grant_type": "refresh_token", "refresh_token": "k1.AAAA"}, "invalid_grant"),
])
def test_malformed_token_requests_get_their_rfc_6749_error(gw, data, error):
    c = client(gw)
    r = requests.post(gw.url + "/token", data=dict(data, client_id=c.client_id), timeout=5)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == error
    assert r.headers["Cache-Control"] == "no-store"


def test_a_json_token_request_is_invalid_request(gw):
    c = client(gw)
    r = requests.post(gw.url + "/token", json={"grant_type": "refresh_token",
                                               "client_id": c.client_id}, timeout=5)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


def test_a_tampered_refresh_token_is_invalid_grant(gw):
    c = client(gw)
    tokens = c.login(browser(gw))
    rt = tokens["refresh_token"]
    tampered = rt[:-2] + ("A" if rt[-2] != "A" else "B") + rt[-1]
    r = c.refresh(tampered)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_an_access_token_is_not_a_refresh_token(gw):
    c = client(gw)
    tokens = c.login(browser(gw))
    r = c.refresh(tokens["access_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_a_refresh_token_of_another_client_is_invalid_grant(gw):
    a = client(gw)
    tokens = a.login(browser(gw))
    b = client(gw)
    r = b.refresh(tokens["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


# --- the provider misbehaving ------------------------------------------------------------

def test_a_provider_that_fails_at_its_token_endpoint_is_reported_to_the_client(gw):
    c = client(gw)
    b, r = provider_redirect(gw, c)
    set_faults(gw.issuer, token_status=500)
    try:
        from idp_util import provider_login
        back = provider_login(b.session, r.headers["Location"], "demo", gw.demo_password)
        r = b.get(back.headers["Location"])
    finally:
        set_faults(gw.issuer, reset=True)
    assert_redirect_error(r, c, "server_error")


def test_a_provider_that_is_down_gets_a_clear_502_page(gw):
    c = client(gw)
    b, r = provider_redirect(gw, c)
    set_faults(gw.issuer, down=True)
    try:
        from idp_util import provider_login
        back = provider_login(b.session, r.headers["Location"], "demo", gw.demo_password)
        r = b.get(back.headers["Location"])
    finally:
        set_faults(gw.issuer, reset=True)
    assert_error_page(r, 502)
    assert "identity provider" in r.text


# --- state across reload --------------------------------------------------------------------

def test_sessions_survive_a_reload(gw):
    c = client(gw)
    c.login(browser(gw))
    gw.nginx.reload()
    time.sleep(0.5)
    r = c.refresh()
    assert r.status_code == 200, r.text


# --- the https server of the example -----------------------------------------------------

def test_the_https_server_runs_the_whole_flow_with_host_prefixed_secure_cookies(gw):
    ca = str(gw.workdir / "tls.crt")
    c = McpOAuthClient(gw.tls_url, redirect_uri=REDIRECT, verify=ca)
    assert c.metadata["issuer"] == gw.tls_url
    c.register()
    b = browser(gw)
    b.session.verify = ca
    b.session.trust_env = False     # else REQUESTS_CA_BUNDLE overrides verify
    tokens = c.login(b)
    assert tokens["access_token"]
    host_cookies = [ck for ck in b.session.cookies if ck.name.startswith("__Host-")]
    assert host_cookies, [ck.name for ck in b.session.cookies]
    for ck in host_cookies:
        assert ck.secure and ck.path == "/"
    # a token of one server is not valid on the other
    from mcp_gateway import Streamable, rpc
    assert Streamable(gw.url, tokens["access_token"]).post(rpc("ping")).status_code == 401
