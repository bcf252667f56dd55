// The tool server's HTTP layer: raw HTTP/1.1 bytes -- request lines,
// headers, Content-Length and chunked bodies, /message?sessionId=...,
// X-MCP-Identity -- through HttpServer (tool-server/http_server.cpp and the
// transports) on libevent's evhttp, over a real loopback connection, the way
// the gateway's connections reach it.
//
// Per input: a fresh HttpServer listening on 127.0.0.1 (port 0); one client
// socket that writes the bytes (pipelined requests included), then a
// bounded run of the event loop until the server has answered everything it
// will (no reply byte for a few turns) or closed the connection; then the
// client resets the connection and the server is destroyed (evhttp_free
// ends whatever is left). So no session, stream, descriptor or byte of
// memory outlives the input, and an input replays alone the way it ran.
// The snippet store answers every other call from a later loop turn
// (memory_snippets.hpp), as Redis does: a response that waits, and its
// client or server gone before it comes, are inputs' business too (answers
// still deferred when the server is destroyed come in one more turn).
//
// The first byte is flags:
//   bit 0: assertions are checked with a fixed HS256 key (else --insecure-no-auth);
//   bit 1: the client half-closes after writing (evhttp's end-of-input paths).
// In the rest, "@ID@" becomes a valid assertion for subject "fuzzer" with
// scope snippets:read, "@IDW@" one with snippets:read snippets:write (the
// fuzzer cannot sign; the rules --tool-scope save_snippet=snippets:write and
// get_snippet=snippets:read are in force), and "@NEXT@", "@CONN@" and
// "@SID@" make a conversation (see run_one). Session caps are small (4 per subject, 8 in
// all) so that pipelined initializes reach them.
// FUZZ_HTTP_TRACE=1 in the environment copies the replies to stderr (for
// make fuzz-repro).
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <event2/event.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "config.hpp"
#include "http_server.hpp"
#include "identity.hpp"
#include "log.hpp"
#include "mcp_protocol.hpp"
#include "memory_snippets.hpp"
#include "tools.hpp"

namespace mcp = toolserver::mcp;
using toolserver::Config;
using toolserver::HttpServer;
using toolserver::IdentityVerifier;
using toolserver::MemorySnippets;
using toolserver::SnippetScope;
using toolserver::Tools;

namespace {

constexpr const char* kKey = "fuzz-identity-key-0123456789abcdef0123456789abcdef";
constexpr int kMaxTurns = 4096;  // event-loop turns per input, at most
constexpr int kQuietTurns = 16; // turns without a reply byte that end an input (evhttp reads 4 KiB a turn)

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "fuzz: %s\n", what);
  std::abort();
}

std::string key_file() {
  char tmpl[] = "/tmp/mcp-fuzz-http-XXXXXX";
  const char* dir = mkdtemp(tmpl);
  if (!dir) die("mkdtemp failed");
  std::string path = std::string(dir) + "/identity.key";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) die("cannot write the identity key");
  std::fputs(kKey, f);
  std::fclose(f);
  return path;
}

std::string b64url(const unsigned char* p, size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&out[0]), p, static_cast<int>(n));
  out.resize(static_cast<size_t>(len));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

std::string b64url(const std::string& s) { return b64url(reinterpret_cast<const unsigned char*>(s.data()), s.size()); }

// An assertion as the gateway mints it (HS256, 4 minutes).
// `more` is further members, e.g. ",\"claims\":{...}".
std::string mint(const char* scope, long now, const char* more = "") {
  const std::string head = b64url(std::string("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"));
  const std::string claims = b64url("{\"iss\":\"ngx_mcp_auth\",\"aud\":\"mcp-tool-server\",\"sub\":\"fuzzer\","
                                    "\"client_id\":\"fuzz\",\"scope\":\"" + std::string(scope) + "\",\"iat\":" +
                                    std::to_string(now) + ",\"exp\":" + std::to_string(now + 240) + more + "}");
  const std::string input = head + "." + claims;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), kKey, static_cast<int>(std::char_traits<char>::length(kKey)),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len);
  return input + "." + b64url(mac, mac_len);
}

// Open descriptors of this process.
size_t open_fds() {
  size_t n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d)) ++n;
    closedir(d);
  }
  return n;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
}

struct World {
  Config cfg;
  event_base* base = nullptr;
  std::unique_ptr<IdentityVerifier> verifier;
  MemorySnippets store;
  std::unique_ptr<Tools> tools;
  std::unique_ptr<mcp::Server> mcp;
  std::string read_token, write_token;
  long minted_at = 0;

