"""The development OpenID Connect provider (t/idp/dev-idp.mjs) really works."""

import json
import secrets
import signal
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from idp_util import (DEMO_TENANT_ID, OTHER_TENANT_ID, LoginRefused, discovery, jwt_unverified,
                      parse_logins, pkce_pair, provider_login, revoke_all_grants, set_faults,
                      set_user_claims, start_idp, stats)

SCOPE = "openid profile email offline_access"


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    proc, issuer, info = start_idp(tmp_path_factory.mktemp("idp"))
    yield issuer, info, proc
    proc.stop()


@pytest.fixture(autouse=True)
def _no_faults(request):
    yield
    if "idp" in request.fixturenames:
        issuer = request.getfixturevalue("idp")[0]
        set_faults(issuer, reset=True)


def authorize(issuer, info, login="demo", password=None, scope=SCOPE, **extra):
    """Run the browser part of the login; return (callback query, verifier, nonce, state)."""
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    params = {
        "response_type": "code", "client_id": info["client_id"],
        "redirect_uri": info["redirect_uris"][0], "scope": scope, "state": state,
        "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256",
    }
    params.update(extra)
    session = requests.Session()
    url = discovery(issuer)["authorization_endpoint"] + "?" + urlencode(params)
    resp = provider_login(session, url, login, password or info["demo_password"])
    assert resp.status_code in (302, 303)
    location = resp.headers["Location"]
    assert location.startswith(info["redirect_uris"][0] + "?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return query, verifier, nonce, state


def token_request(issuer, info, data, timeout=10):
    return requests.post(issuer + "/token", data=data,
                         auth=(info["client_id"], info["client_secret"]), timeout=timeout)


def login_and_exchange(issuer, info, **kw):
    query, verifier, nonce, _state = authorize(issuer, info, **kw)
    r = token_request(issuer, info, {
        "grant_type": "authorization_code", "code": query["code"],
        "redirect_uri": info["redirect_uris"][0], "code_verifier": verifier})
    assert r.status_code == 200, r.text
    return r.json(), nonce


def test_discovery_advertises_the_code_flow_with_s256_pkce(idp):
    issuer, _info, _ = idp
    d = discovery(issuer)
    assert d["issuer"] == issuer
    assert d["response_types_supported"] == ["code"]
    assert d["code_challenge_methods_supported"] == ["S256"]
    assert {"openid", "profile", "email", "offline_access"} <= set(d["scopes_supported"])
    assert d["authorization_response_iss_parameter_supported"] is True


def test_jwks_lists_an_rsa_and_an_ec_signing_key(idp):
    issuer, _info, _ = idp
    keys = requests.get(discovery(issuer)["jwks_uri"], timeout=10).json()["keys"]
    assert sorted((k["kty"], k.get("alg")) for k in keys) == [("EC", "ES256"), ("RSA", "RS256")]
    assert all("d" not in k for k in keys), "private key material published"


def test_a_full_login_returns_code_state_and_iss_and_the_code_gives_all_three_tokens(idp):
    issuer, info, _ = idp
    query, verifier, nonce, state = authorize(issuer, info)
    assert query["state"] == state and query["iss"] == issuer and query["code"]
    r = token_request(issuer, info, {
        "grant_type": "authorization_code", "code": query["code"],
        "redirect_uri": info["redirect_uris"][0], "code_verifier": verifier})
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens["token_type"].lower() == "bearer"
    assert tokens["access_token"] and tokens["refresh_token"] and tokens["id_token"]
    assert tokens["expires_in"] <= 3600
    header, claims = jwt_unverified(tokens["id_token"])
    assert header["alg"] == "RS256"
    assert claims["iss"] == issuer and claims["aud"] == info["client_id"]
    assert claims["nonce"] == nonce and claims["sub"] == "user-demo"
    assert claims["email"] == "demo@example.test" and claims["preferred_username"] == "demo"
    # the code is single use
    again = token_request(issuer, info, {
        "grant_type": "authorization_code", "code": query["code"],
        "redirect_uri": info["redirect_uris"][0], "code_verifier": verifier})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_the_access_token_works_at_the_userinfo_endpoint(idp):
    issuer, info, _ = idp
    tokens, _ = login_and_exchange(issuer, info)
    r = requests.get(discovery(issuer)["userinfo_endpoint"],
                     headers={"Authorization": "Bearer " + tokens["access_token"]}, timeout=10)
    assert r.status_code == 200 and r.json()["sub"] == "user-demo"


def test_refresh_works_and_rotates_the_refresh_token(idp):
    issuer, info, _ = idp
    tokens, _ = login_and_exchange(issuer, info)
    r = token_request(issuer, info, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200, r.text
    fresh = r.json()
    assert fresh["access_token"] != tokens["access_token"]
    assert fresh["refresh_token"] and fresh["refresh_token"] != tokens["refresh_token"]
    assert jwt_unverified(fresh["id_token"])[1]["sub"] == "user-demo"
    r = token_request(issuer, info, {"grant_type": "refresh_token", "refresh_token": fresh["refresh_token"]})
    assert r.status_code == 200, r.text


def test_no_refresh_token_without_offline_access(idp):
    issuer, info, _ = idp
    tokens, _ = login_and_exchange(issuer, info, scope="openid email")
    assert "refresh_token" not in tokens and tokens["access_token"]


def test_offline_access_survives_a_prompt_login_parameter(idp):
    issuer, info, _ = idp
    tokens, _ = login_and_exchange(issuer, info, prompt="login")
    assert tokens["refresh_token"]


def test_a_wrong_password_shows_the_form_again_with_an_error(idp):
    issuer, info, _ = idp
    with pytest.raises(LoginRefused, match="Invalid username or password"):
        authorize(issuer, info, password="not-the-password")
    with pytest.raises(LoginRefused):
        authorize(issuer, info, login="nobody", password=info["demo_password"])


def test_alice_logs_in_with_her_own_password_and_gets_her_own_sub(idp):
    issuer, info, _ = idp
    tokens, _ = login_and_exchange(issuer, info, login="alice", password=info["alice_password"])
    assert jwt_unverified(tokens["id_token"])[1]["sub"] == "user-alice"
    with pytest.raises(LoginRefused):
        authorize(issuer, info, login="alice", password=info["demo_password"])


def test_the_built_in_users_carry_their_tenant_groups_and_roles(idp):
    issuer, info, _ = idp
    expected = {"demo": (DEMO_TENANT_ID, ["editors"], ["editor"]),
                "viewer": (DEMO_TENANT_ID, [], ["viewer"]),
                "outsider": (OTHER_TENANT_ID, ["editors"], ["editor"]),
                "alice": (DEMO_TENANT_ID, ["editors"], [])}
    assert DEMO_TENANT_ID != OTHER_TENANT_ID
    for login, (tid, groups, roles) in expected.items():
        tokens, _ = login_and_exchange(issuer, info, login=login, password=info["passwords"][login])
        claims = jwt_unverified(tokens["id_token"])[1]
        assert claims["sub"] == "user-" + login
        assert (claims["tid"], claims["groups"], claims["realm_access"]) == (tid, groups, {"roles": roles}), login
        me = requests.get(discovery(issuer)["userinfo_endpoint"], timeout=10,
                          headers={"Authorization": "Bearer " + tokens["access_token"]}).json()
        assert (me["tid"], me["groups"], me["realm_access"]["roles"]) == (tid, groups, roles)
    with pytest.raises(LoginRefused):
        authorize(issuer, info, login="viewer", password=info["outsider_password"])


def test_a_refresh_after_a_claims_change_gives_an_id_token_with_the_new_claims(idp):
    issuer, info, _ = idp
    tokens, _ = login_and_exchange(issuer, info)
    assert jwt_unverified(tokens["id_token"])[1]["groups"] == ["editors"]
    try:
        now = set_user_claims(issuer, "demo", groups=["viewers", "auditors"], tid=OTHER_TENANT_ID,
                              realm_access={"roles": ["admin"]})
        assert now["groups"] == ["viewers", "auditors"] and now["tid"] == OTHER_TENANT_ID
        r = token_request(issuer, info, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
        assert r.status_code == 200, r.text
        fresh = r.json()
        assert fresh["id_token"] != tokens["id_token"]
        claims = jwt_unverified(fresh["id_token"])[1]
        assert claims["sub"] == "user-demo" and claims["aud"] == info["client_id"]
        assert claims["groups"] == ["viewers", "auditors"]
        assert claims["tid"] == OTHER_TENANT_ID and claims["realm_access"] == {"roles": ["admin"]}
        # None removes a claim
        set_user_claims(issuer, "demo", groups=None)
        r = token_request(issuer, info, {"grant_type": "refresh_token", "refresh_token": fresh["refresh_token"]})
        assert r.status_code == 200, r.text
        fresh = r.json()
        assert "groups" not in jwt_unverified(fresh["id_token"])[1]
    finally:
        back = set_user_claims(issuer, "demo", reset=True)
    assert (back["groups"], back["tid"]) == (["editors"], DEMO_TENANT_ID)
    r = token_request(issuer, info, {"grant_type": "refresh_token", "refresh_token": fresh["refresh_token"]})
    assert r.status_code == 200, r.text
    assert jwt_unverified(r.json()["id_token"])[1]["groups"] == ["editors"]


def test_the_user_claims_control_checks_its_input(idp):
    issuer, _info, _ = idp
    url = issuer + "/__test/user-claims"
    assert requests.post(url, json={"login": "nobody", "groups": []}, timeout=10).status_code == 404
    for bad in ({"groups": "editors"}, {"groups": [1]}, {"tid": 7}, {"realm_access": ["admin"]},
                {"realm_access": {"roles": "admin"}}):
        r = requests.post(url, json=dict(bad, login="viewer"), timeout=10)
        assert r.status_code == 400 and r.json()["error"] == "invalid_request", bad
    assert requests.post(url, data="{", timeout=10).status_code == 400
    assert set_user_claims(issuer, "viewer")["groups"] == [], "nothing changed"


def test_users_from_a_file_may_carry_groups_tid_and_roles_and_random_passwords_are_printed(tmp_path):
    users = [{"login": "carol", "password": "carol-pw", "groups": ["ops"], "tid": "t-carol",
              "realm_access": {"roles": ["auditor"]}},
             {"login": "dave", "password": "dave-pw"}]
    (tmp_path / "users.json").write_text(json.dumps(users))
    proc, issuer, info = start_idp(tmp_path, users_file=tmp_path / "users.json", password=None,
                                   viewer_password=None, outsider_password="out-pw")
    try:
        printed = parse_logins(proc.log())
        assert set(printed) == {"demo", "viewer"}
        assert printed["demo"] == ("demo", info["demo_password"])
        assert printed["viewer"] == ("viewer", info["viewer_password"])
        assert info["outsider_password"] == "out-pw"
        for login in ("demo", "viewer", "outsider"):
            login_and_exchange(issuer, info, login=login, password=info["passwords"][login])
        tokens, _ = login_and_exchange(issuer, info, login="carol", password="carol-pw")
        claims = jwt_unverified(tokens["id_token"])[1]
        assert (claims["groups"], claims["tid"], claims["realm_access"]) == (["ops"], "t-carol", {"roles": ["auditor"]})
        tokens, _ = login_and_exchange(issuer, info, login="dave", password="dave-pw")
        claims = jwt_unverified(tokens["id_token"])[1]
        assert not {"groups", "tid", "realm_access"} & set(claims)
    finally:
        proc.stop()


def test_pkce_is_required(idp):
    issuer, info, _ = idp
    params = {"response_type": "code", "client_id": info["client_id"], "scope": "openid",
              "redirect_uri": info["redirect_uris"][0], "state": "s"}
    r = requests.get(issuer + "/auth?" + urlencode(params), allow_redirects=False, timeout=10)
    assert r.status_code in (302, 303)
    q = parse_qs(urlsplit(r.headers["Location"]).query)
    assert q["error"] == ["invalid_request"] and "PKCE" in q["error_description"][0]


def test_a_wrong_client_secret_is_rejected(idp):
    issuer, info, _ = idp
    r = requests.post(issuer + "/token", data={"grant_type": "refresh_token", "refresh_token": "x"},
                      auth=(info["client_id"], "wrong"), timeout=10)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_the_token_status_fault_returns_that_status_with_an_oauth_error(idp):
    issuer, info, _ = idp
    tokens, _ = login_and_exchange(issuer, info)
    assert set_faults(issuer, token_status=500)["token_status"] == 500
    r = token_request(issuer, info, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert r.status_code == 500 and r.json()["error"] == "server_error"
    set_faults(issuer, token_status=0)
    r = token_request(issuer, info, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200, r.text


def test_the_down_fault_closes_token_connections(idp):
    issuer, info, _ = idp
    set_faults(issuer, down=True)
    with pytest.raises(requests.ConnectionError):
        token_request(issuer, info, {"grant_type": "refresh_token", "refresh_token": "x"})
    assert requests.get(issuer + "/jwks", timeout=10).status_code == 200, "only /token is down"


def test_the_delay_fault_slows_the_token_endpoint(idp):
    issuer, info, _ = idp
    set_faults(issuer, token_delay_ms=700)
    t0 = time.monotonic()
    with pytest.raises(requests.Timeout):
        token_request(issuer, info, {"grant_type": "refresh_token", "refresh_token": "x"}, timeout=0.3)
    assert time.monotonic() - t0 < 0.7
    t0 = time.monotonic()
    r = token_request(issuer, info, {"grant_type": "refresh_token", "refresh_token": "x"})
    assert time.monotonic() - t0 >= 0.65 and r.status_code == 400


def test_revoking_all_grants_makes_refresh_fail_with_invalid_grant(idp):
    issuer, info, _ = idp
    tokens, _ = login_and_exchange(issuer, info)
    assert revoke_all_grants(issuer)["revoked_grants"] >= 1
    r = token_request(issuer, info, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # a new login still works afterwards
    assert login_and_exchange(issuer, info)[0]["refresh_token"]


def test_stats_count_token_calls_by_grant_type(idp):
    issuer, info, _ = idp
    before = stats(issuer)["token"]
    tokens, _ = login_and_exchange(issuer, info)
    token_request(issuer, info, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    after = stats(issuer)["token"]
    assert after["authorization_code"] == before.get("authorization_code", 0) + 1
    assert after["refresh_token"] == before.get("refresh_token", 0) + 1


def test_the_log_has_one_line_per_request_and_no_secrets(idp):
    issuer, info, proc = idp
    query, verifier, _nonce, _ = authorize(issuer, info)
    tokens = token_request(issuer, info, {
        "grant_type": "authorization_code", "code": query["code"],
        "redirect_uri": info["redirect_uris"][0], "code_verifier": verifier}).json()
    time.sleep(0.1)
    log = proc.log()
    assert "POST /token 200" in log
    for secret in (query["code"], query["state"], verifier, tokens["access_token"], tokens["refresh_token"],
                   tokens["id_token"], info["demo_password"], info["client_secret"]):
        assert secret not in log
    assert "?" not in "".join(line for line in log.splitlines() if line.startswith("GET "))


def test_test_controls_are_off_unless_asked_for(tmp_path):
    proc, issuer, _info = start_idp(tmp_path, test_controls=False)
    try:
        assert requests.get(issuer + "/__test/stats", timeout=10).status_code == 404
    finally:
        proc.stop()


def test_the_es256_option_gives_es256_id_tokens_and_sigterm_exits_zero(tmp_path):
    proc, issuer, info = start_idp(tmp_path, id_token_alg="ES256", client_id="es-client",
                                   client_secret="es-secret", token_endpoint_auth_method="client_secret_post")
    try:
        query, verifier, nonce, _ = authorize(issuer, info)
        r = requests.post(issuer + "/token", timeout=10, data={
            "grant_type": "authorization_code", "code": query["code"], "code_verifier": verifier,
            "redirect_uri": info["redirect_uris"][0], "client_id": "es-client", "client_secret": "es-secret"})
        assert r.status_code == 200, r.text
        header, claims = jwt_unverified(r.json()["id_token"])
        assert header["alg"] == "ES256" and header["kid"].startswith("ec-")
        assert claims["aud"] == "es-client" and claims["nonce"] == nonce
    finally:
        t0 = time.monotonic()
        assert proc.stop(sig=signal.SIGTERM) == 0
        assert time.monotonic() - t0 < 3


def test_a_config_file_with_a_keys_file_keeps_the_jwks_across_restarts(tmp_path):
    config = {"client_id": "cfg-client", "client_secret": "cfg-secret",
              "redirect_uri": ["http://127.0.0.1:9/cb"], "keys_file": "keys.json",
              "access_token_ttl": 120, "users": [{"login": "bob", "password": "bob-pw"}]}
    (tmp_path / "idp.json").write_text(json.dumps(config))
    jwks = []
    for _ in range(2):
        proc, issuer, info = start_idp(tmp_path, config=tmp_path / "idp.json")
        try:
            jwks.append(requests.get(issuer + "/jwks", timeout=10).json())
            assert info["client_id"] == "cfg-client" and info["redirect_uris"] == ["http://127.0.0.1:9/cb"]
        finally:
            proc.stop()
    assert jwks[0] == jwks[1]
    assert (tmp_path / "keys.json").exists()
    proc, issuer, info = start_idp(tmp_path, config=tmp_path / "idp.json")
    try:
        tokens, _ = login_and_exchange(issuer, info, login="bob", password="bob-pw")
        assert tokens["expires_in"] <= 120
        assert jwt_unverified(tokens["id_token"])[1]["sub"] == "user-bob"
    finally:
        proc.stop()


def test_a_private_key_jwt_client_authenticates_with_a_signed_assertion(tmp_path):
    ec = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ec")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    import base64

    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    key = ec.generate_private_key(ec.SECP256R1())
    pub = key.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "kid": "k1", "x": b64(pub.x.to_bytes(32, "big")),
           "y": b64(pub.y.to_bytes(32, "big"))}
    (tmp_path / "client-jwks.json").write_text(json.dumps({"keys": [jwk]}))
    proc, issuer, info = start_idp(tmp_path, client_id="pkj", token_endpoint_auth_method="private_key_jwt",
                                   client_jwks_file=tmp_path / "client-jwks.json")
    try:
        query, verifier, _nonce, _ = authorize(issuer, info)
        now = int(time.time())
        header = b64(json.dumps({"alg": "ES256", "kid": "k1", "typ": "JWT"}).encode())
        payload = b64(json.dumps({"iss": "pkj", "sub": "pkj", "aud": issuer, "iat": now, "exp": now + 60,
                                  "jti": secrets.token_urlsafe(12)}).encode())
        r_, s_ = decode_dss_signature(key.sign((header + "." + payload).encode(), ec.ECDSA(hashes.SHA256())))
        assertion = header + "." + payload + "." + b64(r_.to_bytes(32, "big") + s_.to_bytes(32, "big"))
        r = requests.post(issuer + "/token", timeout=10, data={
            "grant_type": "authorization_code", "code": query["code"], "code_verifier": verifier,
            "redirect_uri": info["redirect_uris"][0], "client_id": "pkj",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion})
        assert r.status_code == 200, r.text
        assert r.json()["refresh_token"]
    finally:
        proc.stop()
