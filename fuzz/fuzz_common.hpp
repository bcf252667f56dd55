// Shared helpers for the libFuzzer harnesses in fuzz/ (header-only).
//
// Each harness is one .cpp with LLVMFuzzerTestOneInput; this header gives
// them a fixed key ring, a configured gateway (like t/unit's fixture, but
// without gtest) and a way to split one input into several strings.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

#include "config.hpp"
#include "crypto.hpp"

namespace fuzzutil {

// A fixed AES-256 key ("k1", 32 bytes of 0x42) so that inputs reproduce.
inline const char* kKeyLine = "k1 QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI";

inline const mcpauth::KeyRing& keyring() {
  static const mcpauth::KeyRing ring = [] {
    std::string err;
    auto r = mcpauth::KeyRing::parse(kKeyLine, &err);
    if (!r) {
      std::fprintf(stderr, "fuzz: bad fixed key: %s\n", err.c_str());
      std::abort();
    }
    return *r;
  }();
  return ring;
}

// A file in a per-process temp directory, written once.
inline std::string temp_file(const std::string& name, const std::string& content) {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/mcpauth-fuzz-XXXXXX";
    const char* d = mkdtemp(tmpl);
    if (!d) std::abort();
    return std::string(d);
  }();
  std::string path = dir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  std::fwrite(content.data(), 1, content.size(), f);
  std::fclose(f);
  return path;
}

// The gateway configuration the unit tests use (t/unit/test_endpoint_fixture.hpp).
inline const mcpauth::Config& config() {
  static const mcpauth::Config cf = [] {
    mcpauth::Config c;
    c.issuer = "https://mcp.example";
    c.scopes = {"mcp:tools", "mcp:read"};
    c.provider_issuer = "https://idp.example";
    c.provider_authorization_endpoint = "https://idp.example/authorize";
    c.provider_token_endpoint = "https://idp.example/token";
    c.provider_client_id = "gateway";
    c.provider_client_secret_file = temp_file("secret", "provider secret\n");
    c.key_file = temp_file("keys", std::string(kKeyLine) + "\n");
    std::string err = c.load();
    if (!err.empty()) {
      std::fprintf(stderr, "fuzz: config: %s\n", err.c_str());
      std::abort();
    }
    return c;
  }();
  return cf;
}

// Splits the input at NUL bytes into up to n parts (missing parts are "").
inline std::vector<std::string> split(const uint8_t* data, size_t size, size_t n) {
  std::vector<std::string> out(n);
  size_t part = 0;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0 && part + 1 < n) {
      ++part;
      continue;
    }
    out[part].push_back(static_cast<char>(data[i]));
  }
  return out;
}

}  // namespace fuzzutil
