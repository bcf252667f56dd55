"""A scripted MCP client and browser for the OAuth flow through the gateway.

`McpOAuthClient` does what an MCP client does (discovery, registration, PKCE,
token exchange, refresh, revocation) with plain HTTP; `Browser` does what the
user's browser does (follow redirects, approve the consent page, log in at
the provider).  Both use requests; nothing is mocked.
"""

import base64
import hashlib
import re
import secrets
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

from idp_util import provider_login


def pkce_pair():
    verifier = secrets.token_urlsafe(48)[:64]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


class _Forms(HTMLParser):
    """Every <form> with its inputs and submit buttons."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get"),
                               "fields": {}, "buttons": []})
        elif self.forms and tag in ("input", "button"):
            kind = (a.get("type") or ("submit" if tag == "button" else "text")).lower()
            if kind == "submit":
                self.forms[-1]["buttons"].append((a.get("name"), a.get("value")))
            elif kind == "checkbox":
                self.forms[-1].setdefault("checkboxes", {})[a.get("name")] = a.get("value", "on")
            elif a.get("name"):
                self.forms[-1]["fields"][a["name"]] = a.get("value", "")


def parse_forms(html):
    p = _Forms()
    p.feed(html)
    return p.forms


class _ReturnLink(HTMLParser):
    """The link back to the application on a page that reports an outcome."""

    def __init__(self):
        super().__init__()
        self.href = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and "return" in (a.get("class") or "").split():
            self.href = a.get("href")


def return_link(html):
    """The href of the page's "Return to <app>" link (HTML unescaped), or None."""
    p = _ReturnLink()
    p.feed(html)
    return p.href


def query_of(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


class Browser:
    """A user agent with a cookie jar that follows redirects one at a time."""

    def __init__(self, login="demo", password=None):
        self.session = requests.Session()
        self.login = login
        self.password = password
        self.consent_page = None
        self.last_page = None     # the page whose return link authorize() followed

    def get(self, url, **kw):
        return self.session.get(url, allow_redirects=False, timeout=15, **kw)

    def approve(self, consent_response, decision="allow", remember=False, extra_headers=None):
        """Submit the consent form shown in consent_response."""
        self.consent_page = consent_response.text
        forms = parse_forms(consent_response.text)
        assert forms, "no form on the consent page:\n" + consent_response.text[:2000]
        form = forms[0]
        data = dict(form["fields"])
        data["decision"] = decision
        if remember:
            data["remember"] = form.get("checkboxes", {}).get("remember", "on")
        action = urljoin(consent_response.url, form["action"] or consent_response.url)
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(consent_response.url))
        headers = {"Origin": origin, "Sec-Fetch-Site": "same-origin"}
        headers.update(extra_headers or {})
        return self.session.post(action, data=data, headers=headers, allow_redirects=False,
                                 timeout=15)

    def authorize(self, authorize_url, client_redirect_prefix, decision="allow", remember=False,
                  follow_return_link=True):
        """From /authorize to the redirect back to the client; returns that URL.

        A page that reports an outcome for the client (an error or a denial
        before the user approved the client) has a link back to it: the user
        follows it (unless follow_return_link is false: then the page is
        returned as an AssertionError)."""
        r = self.get(authorize_url)
        for _ in range(20):
            if r.status_code not in (301, 302, 303, 307):
                if "<form" in r.text and "decision" in r.text:
                    r = self.approve(r, decision=decision, remember=remember)
                    continue
                link = return_link(r.text)
                if follow_return_link and link and link.startswith(client_redirect_prefix):
                    self.last_page = r
                    return link
                raise AssertionError("stuck at %s %s:\n%s" % (r.status_code, r.url, r.text[:2000]))
            location = urljoin(r.url, r.headers["Location"])
            if location.startswith(client_redirect_prefix):
                return location
            gateway = "{0.scheme}://{0.netloc}".format(urlsplit(authorize_url))
            if not location.startswith(gateway):
                # the provider: log in there; it sends us back to the gateway
                r = provider_login(self.session, location, self.login, self.password)
                continue
            r = self.get(location)
        raise AssertionError("too many redirects")


class McpOAuthClient:
    """An MCP client's side of the flow, against the gateway at base_url."""

    def __init__(self, base_url, redirect_uri="http://127.0.0.1:33418/callback",
                 client_name="pytest client", scope=None, public=True, verify=True):
        self.base = base_url
        self.redirect_uri = redirect_uri
        self.client_name = client_name
        self.scope = scope
        self.public = public
        self.client_id = None
        self.client_secret = None
        self.tokens = None
        self.verify = verify      # a CA file for a self-signed https gateway
        self.metadata = requests.get(base_url + "/.well-known/oauth-authorization-server",
                                     timeout=5, verify=verify).json()

    def register(self, **extra):
        body = {"client_name": self.client_name, "redirect_uris": [self.redirect_uri],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none" if self.public else "client_secret_basic"}
        body.update(extra)
        r = requests.post(self.metadata["registration_endpoint"], json=body, timeout=5,
                          verify=self.verify)
        assert r.status_code == 201, r.text
        doc = r.json()
        self.client_id = doc["client_id"]
        self.client_secret = doc.get("client_secret")
        return doc

    def authorize_url(self, state=None, **extra):
        self.verifier, challenge = pkce_pair()
        self.state = state or secrets.token_urlsafe(16)
        params = {"response_type": "code", "client_id": self.client_id,
                  "redirect_uri": self.redirect_uri, "state": self.state,
                  "code_challenge": challenge, "code_challenge_method": "S256"}
        if self.scope:
            params["scope"] = self.scope
        params.update({k: v for k, v in extra.items() if v is not None})
        return self.metadata["authorization_endpoint"] + "?" + urlencode(params)

    def _auth(self):
        if self.public:
            return None
        return (self.client_id, self.client_secret)

    def token_request(self, data):
        if self.public:
            data = dict(data, client_id=self.client_id)
        return requests.post(self.metadata["token_endpoint"], data=data, auth=self._auth(),
                             timeout=15, verify=self.verify)

    def exchange(self, redirect_url, verifier=None):
        q = query_of(redirect_url)
        assert "code" in q, "no code in %s" % redirect_url
        assert q.get("state") == self.state
        r = self.token_request({"grant_type": "authorization_code", "code": q["code"],
                                "redirect_uri": self.redirect_uri,
                                "code_verifier": verifier or self.verifier})
        if r.status_code == 200:
            self.tokens = r.json()
        return r

    def refresh(self, refresh_token=None):
        r = self.token_request({"grant_type": "refresh_token",
                                "refresh_token": refresh_token or self.tokens["refresh_token"]})
        if r.status_code == 200:
            self.tokens = r.json()
        return r

    def revoke(self, token):
        data = {"token": token}
        if self.public:
            data["client_id"] = self.client_id
        return requests.post(self.metadata["revocation_endpoint"], data=data, auth=self._auth(),
                             timeout=5, verify=self.verify)

    def login(self, browser, **authorize_extra):
        """The whole flow; returns the token response."""
        if self.client_id is None:
            self.register()
        redirect = browser.authorize(self.authorize_url(**authorize_extra), self.redirect_uri)
        r = self.exchange(redirect)
        assert r.status_code == 200, r.text
        return self.tokens
