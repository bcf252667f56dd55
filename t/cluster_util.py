"""Two gateway nodes sharing one Redis, two tool servers sharing it too.

    cluster = Cluster(workdir)          # starts Redis, the provider, two tool
                                        # servers and two nginx (A and B)
    cluster.a.url, cluster.b.url        # the two edges
    Cluster(workdir, redis_params=" unauthenticated=32k")   # more mcp_auth_redis
                                        # parameters; replace=[(old, new)] edits
                                        # the rendered configuration
    cluster.redis.stop(); .start()      # an outage
    cluster.stop()

    Cluster(workdir, sentinel={"replicas": 2}, wait_replicas=1)
                                        # Sentinel mode: a primary, replicas and
                                        # three Sentinels (sentinel_util.SentinelSet,
                                        # the dict its options); edges and tool
                                        # servers find the primary through the
                                        # Sentinels, and with wait_replicas=N every
                                        # change waits for N replicas (WAIT)
    cluster.sentinel                    # that SentinelSet (None with one Redis)
    cluster.redis                       # the primary now, in either mode

Both edges render nginx-cluster.conf.example (the example users copy).  They
share the keys file, the identity key and the provider secret, and both
announce node A's URL as the issuer: A stands for the load balancer's
address, which is what every edge of a real cluster announces.
"""

from pathlib import Path

import harness
from harness import Proc, ROOT, free_port
from redis_util import RedisServer

CLUSTER_EXAMPLE = ROOT / "nginx-cluster.conf.example"


class Cluster:
    def __init__(self, workdir, cache="5s", workers=(1, 2), stream_check="60s",
                 redis_params="", replace=(), sentinel=None, wait_replicas=0, wait_timeout_ms=None):
        from conftest import NginxInstance, render_config, write_secrets
        from idp_util import start_idp

        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._redis = self.sentinel = self.idp = None
        self.wait_replicas, self.wait_timeout_ms = wait_replicas, wait_timeout_ms
        self.tools, self.nodes = [], []
        try:
            write_secrets(self.workdir)
            self.identity_key = (self.workdir / "identity.key").read_text().strip()
            if sentinel is None:
                self._redis = RedisServer(self.workdir / "redis").start()
                address = "127.0.0.1:%d" % self._redis.port
            else:
                from sentinel_util import SentinelSet
                self.sentinel = SentinelSet(self.workdir / "sentinel", **sentinel).start()
                address = " ".join(["sentinel=%s:%d" % a for a in self.sentinel.sentinel_addrs]
                                   + ["master=" + self.sentinel.master_name])
            if wait_replicas:
                redis_params = " wait_replicas=%d" % wait_replicas + redis_params
            if wait_timeout_ms is not None:
                redis_params = " wait_timeout=%dms" % wait_timeout_ms + redis_params

            self.port_a, self.port_b = free_port(), free_port()
            self.url = "http://127.0.0.1:%d" % self.port_a   # "the load balancer"
            secret = (self.workdir / "idp-client-secret").read_text().strip()
            self.idp, self.issuer, info = start_idp(
                self.workdir / "idp", client_id="mcp-gateway", client_secret=secret,
                redirect_uri=[self.url + "/oauth-callback"])
            self.demo_password = info["demo_password"]
            self.alice_password = info["alice_password"]
            self.viewer_password = info["viewer_password"]
            self.outsider_password = info["outsider_password"]

            # the edges' configuration first: the tool servers are given the
            # per-tool scope rules written there (the same on both edges)
            tool_ports = [free_port(), free_port()]
            relaxed = [("rate=60r/m", "rate=60000r/m"), ("rate=20r/s", "rate=20000r/s"),
                       ("rate=5r/s", "rate=5000r/s"),
                       ("127.0.0.1:6379", address),
                       ("cache=5s", "cache=%s%s" % (cache, redis_params)),
                       ("server 127.0.0.1:8809;", "server 127.0.0.1:%d;" % tool_ports[1])]
            for (name, port), nworkers in zip((("a", self.port_a), ("b", self.port_b)), workers):
                # every edge announces the same public URL (node A's)
                same_issuer = [("http://127.0.0.1:%d;" % port, "%s;" % self.url),
                               ("http://127.0.0.1:%d/mcp;" % port, "%s/mcp;" % self.url)]
                nx = NginxInstance(self.workdir / ("node-" + name), port=port,
                                   tool_port=tool_ports[0], idp=self.issuer,
                                   example=CLUSTER_EXAMPLE, workers=nworkers,
                                   http_extra="    mcp_auth_stream_check %s;\n" % stream_check,
                                   replace=relaxed + same_issuer + list(replace))
                self._share_secrets(nx.workdir)
                self.nodes.append(nx)
            rules = [render_config.tool_scope_args(nx.conf) for nx in self.nodes]
            assert rules[0] == rules[1], "the edges have different mcp_auth_tool_scope rules"
            self.tool_scope_args = rules[0]
            self.tools = [self._tool_server(i, port) for i, port in enumerate(tool_ports)]
            for nx in self.nodes:
                nx.start()
            self.a, self.b = self.nodes
        except BaseException:
            self.stop()
            raise

    @property
    def redis(self):
        """The Redis server (the primary the Sentinels name, in Sentinel mode)."""
        return self.sentinel.primary() if self.sentinel else self._redis

    def _redis_args(self):
        if self.sentinel is None:
            args = ["--redis-host", self._redis.host, "--redis-port", str(self._redis.port)]
        else:
            args = ["--redis-master", self.sentinel.master_name]
            for host, port in self.sentinel.sentinel_addrs:
                args += ["--redis-sentinel", "%s:%d" % (host, port)]
        if self.wait_replicas:
            args += ["--redis-wait-replicas", str(self.wait_replicas)]
        if self.wait_timeout_ms is not None:
            args += ["--redis-wait-timeout-ms", str(self.wait_timeout_ms)]
        return args

    def _share_secrets(self, nodedir):
        for name in ("keys", "identity.key", "idp-client-secret", "admin.key", "exchange-client.secret",
                     "service-client.secret"):
            (nodedir / name).write_text((self.workdir / name).read_text())

    def _tool_server(self, i, port=0):
        data = self.workdir / ("tool-data-%d" % i)
        data.mkdir(exist_ok=True)
        proc = Proc("tool-server-%d" % i,
                    [harness.TOOL_SERVER, "--listen", "127.0.0.1:%d" % port,
                     "--data-dir", data, "--identity-key", self.workdir / "identity.key",
                     "--store", "redis"] + self._redis_args() + self.tool_scope_args,
                    self.workdir, ready_line=r"listening on 127\.0\.0\.1:(\d+)").start()
        return proc, int(proc.match.group(1))

    def stop(self):
        for nx in self.nodes:
            nx.stop()
        for proc, _ in self.tools:
            proc.stop()
        if self.idp:
            self.idp.stop()
        if self._redis:
            self._redis.stop()
        if self.sentinel:
            self.sentinel.stop()
