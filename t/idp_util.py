"""Helpers to run and drive the development OpenID Connect provider (t/idp/dev-idp.mjs).

    proc, issuer, info = start_idp(tmp_path, test_controls=True)
    ...
    resp = provider_login(session, authorization_url, "demo", info["demo_password"])
    # resp is the first redirect that leaves the provider (e.g. to the callback)
    proc.stop()
"""

import base64
import hashlib
import json
import re
import secrets
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

from harness import NODE, ROOT, Proc

IDP_SCRIPT = ROOT / "t" / "idp" / "dev-idp.mjs"
READY_LINE = r"dev-idp listening on (http://[0-9.]+:\d+)"
DEFAULT_CLIENT_ID = "mcp-gateway"
DEFAULT_CLIENT_SECRET = "mcp-gateway-dev-secret"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8080/callback"
# RFC 8693 token exchange (t/idp/README.md): the grant, the only token type,
# and the provider's default downstream audience with its allowed scopes
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
DEFAULT_EXCHANGE_AUDIENCE = "downstream-api"
DEFAULT_EXCHANGE_SCOPES = ("downstream:read", "downstream:write")
# the tenants ("tid" claim) of the built-in users (t/idp/README.md)
DEMO_TENANT_ID = "7d8a3c1e-0000-4000-8000-00000000d3e0"     # demo, viewer, alice
OTHER_TENANT_ID = "0e6f2b9a-0000-4000-8000-0000000007e1"    # outsider
# the built-in users: role -> (password option, info key)
BUILT_IN_USERS = {"demo": ("password", "demo_password"), "viewer": ("viewer_password", "viewer_password"),
                  "outsider": ("outsider_password", "outsider_password"),
                  "alice": ("alice_password", "alice_password")}
# "<role> login: <login> / <password>", printed for each random password
LOGIN_LINE = re.compile(r"^(demo|viewer|outsider|alice) login: (\S+) / (\S+)$", re.M)


def parse_logins(text):
    """{role: (login, password)} from the provider's start-up output (the
    built-in users whose password it generated)."""
    return {m.group(1): (m.group(2), m.group(3)) for m in LOGIN_LINE.finditer(text)}


class LoginRefused(AssertionError):
    """The provider showed its login form again (wrong login or password)."""


class LoginFlowError(AssertionError):
    """The provider answered something provider_login cannot handle."""


def exchange_audience_flags(audiences):
    """{"aud": ["s1", "s2"]} (or "s1 s2") -> ["aud=s1,s2"], the values of
    --exchange-audience; a list or string passes through."""
    if not isinstance(audiences, dict):
        return audiences
    return ["%s=%s" % (aud, ",".join(scopes.split() if isinstance(scopes, str) else scopes))
            for aud, scopes in audiences.items()]


def _argv(options):
    argv = []
    for key, value in options.items():
        if key == "exchange_audience":
            value = exchange_audience_flags(value)
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            for v in value:
                argv += [flag, str(v)]
        else:
            argv += [flag, str(value)]
    return argv


