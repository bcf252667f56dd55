// The tool server's check of the X-MCP-Identity header
// (IdentityVerifier::verify, HS256 with a fixed key).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "config.hpp"
#include "identity.hpp"

using toolserver::Config;
using toolserver::Identity;
using toolserver::IdentityVerifier;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const IdentityVerifier* verifier = [] {
    char path[] = "/tmp/mcp-tool-fuzz-key-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) std::abort();
    const std::string key(64, 'k');
    if (write(fd, key.data(), key.size()) != static_cast<ssize_t>(key.size())) std::abort();
    close(fd);
    Config cfg;
    cfg.identity_key_file = path;
    std::string err;
    auto v = IdentityVerifier::create(cfg, err);
    unlink(path);
    if (!v) {
      std::fprintf(stderr, "fuzz: verifier: %s\n", err.c_str());
      std::abort();
    }
    return v.release();
  }();
  std::string token(reinterpret_cast<const char*>(data), size);
  Identity who;
  std::string why;
  (void)verifier->verify(token, who, why);
  return 0;
}
