// POST /register bodies: parse_registration_request, the stored form
// (serialize/deserialize_client) and the whole endpoint with a MemoryStore.
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "endpoints.hpp"
#include "fuzz_common.hpp"
#include "registration.hpp"

using namespace mcpauth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  static const std::vector<std::string> scopes = {"mcp:tools", "mcp:read"};
  auto parsed = parse_registration_request(body, scopes);
  if (auto* client = std::get_if<ClientMetadata>(&parsed)) {
    client->client_id = "client-1";  // assigned by the endpoint, as in handle_register
    client->client_id_issued_at = 1'800'000'000;
    std::string stored = serialize_client(*client);
    if (!deserialize_client(stored)) __builtin_trap();  // what we store must load again
    std::string secret = "s";
    (void)registration_response_json(*client, &secret);
  }
  (void)deserialize_client(body);

  MemoryStore store;
  store.now = 1'800'000'000;
  Request r;
  r.method = "POST";
  r.body = body;
  r.content_type = "application/json";
  r.now = store.now;
  (void)handle_endpoint(MCPA_EP_REGISTER, fuzzutil::config(), store, r);
  return 0;
}
