#!/usr/bin/env python3
"""Renders nginx.conf.example for a local instance (make run, tests).

The example is the single source of truth; this script only moves it to
other addresses and folders:

  * the module path -> the freshly built module,
  * 127.0.0.1:8080 (the gateway), 127.0.0.1:8443 (its https server) and
    127.0.0.1:8808 (the tool server) -> the ports given,
  * /etc/nginx/mcp-auth/ -> the runtime folder,
  * adds pid, error_log and *_temp_path lines so that nginx writes nothing
    outside the runtime folder (nginx -p does not move compiled-in paths),
  * copies mcp_locations and mcp_proxy_params next to the rendered file.

Extra directives for the http{} block can be given with --http-extra.

It also reads the per-tool rules back out of a configuration
(--tool-scope-args, tool_scope_args()): the rules are written once, as
mcp_auth_tool_scope and mcp_auth_tool_claim directives, and whatever starts
the tool server behind that nginx passes them on as --tool-scope and
--tool-claim flags.
"""

import argparse
import glob
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def render(example, module, rundir, port, tool_port, idp=None, workers=None,
           http_extra="", replace=(), tls_port=8443):
    text = Path(example).read_text()
    rundir = Path(rundir).resolve()
    text = text.replace("/usr/lib/nginx/modules/ngx_http_mcp_auth_module.so", str(module))
    text = text.replace("127.0.0.1:8080", "127.0.0.1:%d" % port)
    text = text.replace("127.0.0.1:8808", "127.0.0.1:%d" % tool_port)
    text = text.replace("127.0.0.1:8443", "127.0.0.1:%d" % tls_port)
    text = text.replace("/etc/nginx/mcp-auth/", str(rundir) + "/")
    text = text.replace("/var/log/nginx/", str(rundir) + "/")
    text = text.replace("/var/lib/nginx/", str(rundir / "state") + "/")
    if idp:
        text = text.replace("http://127.0.0.1:9400", idp)
    for old, new in replace:
        text = text.replace(old, new)
    if workers is not None:
        text = re.sub(r"(?m)^worker_processes .*;$", "worker_processes %s;" % workers, text)
    main_extra = ("pid %s/nginx.pid;\nerror_log %s/error.log info;\n" % (rundir, rundir))
    text = re.sub(r"(?m)^(load_module .*;\n)", lambda m: m.group(1) + main_extra, text, count=1)
    temp = "".join("    %s_temp_path %s/tmp/%s;\n" % (k, rundir, k) for k in TEMP_KINDS)
    text = re.sub(r"(?m)^http \{\n", lambda m: m.group(0) + temp + http_extra, text, count=1)
    (rundir / "tmp").mkdir(parents=True, exist_ok=True)
    # The state file is written by worker processes, which run as "nobody"
    # when nginx starts as root (as /var/lib/nginx belongs to www-data).
    state = rundir / "state"
    state.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        import pwd
        nobody = pwd.getpwnam("nobody")
        # workers must be able to reach the folder (not read it)
        d = rundir
        while d != d.parent:
            mode = d.stat().st_mode
            if not mode & 0o001:
                os.chmod(d, (mode & 0o7777) | 0o001)
            d = d.parent
        for d in [state, rundir / "tmp"] + [rundir / "tmp" / k for k in TEMP_KINDS]:
            d.mkdir(exist_ok=True)
            os.chown(d, nobody.pw_uid, nobody.pw_gid)
    out = rundir / "nginx.conf"
    out.write_text(text)
    for name in ("mcp_proxy_params", "mcp_locations"):
        part = (ROOT / name).read_text()
        if idp:
            part = part.replace("http://127.0.0.1:9400", idp)
        for old, new in replace:
            part = part.replace(old, new)
        (rundir / name).write_text(part)
    return out


# --- the per-tool scope rules of a configuration ---------------------------------