  World() {
    toolserver::log_set_level(std::getenv("FUZZ_HTTP_TRACE") ? "debug" : "error");
    std::signal(SIGPIPE, SIG_IGN);
    cfg.listen_host = "127.0.0.1";
    cfg.listen_port = 0;
    cfg.identity_key_file = key_file();
    cfg.max_body = 8192;  // inputs reach the 413 paths
    cfg.max_snippet = 1024;
    cfg.max_sessions = 8;
    cfg.max_sessions_per_subject = 4;
    std::string err;
    if (!cfg.tool_scopes.add("save_snippet=snippets:write", err) ||
        !cfg.tool_scopes.add("get_snippet=snippets:read", err))
      die("bad tool scopes");
    if (!cfg.tool_claims.add("save_snippet:groups=editors,admins", err)) die("bad tool claims");
    verifier = IdentityVerifier::create(cfg, err);
    if (!verifier) die("no identity verifier");
    tools = std::make_unique<Tools>(store, SnippetScope::Private, cfg.max_snippet);
    mcp = std::make_unique<mcp::Server>(*tools, cfg.tool_scopes, cfg.tool_claims);
    // as main.cpp makes it
    event_config* ev_cfg = event_config_new();
    if (ev_cfg) event_config_set_flag(ev_cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base = ev_cfg ? event_base_new_with_config(ev_cfg) : nullptr;
    if (ev_cfg) event_config_free(ev_cfg);
    if (!base) die("event_base_new failed");
    store.defer_on(base);
  }

  // Tokens good for a while yet (re-minted every minute).
  void refresh_tokens() {
    const long now = static_cast<long>(std::time(nullptr));
    if (now - minted_at < 60) return;
    read_token = mint("snippets:read", now);
    write_token = mint("snippets:read snippets:write", now, ",\"claims\":{\"groups\":[\"editors\"]}");
    minted_at = now;
  }
};

// One turn of the event loop, without waiting: what is ready runs, as in
// the server's own event_base_dispatch. (EVLOOP_NONBLOCK is not the same:
// with it, a request pipelined behind one answered with write_now was never
// read.)
void turn_of_the_loop(event_base* base) {
  const timeval now{0, 0};
  event_base_loopexit(base, &now);
  event_base_dispatch(base);
}

// The last session id a reply handed out (Mcp-Session-Id header, or the
// SSE endpoint's sessionId=), looked for in `text`.
void note_session_id(const std::string& text, std::string& sid) {
  for (const char* marker : {"Mcp-Session-Id: ", "sessionId="}) {
    for (size_t at = text.find(marker); at != std::string::npos; at = text.find(marker, at + 1)) {
      const size_t start = at + std::char_traits<char>::length(marker);
      if (text.size() - start >= 32) sid = text.substr(start, 32);
    }
  }
}

// A client connection to the server under test.
struct Client {
  int fd = -1;
  bool closed = false;  // the server closed (or reset) it
};

Client connect_to(int port) {
  Client c;
  c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) die("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS)
    die("connect failed");
  return c;
}

// Reads what the server has written to `c`; true when there was something.
bool drain(Client& c, std::string& replies) {
  static char buf[1 << 16];
  static const bool trace = std::getenv("FUZZ_HTTP_TRACE") != nullptr;
  bool got = false;
  while (!c.closed) {
    const ssize_t n = recv(c.fd, buf, sizeof buf, 0);
    if (n > 0) {
      if (trace) std::fwrite(buf, 1, static_cast<size_t>(n), stderr);
      if (replies.size() < (1u << 20)) replies.append(buf, static_cast<size_t>(n));
      got = true;
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) c.closed = true;
    break;
  }
  return got;
}

// Writes `bytes` to a fresh server and runs the loop until it is done with
// them. They may be a conversation of rounds, each sent once the server is
// done with the one before: "@NEXT@" starts a round on the same connection,
// "@CONN@" one on a new connection (the others stay open: an SSE stream and
// the POSTs for it), and "@SID@" in a round is the last session id the
// server handed out (inputs cannot know the random ids).
void run_one(World& w, const std::string& bytes, bool checked, bool half_close) {
  HttpServer server(w.cfg, w.base, checked ? w.verifier.get() : nullptr, *w.mcp);
  std::string err;
  const int port = server.listen(err);
  if (port < 0) die("listen failed");

  std::vector<Client> clients{connect_to(port)};
  std::string sid(32, '0'), replies;
  int turn = 0;
  for (size_t from = 0; from <= bytes.size();) {
    const size_t next_round = bytes.find("@NEXT@", from), next_conn = bytes.find("@CONN@", from);
    const size_t next = std::min(next_round, next_conn);
    const bool last = next == std::string::npos;
    std::string round = bytes.substr(from, last ? std::string::npos : next - from);
    replace_all(round, "@SID@", sid);
    from = last ? bytes.size() + 1 : next + 6;

    Client& c = clients.back();
    size_t sent = 0;
    bool shut = false;
    int quiet = 0;
    for (; turn < kMaxTurns && quiet < kQuietTurns; ++turn) {
      if (sent < round.size() && !c.closed) {
        const ssize_t n = send(c.fd, round.data() + sent, round.size() - sent, MSG_NOSIGNAL);
        if (n > 0) sent += static_cast<size_t>(n);
        else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) c.closed = true;  // reset by the server
      }
      if (last && half_close && !shut && (sent == round.size() || c.closed)) {
        shutdown(c.fd, SHUT_WR);
        shut = true;
      }
      turn_of_the_loop(w.base);
      bool progress = false;
      for (Client& each : clients) progress |= drain(each, replies);
      quiet = (progress || (sent < round.size() && !c.closed)) ? 0 : quiet + 1;
    }
    note_session_id(replies, sid);
    replies.clear();
    if (!last && next == next_conn && clients.size() < 8) clients.push_back(connect_to(port));
  }
  // A reset, not a FIN: no TIME_WAIT left behind per input.
  for (Client& c : clients) {
    linger abort_close{1, 0};
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
    close(c.fd);
  }
  turn_of_the_loop(w.base);  // the server sees the resets
}  // ~HttpServer: streams ended, evhttp_free closes its connections

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  world.refresh_tokens();
  replace_all(bytes, "@IDW@", world.write_token);
  replace_all(bytes, "@ID@", world.read_token);
  run_one(world, bytes, (flags & 1) != 0, (flags & 2) != 0);
  // Store answers still deferred come now, for a server that is gone.
  turn_of_the_loop(world.base);
  // Nothing of an input may stay open: the count settles after the first
  // inputs (libevent's own descriptors) and must not grow from there.
  static size_t runs = 0, settled = 0;
  if (++runs % 256 == 16) {
    const size_t now = open_fds();
    if (!settled) settled = now;
    else if (now > settled + 4) die("descriptors leak across inputs");
  }
  return 0;
}
