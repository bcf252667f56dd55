"""RFC 8693 token exchange at the development provider (t/idp/dev-idp.mjs),
and the downstream API (t/downstream_api.mjs) that takes the tokens it issues.

Everything is real: the provider, a user signed in at its login form by the
gateway's static client, and the downstream API fetching the provider's JWKS.
"""

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from downstream_util import start_downstream_api
from harness import NODE
from idp_util import (ACCESS_TOKEN_TYPE, DEFAULT_EXCHANGE_AUDIENCE, DEFAULT_EXCHANGE_SCOPES, IDP_SCRIPT,
                      TOKEN_EXCHANGE_GRANT, discovery, exchange_stats, jwt_unverified, pkce_pair, provider_login,
                      revoke_all_grants, set_exchange_faults, set_faults, start_idp, stats, token_exchange,
                      user_tokens)

OTHER_CLIENT = {"client_id": "other-gw", "client_secret": "other-gw-secret",
                "redirect_uris": ["http://127.0.0.1:9/other-callback"]}
AUDIENCES = {"downstream-api": list(DEFAULT_EXCHANGE_SCOPES), "other-api": ["other:read"]}


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    """The provider with the default audience, one more, and a second static client."""
    workdir = tmp_path_factory.mktemp("idp-exchange")
    (workdir / "clients.json").write_text(json.dumps({"clients": [OTHER_CLIENT]}))
    proc, issuer, info = start_idp(workdir, config=workdir / "clients.json", exchange_audience=AUDIENCES)
    yield issuer, info, proc
    proc.stop()


@pytest.fixture(scope="module")
def api(idp, tmp_path_factory):
    """The downstream API for downstream-api, any scope, 1 s of leeway."""
    with start_downstream_api(tmp_path_factory.mktemp("downstream"), idp[0], "downstream-api", leeway=1) as a:
        yield a


@pytest.fixture(scope="module")
def write_api(idp, tmp_path_factory):
    """The downstream API for downstream-api that demands downstream:write."""
    with start_downstream_api(tmp_path_factory.mktemp("downstream-w"), idp[0], "downstream-api",
                              require_scope="downstream:write") as a:
        yield a


@pytest.fixture(scope="module")
def short_idp(tmp_path_factory):
    """Short lifetimes (user access tokens 3 s, exchanged tokens 1 s),
    client_secret_post, and only the audience reports-api."""
    proc, issuer, info = start_idp(tmp_path_factory.mktemp("idp-short"), access_token_ttl=3, exchange_ttl=1,
                                   token_endpoint_auth_method="client_secret_post",
                                   exchange_audience=["reports-api=reports:read reports:list"])
    yield issuer, info, proc
    proc.stop()


@pytest.fixture(autouse=True)
def _no_faults(request):
    yield
    if "idp" in request.fixturenames:
        set_faults(request.getfixturevalue("idp")[0], reset=True)


def access_token(issuer, info, login="demo"):
    return user_tokens(issuer, info, login=login)["access_token"]


def exchanged(issuer, info, login="demo", **kw):
    """A user's access token and the answer of a successful exchange of it."""
    subject = access_token(issuer, info, login)
    r = token_exchange(issuer, subject, **kw)
    assert r.status_code == 200, r.text
    return subject, r.json()


def assert_oauth_error(r, status, error):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json()["error"] == error, r.text
    assert "no-store" in r.headers.get("Cache-Control", "")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header, payload, signature=b""):
    return "%s.%s.%s" % (b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature))


# ------------------------------------------------------------------ the provider