def _tokens(text, where):
    """nginx configuration tokens, as nginx reads them: words (quotes and
    escapes resolved; '#' and quotes inside a word are part of it), and the
    punctuation ';', '{', '}'."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in ";{}":
            yield c
            i += 1
        elif c in "\"'":
            j, word = i + 1, []
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                word.append(text[j])
                j += 1
            if j >= n:
                raise ValueError("%s: unterminated quoted string" % where)
            yield "".join(word)
            i = j + 1
        else:
            j, word = i, []
            while j < n and not text[j].isspace() and text[j] not in ";{}":
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                word.append(text[j])
                j += 1
            yield "".join(word)
            i = j


def _directives(path, prefix, depth=0):
    """The configuration at `path` as a tree: [(name, args, children or None)],
    with include files (relative to `prefix`, globs allowed) read in place."""
    if depth > 16:
        raise ValueError("%s: includes nested too deeply" % path)
    toks = list(_tokens(Path(path).read_text(), path))
    pos = 0

    def block():
        nonlocal pos
        out, words = [], []
        while pos < len(toks):
            t = toks[pos]
            pos += 1
            if t == ";":
                if words and words[0] == "include" and len(words) == 2:
                    pattern = words[1] if os.path.isabs(words[1]) else os.path.join(prefix, words[1])
                    for f in sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]:
                        out += _directives(f, prefix, depth + 1)
                elif words:
                    out.append((words[0], words[1:], None))
                words = []
            elif t == "{":
                out.append((words[0] if words else "", words[1:], block()))
                words = []
            elif t == "}":
                return out
            else:
                words.append(t)
        return out
    return block()


def tool_scope_rules(conf, directive="mcp_auth_tool_scope"):
    """The mcp_auth_tool_scope rules in force where the guard is on
    (mcp_auth_protect on) in the nginx configuration `conf`, as a list of
    (name, [scopes]) in the order written.  The rules are inherited from
    http{} to server{} to location{}, and a level with rules of its own
    replaces the inherited ones (as in the module).  ValueError when the
    guarded locations disagree: one tool server cannot follow two rule sets."""
    conf = Path(conf)
    found = {}   # rules (as a tuple) -> where

    def rules_of(children, inherited):
        own = [(args[0], args[1:]) for name, args, sub in children
               if name == directive and sub is None]
        if not own:
            return inherited
        if directive != "mcp_auth_tool_scope":  # every line a rule of its own
            return tuple((name, tuple(rest)) for name, rest in own)
        merged = {}
        for name, scopes in own:
            if not scopes:
                raise ValueError("mcp_auth_tool_scope %s: no scope given" % name)
            merged.setdefault(name, [])
            merged[name] += [sc for sc in scopes if sc not in merged[name]]
        return tuple((name, tuple(scopes)) for name, scopes in merged.items())

    def protect_of(children, inherited):
        for name, args, sub in children:
            if name == "mcp_auth_protect" and sub is None and args:
                inherited = args[0] == "on"
        return inherited

    def walk(children, rules, protect, where):
        for name, args, sub in children:
            if sub is None or name not in ("http", "server", "location"):
                continue
            r, p = rules_of(sub, rules), protect_of(sub, protect)
            here = where + [" ".join([name] + args)]
            if name == "location" and p:
                found.setdefault(r, " > ".join(here))
            walk(sub, r, p, here)

    walk(_directives(conf, conf.parent), (), False, [])
    if len(found) > 1:
        raise ValueError("%s: the guarded locations have different %s rules (%s); "
                         "give the tool server its flags by hand"
                         % (conf, directive, "; ".join(found.values())))
    return [(name, list(scopes)) for name, scopes in next(iter(found), ())]


def tool_scope_args(conf):
    """The tool server's --tool-scope and --tool-claim flags (one argv
    element each) for the mcp_auth_tool_scope and mcp_auth_tool_claim rules
    of `conf` (tool_scope_rules)."""
    out = []
    for name, scopes in tool_scope_rules(conf):
        bad = [x for x in [name] if "=" in x] + [x for x in scopes if "," in x]
        if bad:
            raise ValueError("%s: mcp_auth_tool_scope %s: %r cannot be passed as --tool-scope "
                             "NAME=SCOPE[,SCOPE...]" % (conf, name, bad[0]))
        out.append("--tool-scope=%s=%s" % (name, ",".join(scopes)))
    for name, rest in tool_scope_rules(conf, "mcp_auth_tool_claim"):
        if len(rest) < 2 or ":" in name or "=" in rest[0] or any("," in v for v in rest[1:]):
            raise ValueError("%s: mcp_auth_tool_claim %s: cannot be passed as --tool-claim "
                             "NAME:PATH=VALUE[,VALUE...]" % (conf, name))
        out.append("--tool-claim=%s:%s=%s" % (name, rest[0], ",".join(rest[1:])))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--example", default=str(ROOT / "nginx.conf.example"))
    ap.add_argument("--module")
    ap.add_argument("--tool-scope-args", metavar="NGINX_CONF",
                    help="print the tool server's --tool-scope and --tool-claim flags for this configuration, "
                         "one per line, and render nothing")
    ap.add_argument("--rundir")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--tool-port", type=int, default=8808)
    ap.add_argument("--tls-port", type=int, default=8443)
    ap.add_argument("--idp")
    ap.add_argument("--workers")
    ap.add_argument("--http-extra", default="")
    ap.add_argument("--replace", action="append", default=[], metavar="OLD=NEW",
                    help="a further literal replacement (repeatable)")
    a = ap.parse_args()
    if a.tool_scope_args:
        try:
            for arg in tool_scope_args(a.tool_scope_args):
                print(arg)
        except (ValueError, OSError) as e:
            raise SystemExit("render-config.py: %s" % e)
        return
    if not a.module or not a.rundir:
        ap.error("--module and --rundir are required")
    replace = [tuple(r.split("=", 1)) for r in a.replace]
    print(render(a.example, a.module, a.rundir, a.port, a.tool_port, a.idp, a.workers,
                 a.http_extra, replace=replace, tls_port=a.tls_port))


if __name__ == "__main__":
    main()
