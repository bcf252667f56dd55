"""Reading the gateway's Prometheus text exposition in tests."""

import re

import requests

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """{(name, ((label, value), ...)): value} of a Prometheus text
    exposition; every sample line must parse, and no series may repeat."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        key = (m.group(1), tuple(sorted(LABEL.findall(m.group(2) or ""))))
        assert key not in out, "a repeated series: %r" % line
        out[key] = float(m.group(3))
    return out


def scrape(st):
    r = requests.get(st.url + "/_mcp_auth/metrics", timeout=5)
    assert r.status_code == 200, r.text
    return parse_exposition(r.text)


def metric(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