def start_idp(workdir, name="idp", timeout=20.0, **options):
    """Start the provider in `workdir` (its log is workdir/<name>.log).

    Keyword options map to command line options (client_id -> --client-id;
    True -> a bare flag; lists repeat the option).  Defaults here: port 0
    (the provider picks a free one), --test-controls on, and known random
    passwords for "demo", "viewer", "outsider" and "alice" (password=None etc.
    lets the provider make one; it is then read from its output).  Token
    exchange: exchange_audience={"aud": ["scope", ...]} (or a list of
    "aud=scope,scope" strings) replaces the default downstream-api audience;
    exchange_ttl=seconds (default 300).  ID-JAG: id_jag_policy=[entry, ...]
    (written to a file) or a file name, id_jag_ttl=seconds; more static
    clients: extra_client=["ID:SECRET", ...] (info["extra_clients"] is
    {id: secret}; client_info(info, id) makes the info of one).  Returns
    (proc, issuer, info) where info has demo_user, demo_password,
    viewer_password, outsider_password, alice_password, passwords ({login:
    password} of the four), client_id, client_secret, redirect_uris, port.
    Stop it with proc.stop().
    """
    options = dict(options)
    if isinstance(options.get("id_jag_policy"), (list, tuple)):
        # a list of policy entries: written to a file next to the log
        policy_file = Path(workdir) / ("%s-id-jag-policy.json" % name)
        policy_file.write_text(json.dumps(list(options["id_jag_policy"])))
        options["id_jag_policy"] = str(policy_file)
    config = {}
    if options.get("config"):
        with open(options["config"]) as f:
            config = {k.replace("-", "_"): v for k, v in json.load(f).items()}
    for key, value in (("host", "127.0.0.1"), ("port", 0), ("test_controls", True),
                       ("password", secrets.token_urlsafe(12)),
                       ("viewer_password", secrets.token_urlsafe(12)),
                       ("outsider_password", secrets.token_urlsafe(12)),
                       ("alice_password", secrets.token_urlsafe(12))):
        if key not in config:
            options.setdefault(key, value)
    merged = dict(config, **options)
    redirect = merged.get("redirect_uri") or [DEFAULT_REDIRECT_URI]
    if isinstance(redirect, str):
        redirect = [u for u in redirect.split(",") if u]
    if "redirect_uri" in options or "redirect_uri" not in config:
        options["redirect_uri"] = list(redirect)
    argv = [NODE, str(IDP_SCRIPT)] + _argv(options)
    # Proc appends to <name>.log and looks for the ready line in all of it:
    # a restart in the same folder needs a fresh log or it sees the old line
    base, n = name, 1
    while (Path(workdir) / ("%s.log" % name)).exists():
        n += 1
        name = "%s-%d" % (base, n)
    proc = Proc(name, argv, workdir, ready_line=READY_LINE, timeout=timeout)
    proc.start()
    issuer = proc.match.group(1)
    printed = parse_logins(proc.log())
    info = {
        "demo_user": merged.get("user", "demo"),
        "client_id": merged.get("client_id", DEFAULT_CLIENT_ID),
        "client_secret": merged.get("client_secret", DEFAULT_CLIENT_SECRET),
        "redirect_uris": list(redirect),
        "port": int(urlsplit(issuer).port),
    }
    extra = merged.get("extra_client") or []
    info["extra_clients"] = dict(c.split(":", 1) for c in ([extra] if isinstance(extra, str) else extra))
    info["passwords"] = {}
    for role, (option, key) in BUILT_IN_USERS.items():
        login = info["demo_user"] if role == "demo" else role
        info[key] = merged.get(option) or printed.get(role, (None, None))[1]
        info["passwords"][login] = info[key]
    return proc, issuer, info


# ------------------------------------------------------------------ login


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms = []  # [{"action":..., "method":..., "fields": {name: value}}]
        self.error = None
        self._in_error = False
        self._form = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = {"action": a.get("action") or "", "method": (a.get("method") or "get").lower(),
                          "fields": {}}
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and a.get("name"):
            self._form["fields"][a["name"]] = a.get("value") or ""
        elif tag == "p" and "error" in (a.get("class") or "").split():
            self._in_error = True

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "p":
            self._in_error = False

    def handle_data(self, data):
        if self._in_error and data.strip():
            self.error = (self.error or "") + data.strip()


def _origin(url):
    u = urlsplit(url)
    return (u.scheme, u.hostname, u.port or (443 if u.scheme == "https" else 80))


def provider_login(session, response_or_url, login, password, max_steps=20):
    """Log in at the provider and return the first redirect that leaves it.

    `response_or_url` is the URL of (or a requests.Response from / redirecting
    to) the provider's authorization endpoint or interaction page.  Redirects
    are followed by hand, on the provider's origin only; the login form is
    parsed from the HTML and submitted once.  Returns that 3xx
    requests.Response (its Location is typically the client's redirect_uri with
    code, state and iss).  Raises LoginRefused if the form comes back.
    """
    if isinstance(response_or_url, str):
        origin = _origin(response_or_url)
        resp = session.get(response_or_url, allow_redirects=False)
    else:
        resp = response_or_url
        if resp.is_redirect:
            origin = _origin(urljoin(resp.url, resp.headers["Location"]))
        else:
            origin = _origin(resp.url)

    submitted = False
    for _ in range(max_steps):
        if resp.is_redirect:
            location = urljoin(resp.url, resp.headers["Location"])
            if _origin(location) != origin:
                return resp
            resp = session.get(location, allow_redirects=False)
            continue
        if resp.status_code == 200 and "html" in resp.headers.get("Content-Type", ""):
            parser = _FormParser()
            parser.feed(resp.text)
            form = next((f for f in parser.forms if "password" in f["fields"]), None)
            if form is None:
                raise LoginFlowError("no login form at %s (HTTP %d): %s"
                                     % (urlsplit(resp.url).path, resp.status_code, resp.text[:300]))
            if submitted:
                raise LoginRefused("provider refused the login for %r: %s"
                                   % (login, parser.error or "login form shown again"))
            fields = dict(form["fields"])
            fields["login"] = login
            fields["password"] = password
            action = urljoin(resp.url, form["action"] or resp.url)
            if _origin(action) != origin:
                raise LoginFlowError("login form posts off the provider: %s" % action)
            resp = session.post(action, data=fields, allow_redirects=False)
            submitted = True
            continue
        raise LoginFlowError("unexpected provider answer at %s: HTTP %d %s"
                             % (urlsplit(resp.url).path, resp.status_code, resp.text[:300]))
    raise LoginFlowError("too many steps at the provider")


