#include "client_metadata_document.hpp"

#include <arpa/inet.h>
#include <cjson/cJSON.h>

#include <cstring>
#include <memory>

#include "redirect_uri.hpp"

namespace mcpauth {
namespace {

bool has_dot_segment(const std::string& path) {
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string seg = path.substr(i, j - i);
    if (seg == "." || seg == ".." || seg == "%2e" || seg == "%2E" || seg == "%2e%2e" || seg == "%2E%2E")
      return true;
    i = j + 1;
  }
  return false;
}

}  // namespace

std::optional<DocumentLocation> client_id_document_location(std::string_view client_id) {
  if (client_id.size() > 1024) return std::nullopt;
  std::string why;
  auto uri = parse_uri(client_id, &why);
  if (!uri || uri->scheme != "https" || uri->host.empty() || uri->has_userinfo || uri->has_fragment)
    return std::nullopt;
  if (uri->path.empty() || uri->path == "/" || has_dot_segment(uri->path)) return std::nullopt;
  DocumentLocation loc;
  loc.host = uri->host;
  if (loc.host.size() > 2 && loc.host.front() == '[' && loc.host.back() == ']')
    loc.host = loc.host.substr(1, loc.host.size() - 2);
  loc.port = uri->has_port ? std::stoi(uri->port) : 443;
  loc.path = uri->path + (uri->has_query ? "?" + uri->query : "");
  return loc;
}

std::variant<ClientMetadata, RegistrationError> parse_client_id_document(
    std::string_view body, std::string_view client_id, const std::vector<std::string>& supported_scopes) {
  std::unique_ptr<cJSON, decltype(&cJSON_Delete)> doc(cJSON_ParseWithLength(body.data(), body.size()),
                                                      cJSON_Delete);
  if (!doc || !cJSON_IsObject(doc.get()))
    return RegistrationError{"invalid_client_metadata", "the client metadata document is not a JSON object"};
  const cJSON* id = cJSON_GetObjectItemCaseSensitive(doc.get(), "client_id");
  if (!cJSON_IsString(id) || client_id != id->valuestring)
    return RegistrationError{"invalid_client_metadata",
                             "the document's client_id is not the URL it was fetched from"};
  for (const char* forbidden : {"client_secret", "client_secret_expires_at"})
    if (cJSON_GetObjectItemCaseSensitive(doc.get(), forbidden))
      return RegistrationError{"invalid_client_metadata",
                               std::string("a client metadata document must not contain ") + forbidden};
  const cJSON* method = cJSON_GetObjectItemCaseSensitive(doc.get(), "token_endpoint_auth_method");
  if (method && !(cJSON_IsString(method) && std::strcmp(method->valuestring, "none") == 0))
    return RegistrationError{"invalid_client_metadata",
                             "only public clients (token_endpoint_auth_method \"none\") may use a "
                             "client metadata document here"};
  // From here the rules are registration's own (redirect URIs, grant and
  // response types, scope); the auth method defaults to "none".
  cJSON_DeleteItemFromObjectCaseSensitive(doc.get(), "client_id");
  if (!method) cJSON_AddStringToObject(doc.get(), "token_endpoint_auth_method", "none");
  std::unique_ptr<char, decltype(&cJSON_free)> text(cJSON_PrintUnformatted(doc.get()), cJSON_free);
  if (!text) throw std::bad_alloc();
  auto parsed = parse_registration_request(text.get(), supported_scopes);
  if (auto* c = std::get_if<ClientMetadata>(&parsed)) c->client_id.assign(client_id);
  return parsed;
}

int64_t client_id_document_lifetime(std::string_view cache_control) {
  int64_t seconds = 3600;
  std::string cc(cache_control);
  for (char& ch : cc) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  size_t p = cc.find("max-age=");
  if (p != std::string::npos) {
    int64_t v = 0;
    size_t i = p + 8;
    bool digits = false;
    while (i < cc.size() && cc[i] >= '0' && cc[i] <= '9' && v < 100000000) {
      v = v * 10 + (cc[i++] - '0');
      digits = true;
    }
    if (digits) seconds = v;
  }
  if (cc.find("no-store") != std::string::npos || cc.find("no-cache") != std::string::npos) seconds = 0;
  if (seconds < 300) seconds = 300;
  if (seconds > 86400) seconds = 86400;
  return seconds;
}

bool fetch_address_allowed(std::string_view ip, bool allow_private) {
  std::string text(ip);
  unsigned char a[16];
  if (inet_pton(AF_INET, text.c_str(), a) == 1) {
    if (allow_private) return true;
    const unsigned b0 = a[0], b1 = a[1];
    if (b0 == 0 || b0 == 10 || b0 == 127) return false;              // this, private, loopback
    if (b0 == 100 && (b1 & 0xc0) == 64) return false;                // CGNAT 100.64/10
    if (b0 == 169 && b1 == 254) return false;                        // link-local
    if (b0 == 172 && (b1 & 0xf0) == 16) return false;                // 172.16/12
    if (b0 == 192 && b1 == 168) return false;                        // 192.168/16
    if (b0 == 192 && b1 == 0 && a[2] == 0) return false;             // IETF assignments
    if (b0 == 198 && (b1 & 0xfe) == 18) return false;                // benchmarking
    if (b0 >= 224) return false;                                     // multicast, reserved
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), a) == 1) {
    if (allow_private) return true;
    static const unsigned char zero[16] = {0};
    if (std::memcmp(a, zero, 15) == 0 && (a[15] == 0 || a[15] == 1)) return false;  // :: and ::1
    if ((a[0] & 0xfe) == 0xfc) return false;                         // unique local fc00::/7
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return false;         // link-local fe80::/10
    if (a[0] == 0xff) return false;                                  // multicast
    // IPv4-mapped (::ffff:a.b.c.d): judge the IPv4 address
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a, mapped, 12) == 0) {
      char v4[INET_ADDRSTRLEN];
      if (!inet_ntop(AF_INET, a + 12, v4, sizeof(v4))) return false;
      return fetch_address_allowed(v4, false);
    }
    return true;
  }
  return false;  // not an address
}

}  // namespace mcpauth
