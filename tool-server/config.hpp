// Run-time configuration, filled from the command line by main.cpp.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

enum class SnippetScope { Private, Shared };

struct Config {
    std::string listen_host = "127.0.0.1";
    int listen_port = 8808;
    std::string data_dir = ".";
    std::string identity_key_file;         // HS256 shared secret
    std::string identity_public_key_file;  // ES256 public key (PEM)
    std::string identity_iss = "ngx_mcp_auth";
    std::string identity_aud = "mcp-tool-server";
    bool insecure_no_auth = false;
    SnippetScope snippet_scope = SnippetScope::Private;
    std::vector<std::string> allowed_origins;  // empty: loopback origins only
    size_t max_body = 4 * 1024 * 1024;
    size_t max_snippet = 1024 * 1024;
    int keepalive_interval = 15;  // seconds
};