# ------------------------------------------------------------------ OAuth bits


def pkce_pair():
    """(code_verifier, S256 code_challenge)"""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _b64json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def jwt_unverified(token):
    """(header, payload) of a JWS compact token, without verifying it."""
    header, payload, _sig = token.split(".")
    return _b64json(header), _b64json(payload)


def discovery(issuer):
    r = requests.get(issuer + "/.well-known/openid-configuration", timeout=10)
    r.raise_for_status()
    return r.json()


# ------------------------------------------------------------------ test controls
# (the provider must run with --test-controls; start_idp turns it on)


def set_faults(issuer, timeout=10, **faults):
    """POST /__test/faults, e.g. set_faults(iss, token_status=500),
    set_faults(iss, token_delay_ms=2000), set_faults(iss, down=True),
    set_faults(iss, reset=True).  Returns the faults now in force."""
    r = requests.post(issuer + "/__test/faults", json=faults, timeout=timeout)
    r.raise_for_status()
    return r.json()


def revoke_all_grants(issuer, sessions=False, timeout=10):
    """Revoke every grant (its access/refresh tokens and codes too), so a refresh
    fails with invalid_grant; sessions=True also logs every user out."""
    r = requests.post(issuer + "/__test/revoke-grants", json={"sessions": bool(sessions)}, timeout=timeout)
    r.raise_for_status()
    return r.json()


def set_user_claims(issuer, login, timeout=10, **claims):
    """POST /__test/user-claims: change a user's groups, tid or realm_access
    for the tokens issued from then on (a refresh too), e.g.
    set_user_claims(iss, "demo", groups=["viewers"]),
    set_user_claims(iss, "demo", realm_access={"roles": ["admin"]}),
    set_user_claims(iss, "demo", tid=None)  (None removes the claim),
    set_user_claims(iss, "demo", reset=True)  (back to the start-up claims).
    Returns the user's {login, sub, groups, tid, realm_access} now."""
    r = requests.post(issuer + "/__test/user-claims", json=dict(claims, login=login), timeout=timeout)
    r.raise_for_status()
    return r.json()


def stats(issuer, timeout=10):
    """GET /__test/stats: {"token": {grant_type: count}, "token_total": n,
    "authorization": n, "logins_ok": n, "logins_failed": n, "faults": {...},
    "traceparent": {"token": header or None, "jwks": ...} (of the last call),
    "exchange": {...} (see exchange_stats)}"""
    r = requests.get(issuer + "/__test/stats", timeout=timeout)
    r.raise_for_status()
    return r.json()


def reset_stats(issuer, timeout=10):
    """POST /__test/reset-stats: every counter back to zero (exchanges in
    flight stay counted)."""
    requests.post(issuer + "/__test/reset-stats", timeout=timeout).raise_for_status()


def exchange_stats(issuer, timeout=10):
    """The token-exchange counters: {"requests": n (every POST /token with
    the token-exchange grant), "issued": n, "refused": {error: n} (by the
    answer's "error", "connection_closed" for the down fault), "audiences":
    {audience: issued}, "in_flight": n, "max_in_flight": n}."""
    s = stats(issuer, timeout=timeout)
    return dict(s["exchange"], requests=s["token"].get(TOKEN_EXCHANGE_GRANT, 0))


def set_exchange_faults(issuer, refuse=None, delay_ms=None, status=None, timeout=10):
    """Faults of token exchanges only (others as they are; None = unchanged):
    refuse=True (400 invalid_grant), "access_denied" or "unauthorized_client"
    (400 with that error), False (off); delay_ms: answer that much later;
    status: 500/503/... with an OAuth error (0 = off).  Returns every fault."""
    faults = {}
    if refuse is not None:
        faults["exchange_refuse"] = refuse
    if delay_ms is not None:
        faults["exchange_delay_ms"] = delay_ms
    if status is not None:
        faults["exchange_status"] = status
    return set_faults(issuer, timeout=timeout, **faults)


# ------------------------------------------------------------------ tokens for tests


