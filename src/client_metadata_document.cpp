#include "client_metadata_document.hpp"
#include "json.hpp"

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
  Json doc(cJSON_ParseWithLength(body.data(), body.size()));
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
  if (auto* c = std::get_if<ClientMetadata>(&parsed)) {
    c->client_id.assign(client_id);
    if (auto too_big = stored_size_error(*c)) return *too_big;
  }
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

namespace {

// A prefix of `bits` bits: the address in network order.
struct Block {
  unsigned char addr[16];
  unsigned bits;
};

bool in_block(const unsigned char* a, const Block& b) {
  const unsigned whole = b.bits / 8, rest = b.bits % 8;
  if (std::memcmp(a, b.addr, whole) != 0) return false;
  if (rest == 0) return true;
  const auto mask = static_cast<unsigned char>(0xff00u >> rest);
  return (a[whole] & mask) == (b.addr[whole] & mask);
}

// IPv4 ranges that are not globally reachable unicast: the IANA IPv4
// Special-Purpose Address Registry (RFC 6890 §2.2.2 and its updates) where
// "Globally Reachable" is False or N/A, plus multicast (RFC 5771) and the
// reserved 240/4 (RFC 1112), broadcast included.  192.0.0.0/24 is refused
// whole, its two anycast /32s with it: no metadata document lives there.
constexpr Block kNonGlobalV4[] = {
    {{0, 0, 0, 0}, 8},          // "this network" (RFC 791)
    {{10, 0, 0, 0}, 8},         // private (RFC 1918)
    {{100, 64, 0, 0}, 10},      // shared address space, CGNAT (RFC 6598)
    {{127, 0, 0, 0}, 8},        // loopback (RFC 1122)
    {{169, 254, 0, 0}, 16},     // link-local (RFC 3927), cloud metadata
    {{172, 16, 0, 0}, 12},      // private (RFC 1918)
    {{192, 0, 0, 0}, 24},       // IETF protocol assignments (RFC 6890)
    {{192, 0, 2, 0}, 24},       // documentation TEST-NET-1 (RFC 5737)
    {{192, 88, 99, 0}, 24},     // 6to4 relay anycast, deprecated (RFC 7526)
    {{192, 168, 0, 0}, 16},     // private (RFC 1918)
    {{198, 18, 0, 0}, 15},      // benchmarking (RFC 2544)
    {{198, 51, 100, 0}, 24},    // documentation TEST-NET-2 (RFC 5737)
    {{203, 0, 113, 0}, 24},     // documentation TEST-NET-3 (RFC 5737)
    {{224, 0, 0, 0}, 4},        // multicast (RFC 5771)
    {{240, 0, 0, 0}, 4},        // reserved (RFC 1112), 255.255.255.255 broadcast
};

// IPv6: only global unicast, 2000::/3 (RFC 4291 §2.4; IANA IPv6 Address
// Space), is ever allowed; that excludes ::/8 (unspecified, loopback,
// IPv4-compatible ::/96, NAT64 64:ff9b::/96 and 64:ff9b:1::/48 of RFC 6052
// and RFC 8215), 100::/64 (discard, RFC 6666), fc00::/7 (unique local),
// fe80::/10 (link-local), fec0::/10 (site-local, RFC 3879), ff00::/8
// (multicast).  IPv4-mapped ::ffff:0:0/96 (RFC 4291 §2.5.5.2) is the IPv4
// address itself and is judged by the IPv4 rules.  Within 2000::/3, these
// registry entries are not global (or lead wherever a relay decides):
constexpr Block kNonGlobalV6[] = {
    {{0x20, 0x01}, 23},                    // IETF protocol assignments (RFC 2928):
                                           // Teredo 2001::/32 (RFC 4380), benchmarking,
                                           // ORCHID, AMT, ... (refused whole)
    {{0x20, 0x01, 0x0d, 0xb8}, 32},        // documentation (RFC 3849)
    {{0x20, 0x02}, 16},                    // 6to4 (RFC 3056): a relay picks the IPv4 end
    {{0x3f, 0xff, 0x00}, 20},              // documentation (RFC 9637)
};
constexpr Block kGlobalUnicastV6 = {{0x20}, 3};
constexpr Block kMappedV4 = {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96};

bool global_v4(const unsigned char* a) {
  for (const auto& b : kNonGlobalV4)
    if (in_block(a, b)) return false;
  return true;
}

}  // namespace

bool fetch_address_allowed(std::string_view ip, bool allow_private) {
  // Only the exact textual forms inet_pton knows: no zone ids, brackets,
  // or shorthand IPv4 ("127.1", octal "0177.0.0.1").
  std::string text(ip);
  unsigned char a[16];
  if (inet_pton(AF_INET, text.c_str(), a) == 1) return allow_private || global_v4(a);
  if (inet_pton(AF_INET6, text.c_str(), a) != 1) return false;  // not an address
  if (allow_private) return true;
  if (in_block(a, kMappedV4)) return global_v4(a + 12);
  if (!in_block(a, kGlobalUnicastV6)) return false;
  for (const auto& b : kNonGlobalV6)
    if (in_block(a, b)) return false;
  return true;
}

}  // namespace mcpauth
