"""The downstream API of the token-exchange tests (t/downstream_api.mjs).

    from downstream_util import start_downstream_api

    with start_downstream_api(workdir, issuer, "downstream-api") as api:
        r = requests.get(api.url + "/whoami", headers={"Authorization": "Bearer " + jwt})
        api.stats()      # {"whoami": {"ok": n, "invalid_token": n, ...}, ...}
    # or api = start_downstream_api(...) ... api.stop()

It verifies JWT access tokens against the issuer's JWKS (see the script's
header).  The process listens on a port the kernel picks on 127.0.0.1 and
announces it; it is a harness.Proc, so its log is workdir/<name>.log, a
failing test shows it, and harness.stop_all_live() stops it at exit at the
latest.
"""

from pathlib import Path

import requests

from harness import NODE, ROOT, Proc

SCRIPT = ROOT / "t" / "downstream_api.mjs"
READY_LINE = r"downstream-api listening on (http://[0-9.]+:\d+)"


class DownstreamApi:
    def __init__(self, proc, url):
        self.proc = proc
        self.url = url

    def stats(self, timeout=10):
        """GET /__test/stats: {"total": n, "whoami": {"ok", "missing_token",
        "invalid_token", "insufficient_scope", "jwks_unavailable"},
        "invalid_token_reasons": {jose error code[:claim]: n}, "not_found": n,
        "jwks_fetches": n}"""
        r = requests.get(self.url + "/__test/stats", timeout=timeout)
        r.raise_for_status()
        return r.json()

    def reset_stats(self, timeout=10):
        requests.post(self.url + "/__test/reset-stats", timeout=timeout).raise_for_status()

    def whoami(self, token, timeout=10):
        """GET /whoami with `Authorization: Bearer <token>` (none when token is
        None); returns the requests.Response."""
        headers = {"Authorization": "Bearer " + token} if token is not None else {}
        return requests.get(self.url + "/whoami", headers=headers, timeout=timeout)

    def log(self):
        return self.proc.log()

    def stop(self):
        """SIGTERM; returns the exit code (0 when it stopped cleanly)."""
        return self.proc.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_downstream_api(workdir, issuer, audience, require_scope=None, jwks_uri=None, leeway=None,
                         name="downstream-api", timeout=20.0):
    """Start t/downstream_api.mjs in `workdir` for tokens of `issuer` meant
    for `audience`.  jwks_uri defaults to <issuer>/jwks (the dev IdP's);
    require_scope: a scope /whoami demands (403 insufficient_scope without);
    leeway: seconds of clock tolerance for exp/nbf (the script's default: 5).
    Returns a DownstreamApi (.url, .stats(), .whoami(token), .stop())."""
    argv = [NODE, str(SCRIPT), "--issuer", issuer, "--jwks-uri", jwks_uri or issuer + "/jwks",
            "--audience", audience, "--host", "127.0.0.1", "--port", "0"]
    if require_scope:
        argv += ["--require-scope", require_scope]
    if leeway is not None:
        argv += ["--leeway", str(int(leeway))]
    # a fresh log per start: Proc looks for the ready line in all of it
    base, n = name, 1
    while (Path(workdir) / ("%s.log" % name)).exists():
        n += 1
        name = "%s-%d" % (base, n)
    proc = Proc(name, argv, workdir, ready_line=READY_LINE, timeout=timeout)
    try:
        proc.start()
    except Exception:
        proc.stop()
        raise
    return DownstreamApi(proc, proc.match.group(1))