def user_tokens(issuer, info, login="demo", password=None, scope="openid profile email offline_access",
                timeout=10):
    """Sign `login` in as the static client of `info` would (authorization
    code + PKCE S256, client_secret_basic) and return the token response
    ({"access_token", "id_token", ...})."""
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": info["client_id"], "redirect_uri": info["redirect_uris"][0],
              "scope": scope, "state": secrets.token_urlsafe(16), "nonce": secrets.token_urlsafe(16),
              "code_challenge": challenge, "code_challenge_method": "S256"}
    if password is None:
        password = info["passwords"].get(login) if "passwords" in info else info["demo_password"]
    d = discovery(issuer)
    resp = provider_login(requests.Session(), d["authorization_endpoint"] + "?" + urlencode(params),
                          login, password)
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    if "code" not in query:
        raise LoginFlowError("no code in the redirect: %s" % resp.headers["Location"])
    r = requests.post(d["token_endpoint"], timeout=timeout, auth=(info["client_id"], info["client_secret"]), data={
        "grant_type": "authorization_code", "code": query["code"][0], "code_verifier": verifier,
        "redirect_uri": info["redirect_uris"][0]})
    r.raise_for_status()
    return r.json()


def token_exchange(issuer, subject_token, audience=DEFAULT_EXCHANGE_AUDIENCE, scope=None,
                   client_id=DEFAULT_CLIENT_ID, client_secret=DEFAULT_CLIENT_SECRET,
                   subject_token_type=ACCESS_TOKEN_TYPE, timeout=10, **extra):
    """POST /token with the RFC 8693 grant (client_secret_basic); returns the
    requests.Response.  None leaves a parameter out; `extra` adds more
    (e.g. requested_token_type=...)."""
    data = {"grant_type": TOKEN_EXCHANGE_GRANT, "subject_token": subject_token,
            "subject_token_type": subject_token_type, "audience": audience, "scope": scope}
    data.update(extra)
    data = {k: v for k, v in data.items() if v is not None}
    return requests.post(issuer + "/token", data=data, auth=(client_id, client_secret), timeout=timeout)


# ------------------------------------------------------------------ ID-JAG (MCP enterprise-managed authorization)

ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
ID_JAG_TYPE = "urn:ietf:params:oauth:token-type:id-jag"


def client_info(info, client_id):
    """The info of start_idp for another static client of the same provider
    (one of info["extra_clients"]), e.g. for user_tokens(issuer,
    client_info(info, "enterprise-app")): its client_id and client_secret,
    the same redirect URIs and passwords."""
    return dict(info, client_id=client_id, client_secret=info["extra_clients"][client_id])


def set_id_jag_policy(issuer, entries, timeout=10):
    """POST /__test/id_jag_policy: replace the ID-JAG policy with `entries`
    ([{"audience", "resource", "clients": {idp_id: mcp_id}, "scopes": [...],
    "users": [sub, ...] (optional)}]).  Returns the policy now; raises
    requests.HTTPError (400, invalid_request) for a bad one."""
    r = requests.post(issuer + "/__test/id_jag_policy", json=entries, timeout=timeout)
    r.raise_for_status()
    return r.json()


def id_jag_policy(issuer, timeout=10):
    """GET /__test/id_jag_policy: the policy in force."""
    r = requests.get(issuer + "/__test/id_jag_policy", timeout=timeout)
    r.raise_for_status()
    return r.json()


def request_id_jag(issuer, id_token, audience, resource, scope=None, client_id=DEFAULT_CLIENT_ID,
                   client_secret=DEFAULT_CLIENT_SECRET, timeout=10, **extra):
    """POST /token: the token exchange of an ID token for an ID-JAG
    (requested_token_type id-jag, subject_token_type id_token,
    client_secret_basic); returns the requests.Response.  None leaves a
    parameter out; `extra` adds or replaces ones (e.g.
    subject_token_type=ACCESS_TOKEN_TYPE, requested_token_type=None)."""
    data = {"grant_type": TOKEN_EXCHANGE_GRANT, "requested_token_type": ID_JAG_TYPE, "subject_token": id_token,
            "subject_token_type": ID_TOKEN_TYPE, "audience": audience, "resource": resource, "scope": scope}
    data.update(extra)
    data = {k: v for k, v in data.items() if v is not None}
    return requests.post(issuer + "/token", data=data, auth=(client_id, client_secret), timeout=timeout)


def id_jag_stats(issuer, timeout=10):
    """The ID-JAG counters of /__test/stats: {"issued": n, "refused": {error: n}}."""
    return stats(issuer, timeout=timeout)["id_jag"]


def set_id_jag_faults(issuer, refuse, timeout=10):
    """refuse=True (400 invalid_grant), "access_denied", "unauthorized_client",
    "invalid_target" (400 with that error, for ID-JAG requests that would
    have been issued) or False (off).  Returns every fault."""
    return set_faults(issuer, timeout=timeout, id_jag_refuse=refuse)