def test_an_exchange_gives_a_signed_at_jwt_for_the_audience_on_behalf_of_the_user(idp, api):
    issuer, info, _ = idp
    tokens = user_tokens(issuer, info, login="alice")
    t0 = int(time.time())
    r = token_exchange(issuer, tokens["access_token"], audience="downstream-api")
    assert r.status_code == 200, r.text
    assert "no-store" in r.headers["Cache-Control"]
    body = r.json()
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    assert body["scope"] == "downstream:read downstream:write"
    assert "refresh_token" not in body and "id_token" not in body

    header, claims = jwt_unverified(body["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "RS256"
    published = {k["kid"]: k for k in requests.get(discovery(issuer)["jwks_uri"], timeout=10).json()["keys"]}
    assert published[header["kid"]]["kty"] == "RSA"
    id_sub = jwt_unverified(tokens["id_token"])[1]["sub"]
    assert claims["sub"] == id_sub == "user-alice"
    assert claims["iss"] == issuer and claims["aud"] == "downstream-api"
    assert claims["azp"] == claims["client_id"] == info["client_id"]
    assert claims["act"] == {"sub": info["client_id"]}
    assert claims["scope"] == body["scope"]
    assert t0 - 2 <= claims["iat"] <= t0 + 5 and claims["exp"] - claims["iat"] == 300
    assert len(claims["jti"]) >= 16

    # the downstream API verifies it against the JWKS and sees the same
    w = api.whoami(body["access_token"])
    assert w.status_code == 200, w.text
    assert w.json() == {"sub": "user-alice", "aud": "downstream-api", "scope": "downstream:read downstream:write",
                        "azp": info["client_id"], "client_id": info["client_id"], "act": {"sub": info["client_id"]},
                        "iss": issuer, "exp": claims["exp"]}

    # a second exchange of the same subject token is a new token
    again = token_exchange(issuer, tokens["access_token"], requested_token_type=ACCESS_TOKEN_TYPE)
    assert again.status_code == 200, again.text
    assert jwt_unverified(again.json()["access_token"])[1]["jti"] != claims["jti"]


def test_discovery_lists_the_grant(idp):
    assert TOKEN_EXCHANGE_GRANT in discovery(idp[0])["grant_types_supported"]


def test_scope_narrows_to_a_subset_of_the_audience_scopes(idp, api, write_api):
    issuer, info, _ = idp
    _, body = exchanged(issuer, info, scope="downstream:read")
    assert body["scope"] == "downstream:read"
    assert jwt_unverified(body["access_token"])[1]["scope"] == "downstream:read"
    assert api.whoami(body["access_token"]).json()["scope"] == "downstream:read"
    # asked for in another order and twice: the audience's order, once
    _, body = exchanged(issuer, info, scope="downstream:write downstream:read downstream:write")
    assert body["scope"] == "downstream:read downstream:write"
    # the other audience gets its own scopes
    _, body = exchanged(issuer, info, audience="other-api")
    assert body["scope"] == "other:read" and jwt_unverified(body["access_token"])[1]["aud"] == "other-api"


def test_an_unknown_or_missing_audience_is_refused(idp):
    issuer, info, _ = idp
    subject = access_token(issuer, info)
    assert_oauth_error(token_exchange(issuer, subject, audience="nowhere-api"), 400, "invalid_target")
    assert_oauth_error(token_exchange(issuer, subject, audience="downstream-api2"), 400, "invalid_target")
    assert_oauth_error(token_exchange(issuer, subject, audience=None), 400, "invalid_request")
    assert_oauth_error(token_exchange(issuer, subject, audience=None, resource="http://127.0.0.1:9/x"),
                       400, "invalid_target")
    assert token_exchange(issuer, subject).status_code == 200, "the same subject token is fine"


def test_a_scope_the_audience_does_not_allow_is_refused(idp):
    issuer, info, _ = idp
    subject = access_token(issuer, info)
    for scope in ("downstream:admin", "downstream:read downstream:admin", "other:read", "openid"):
        r = token_exchange(issuer, subject, scope=scope)
        assert_oauth_error(r, 400, "invalid_scope")
    r = token_exchange(issuer, subject, audience="other-api", scope="downstream:read")
    assert_oauth_error(r, 400, "invalid_scope")


def test_the_token_types_are_checked(idp):
    issuer, info, _ = idp
    tokens = user_tokens(issuer, info)
    subject = tokens["access_token"]
    assert_oauth_error(token_exchange(issuer, subject, subject_token_type="urn:ietf:params:oauth:token-type:jwt"),
                       400, "invalid_request")
    assert_oauth_error(token_exchange(issuer, subject, subject_token_type=None), 400, "invalid_request")
    assert_oauth_error(token_exchange(issuer, None), 400, "invalid_request")
    assert_oauth_error(token_exchange(issuer, subject,
                                      requested_token_type="urn:ietf:params:oauth:token-type:refresh_token"),
                       400, "invalid_request")
    assert_oauth_error(token_exchange(issuer, subject, actor_token=subject, actor_token_type=ACCESS_TOKEN_TYPE),
                       400, "invalid_request")
    # a refresh token or an ID token is not an access token of this provider
    assert_oauth_error(token_exchange(issuer, tokens["refresh_token"]), 400, "invalid_grant")
    assert_oauth_error(token_exchange(issuer, tokens["id_token"]), 400, "invalid_grant")


def test_a_bad_revoked_or_other_clients_subject_token_is_invalid_grant(idp):
    issuer, info, _ = idp
    assert_oauth_error(token_exchange(issuer, "not-a-token-of-this-provider"), 400, "invalid_grant")
    # a token the provider issued to another static client, for the same user
    other_info = dict(OTHER_CLIENT, passwords=info["passwords"])
    other = user_tokens(issuer, other_info)["access_token"]
    r = token_exchange(issuer, other)
    assert_oauth_error(r, 400, "invalid_grant")
    assert "another client" in r.json()["error_description"]
    # ... which that client may exchange itself
    r = token_exchange(issuer, other, client_id=OTHER_CLIENT["client_id"],
                       client_secret=OTHER_CLIENT["client_secret"])
    assert r.status_code == 200, r.text
    assert jwt_unverified(r.json()["access_token"])[1]["act"] == {"sub": "other-gw"}
    # a revoked grant takes its access tokens with it
    subject = access_token(issuer, info)
    assert token_exchange(issuer, subject).status_code == 200
    revoke_all_grants(issuer)
    assert_oauth_error(token_exchange(issuer, subject), 400, "invalid_grant")


def test_client_authentication_is_required_and_checked(idp):
    issuer, info, _ = idp
    subject = access_token(issuer, info)
    assert_oauth_error(token_exchange(issuer, subject, client_secret="wrong"), 401, "invalid_client")
    assert_oauth_error(token_exchange(issuer, subject, client_id="nobody"), 401, "invalid_client")
    r = requests.post(issuer + "/token", timeout=10, data={
        "grant_type": TOKEN_EXCHANGE_GRANT, "subject_token": subject, "subject_token_type": ACCESS_TOKEN_TYPE,
        "audience": "downstream-api", "client_id": info["client_id"]})
    assert_oauth_error(r, 401, "invalid_client")
    assert token_exchange(issuer, subject).status_code == 200


def test_the_refuse_fault(idp):
    issuer, info, _ = idp
    subject = access_token(issuer, info)
    assert set_exchange_faults(issuer, refuse=True)["exchange_refuse"] == "invalid_grant"
    r = token_exchange(issuer, subject)
    assert_oauth_error(r, 400, "invalid_grant")
    assert "fault injection" in r.json()["error_description"]
    set_exchange_faults(issuer, refuse="access_denied")
    assert_oauth_error(token_exchange(issuer, subject), 400, "access_denied")
    # client authentication and the request's own errors come first
    assert_oauth_error(token_exchange(issuer, subject, client_secret="wrong"), 401, "invalid_client")
    assert_oauth_error(token_exchange(issuer, subject, audience="nowhere"), 400, "invalid_target")
    # other grants are untouched
    refresh = user_tokens(issuer, info)["refresh_token"]
    r = requests.post(issuer + "/token", auth=(info["client_id"], info["client_secret"]), timeout=10,
                      data={"grant_type": "refresh_token", "refresh_token": refresh})
    assert r.status_code == 200, r.text
    r = requests.post(issuer + "/__test/faults", json={"exchange_refuse": "server_error"}, timeout=10)
    assert r.status_code == 400
    set_exchange_faults(issuer, refuse=False)
    assert token_exchange(issuer, subject).status_code == 200


def test_the_status_fault_answers_exchanges_only(idp):
    issuer, info, _ = idp
    tokens = user_tokens(issuer, info)
    set_exchange_faults(issuer, status=503)
    assert_oauth_error(token_exchange(issuer, tokens["access_token"]), 503, "temporarily_unavailable")
    r = requests.post(issuer + "/token", auth=(info["client_id"], info["client_secret"]), timeout=10,
                      data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200, r.text
    set_exchange_faults(issuer, status=0)
    assert token_exchange(issuer, tokens["access_token"]).status_code == 200


def test_the_delay_fault_keeps_exchanges_in_flight_and_stats_show_them(idp):
    issuer, info, _ = idp
    subject = access_token(issuer, info)
    requests.post(issuer + "/__test/reset-stats", timeout=10).raise_for_status()
    set_exchange_faults(issuer, delay_ms=1500)
    results = []

    def call():
        results.append(token_exchange(issuer, subject, timeout=20))

    t0 = time.monotonic()
    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while exchange_stats(issuer)["in_flight"] < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    during = exchange_stats(issuer)
    assert during["in_flight"] == 5 and during["issued"] == 0, during
    # other token requests are not delayed
    r = requests.post(issuer + "/token", auth=(info["client_id"], info["client_secret"]), timeout=1,
                      data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert r.status_code == 400
    for t in threads:
        t.join(20)
    assert time.monotonic() - t0 >= 1.4
    assert [r.status_code for r in results] == [200] * 5
    after = exchange_stats(issuer)
    assert after["in_flight"] == 0 and after["max_in_flight"] == 5
    assert after["issued"] == 5 and after["requests"] == 5 and after["refused"] == {}


def test_stats_count_every_exchange_by_outcome(idp):
    issuer, info, _ = idp
    subject = access_token(issuer, info)
    before = exchange_stats(issuer)
    before_total = stats(issuer)["token_total"]
    token_exchange(issuer, subject)
    token_exchange(issuer, subject, audience="other-api")
    token_exchange(issuer, subject, audience="nowhere")
    token_exchange(issuer, "bogus")
    token_exchange(issuer, subject, client_secret="wrong")
    after = exchange_stats(issuer)
    assert after["requests"] == before["requests"] + 5
    assert stats(issuer)["token_total"] == before_total + 5
    assert after["issued"] == before["issued"] + 2
    for aud in ("downstream-api", "other-api"):
        assert after["audiences"][aud] == before["audiences"].get(aud, 0) + 1
    for error in ("invalid_target", "invalid_grant", "invalid_client"):
        assert after["refused"][error] == before["refused"].get(error, 0) + 1, error


def test_the_audiences_and_lifetime_flags(short_idp):
    issuer, info, _ = short_idp
    subject = user_tokens(issuer, info)["access_token"]
    # client_secret_post (oidc-provider takes the secret in either place for
    # both secret methods, at every grant)
    post = {"client_id": info["client_id"], "client_secret": info["client_secret"]}
    data = {"grant_type": TOKEN_EXCHANGE_GRANT, "subject_token": subject, "subject_token_type": ACCESS_TOKEN_TYPE,
            "audience": "reports-api"}
    r = requests.post(issuer + "/token", data=dict(data, **post), timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == "reports:read reports:list" and body["expires_in"] == 1
    claims = jwt_unverified(body["access_token"])[1]
    assert claims["exp"] - claims["iat"] == 1
    r = requests.post(issuer + "/token", data=dict(data, client_id=info["client_id"], client_secret="wrong"),
                      timeout=10)
    assert_oauth_error(r, 401, "invalid_client")
    # --exchange-audience replaced the default one
    r = requests.post(issuer + "/token", data=dict(data, audience=DEFAULT_EXCHANGE_AUDIENCE, **post), timeout=10)
    assert_oauth_error(r, 400, "invalid_target")


def test_an_expired_subject_token_is_invalid_grant(short_idp):
    issuer, info, _ = short_idp
    subject = user_tokens(issuer, info)["access_token"]
    post = {"client_id": info["client_id"], "client_secret": info["client_secret"]}
    data = dict(post, grant_type=TOKEN_EXCHANGE_GRANT, subject_token=subject, subject_token_type=ACCESS_TOKEN_TYPE,
                audience="reports-api")
    assert requests.post(issuer + "/token", data=data, timeout=10).status_code == 200
    time.sleep(3.5)
    # (oidc-provider itself would still take it for its 15 s of clock tolerance)
    r = requests.post(issuer + "/token", data=data, timeout=10)
    assert_oauth_error(r, 400, "invalid_grant")
    assert "expired" in r.json()["error_description"]


@pytest.mark.parametrize("spec", ["downstream-api", "=downstream:read", "downstream-api=", "a b=x"])
def test_a_bad_exchange_audience_flag_stops_the_provider(spec):
    r = subprocess.run([NODE, str(IDP_SCRIPT), "--port", "0", "--exchange-audience", spec],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "--exchange-audience" in r.stderr, r.stderr
    r = subprocess.run([NODE, str(IDP_SCRIPT), "--port", "0", "--exchange-ttl", "0"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "--exchange-ttl" in r.stderr


# ------------------------------------------------------------------ the downstream API


def test_the_downstream_api_wants_a_bearer_token(api):
    before = api.stats()["whoami"]["missing_token"]
    for headers in ({}, {"Authorization": "Basic dXNlcjpwdw=="}, {"Authorization": "Bearer"}):
        r = requests.get(api.url + "/whoami", headers=headers, timeout=10)
        assert r.status_code == 401 and r.json()["error"] == "invalid_token"
        # RFC 6750 §3.1: no error code when no token came
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="downstream-api"'
    assert api.stats()["whoami"]["missing_token"] == before + 3
    r = requests.get(api.url + "/elsewhere", timeout=10)
    assert r.status_code == 404 and r.json() == {"error": "not_found"}
    assert requests.post(api.url + "/whoami", timeout=10).status_code == 404


def refused(api, token, reason_prefix, status=401, error="invalid_token"):
    """The API refuses `token` with `error`, counting it under a reason that
    starts with reason_prefix."""
    before = api.stats()
    r = api.whoami(token)
    assert r.status_code == status, r.text
    assert r.json()["error"] == error
    challenge = r.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="downstream-api", error="%s", error_description="' % error), challenge
    after = api.stats()
    assert after["whoami"][error] == before["whoami"][error] + 1
    assert after["whoami"]["ok"] == before["whoami"]["ok"]
    if error == "invalid_token":
        grown = [k for k, v in after["invalid_token_reasons"].items()
                 if v > before["invalid_token_reasons"].get(k, 0)]
        assert len(grown) == 1 and grown[0].startswith(reason_prefix), (grown, reason_prefix)
    return r


def test_the_downstream_api_refuses_a_token_for_another_audience(idp, api):
    issuer, info, _ = idp
    _, body = exchanged(issuer, info, audience="other-api")
    refused(api, body["access_token"], "ERR_JWT_CLAIM_VALIDATION_FAILED:aud")


def test_the_downstream_api_refuses_a_tampered_token(idp, api):
    issuer, info, _ = idp
    _, body = exchanged(issuer, info)
    token = body["access_token"]
    assert api.whoami(token).status_code == 200
    h, p, s = token.split(".")
    sig = bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    sig[10] ^= 0x01
    refused(api, "%s.%s.%s" % (h, p, b64(bytes(sig))), "ERR_JWS_SIGNATURE_VERIFICATION_FAILED")
    # another user's sub under the original signature
    _, claims = jwt_unverified(token)
    other = b64(json.dumps(dict(claims, sub="user-outsider")).encode())
    refused(api, "%s.%s.%s" % (h, other, s), "ERR_JWS_SIGNATURE_VERIFICATION_FAILED")


def test_the_downstream_api_refuses_unsigned_and_hmac_forgeries(idp, api):
    issuer, info, _ = idp
    _, body = exchanged(issuer, info)
    header, claims = jwt_unverified(body["access_token"])
    refused(api, forge({"alg": "none", "typ": "at+jwt"}, claims), "ERR_JOSE_ALG_NOT_ALLOWED")
    # HS256 keyed with the provider's public RSA key, a classic confusion attack
    jwk = next(k for k in requests.get(issuer + "/jwks", timeout=10).json()["keys"] if k["kid"] == header["kid"])
    for secret in (json.dumps(jwk).encode(), jwk["n"].encode(), b"secret"):
        h = {"alg": "HS256", "typ": "at+jwt", "kid": header["kid"]}
        unsigned = "%s.%s" % (b64(json.dumps(h).encode()), b64(json.dumps(claims).encode()))
        mac = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()
        refused(api, unsigned + "." + b64(mac), "ERR_JOSE_ALG_NOT_ALLOWED")


def test_the_downstream_api_refuses_id_tokens_and_tokens_of_another_issuer(idp, short_idp, api):
    issuer, info, _ = idp
    tokens = user_tokens(issuer, info)
    # an ID token is signed by the same key but is no access token (typ)
    refused(api, tokens["id_token"], "ERR_JWT_CLAIM_VALIDATION_FAILED:typ")
    # a token exchanged at another provider, for an audience of the same name
    s_issuer, s_info, _ = short_idp
    subject = user_tokens(s_issuer, s_info)["access_token"]
    r = requests.post(s_issuer + "/token", timeout=10, data={
        "grant_type": TOKEN_EXCHANGE_GRANT, "subject_token": subject, "subject_token_type": ACCESS_TOKEN_TYPE,
        "audience": "reports-api", "client_id": s_info["client_id"], "client_secret": s_info["client_secret"]})
    assert r.status_code == 200, r.text
    refused(api, r.json()["access_token"], "ERR_JWKS_NO_MATCHING_KEY")


def test_the_downstream_api_refuses_an_expired_token(short_idp, tmp_path):
    issuer, info, _ = short_idp
    subject = user_tokens(issuer, info)["access_token"]
    r = requests.post(issuer + "/token", timeout=10, data={
        "grant_type": TOKEN_EXCHANGE_GRANT, "subject_token": subject, "subject_token_type": ACCESS_TOKEN_TYPE,
        "audience": "reports-api", "client_id": info["client_id"], "client_secret": info["client_secret"]})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    exp = jwt_unverified(token)[1]["exp"]
    with start_downstream_api(tmp_path, issuer, "reports-api", leeway=1) as strict, \
            start_downstream_api(tmp_path, issuer, "reports-api", leeway=600) as lenient:
        time.sleep(max(0.0, exp + 1.5 - time.time()))
        r = strict.whoami(token)
        assert r.status_code == 401 and r.json()["error"] == "invalid_token"
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
        assert strict.stats()["invalid_token_reasons"] == {"ERR_JWT_EXPIRED": 1}
        # the very same token, only expired: accepted with a leeway beyond its exp
        r = lenient.whoami(token)
        assert r.status_code == 200 and r.json()["sub"] == "user-demo", r.text


def test_the_downstream_api_requires_its_scope_when_asked(idp, write_api):
    issuer, info, _ = idp
    _, body = exchanged(issuer, info, scope="downstream:read")
    r = refused(write_api, body["access_token"], None, status=403, error="insufficient_scope")
    assert 'scope="downstream:write"' in r.headers["WWW-Authenticate"]
    _, body = exchanged(issuer, info, scope="downstream:write")
    r = write_api.whoami(body["access_token"])
    assert r.status_code == 200 and r.json()["scope"] == "downstream:write"


def test_the_downstream_api_fetches_the_jwks_once_and_stops_on_sigterm(idp, tmp_path):
    issuer, info, _ = idp
    api = start_downstream_api(tmp_path, issuer, "downstream-api")
    try:
        for _ in range(3):
            _, body = exchanged(issuer, info)
            assert api.whoami(body["access_token"]).status_code == 200
        st = api.stats()
        assert st["jwks_fetches"] == 1 and st["whoami"]["ok"] == 3
        log = api.log()
        assert "GET /whoami 200" in log and body["access_token"] not in log
    finally:
        t0 = time.monotonic()
        assert api.proc.stop(sig=signal.SIGTERM) == 0
        assert time.monotonic() - t0 < 3
    with pytest.raises(requests.ConnectionError):
        requests.get(api.url + "/__test/stats", timeout=2)


def test_the_downstream_api_answers_503_when_the_jwks_is_unreachable(idp, tmp_path):
    issuer, info, _ = idp
    _, body = exchanged(issuer, info)
    # a port nothing listens on: the API's own, once stopped
    probe = start_downstream_api(tmp_path, issuer, "downstream-api")
    dead = probe.url + "/jwks"
    probe.stop()
    with start_downstream_api(tmp_path, issuer, "downstream-api", jwks_uri=dead) as a:
        r = a.whoami(body["access_token"])
        assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable"
        assert a.stats()["whoami"]["jwks_unavailable"] == 1


def test_a_private_key_jwt_client_exchanges_with_a_signed_assertion(tmp_path):
    ec = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ec")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    key = ec.generate_private_key(ec.SECP256R1())
    pub = key.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "kid": "k1", "x": b64(pub.x.to_bytes(32, "big")),
           "y": b64(pub.y.to_bytes(32, "big"))}
    (tmp_path / "client-jwks.json").write_text(json.dumps({"keys": [jwk]}))
    proc, issuer, info = start_idp(tmp_path, client_id="pkj", token_endpoint_auth_method="private_key_jwt",
                                   client_jwks_file=tmp_path / "client-jwks.json")

    def assertion():
        now = int(time.time())
        h = b64(json.dumps({"alg": "ES256", "kid": "k1", "typ": "JWT"}).encode())
        p = b64(json.dumps({"iss": "pkj", "sub": "pkj", "aud": issuer, "iat": now, "exp": now + 60,
                            "jti": b64(os.urandom(12))}).encode())
        r_, s_ = decode_dss_signature(key.sign((h + "." + p).encode(), ec.ECDSA(hashes.SHA256())))
        return {"client_id": "pkj", "client_assertion": h + "." + p + "." + b64(r_.to_bytes(32, "big")
                                                                               + s_.to_bytes(32, "big")),
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}

    try:
        verifier, challenge = pkce_pair()
        params = {"response_type": "code", "client_id": "pkj", "redirect_uri": info["redirect_uris"][0],
                  "scope": "openid", "state": "s", "nonce": "n", "code_challenge": challenge,
                  "code_challenge_method": "S256"}
        resp = provider_login(requests.Session(), issuer + "/auth?" + urlencode(params), "demo",
                              info["demo_password"])
        code = parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]
        r = requests.post(issuer + "/token", timeout=10, data=dict(assertion(), grant_type="authorization_code",
                                                                   code=code, code_verifier=verifier,
                                                                   redirect_uri=info["redirect_uris"][0]))
        assert r.status_code == 200, r.text
        exchange = {"grant_type": TOKEN_EXCHANGE_GRANT, "subject_token": r.json()["access_token"],
                    "subject_token_type": ACCESS_TOKEN_TYPE, "audience": "downstream-api"}
        r = requests.post(issuer + "/token", timeout=10, data=dict(exchange, **assertion()))
        assert r.status_code == 200, r.text
        assert jwt_unverified(r.json()["access_token"])[1]["act"] == {"sub": "pkj"}
        # without an assertion (or with a secret) the client is not authenticated
        r = requests.post(issuer + "/token", timeout=10, data=dict(exchange, client_id="pkj"))
        assert_oauth_error(r, 401, "invalid_client")
        r = requests.post(issuer + "/token", timeout=10, auth=("pkj", "mcp-gateway-dev-secret"), data=exchange)
        assert_oauth_error(r, 401, "invalid_client")
    finally:
        proc.stop()
