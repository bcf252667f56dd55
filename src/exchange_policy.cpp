#include "exchange_policy.hpp"

#include <algorithm>

namespace mcpauth {
namespace {

constexpr const char* kAudienceDirective = "mcp_auth_exchange_audience";
constexpr const char* kClientDirective = "mcp_auth_exchange_client";

std::string complaint(const char* directive, const std::string& what) { return std::string(directive) + ": " + what; }

}  // namespace

const ExchangeGrant* ExchangeClient::grant_for(std::string_view audience) const {
  for (const auto& g : grants)
    if (g.audience == audience) return &g;
  return nullptr;
}

const char* exchange_method_word(ExchangeAudience::Method m) {
  switch (m) {
    case ExchangeAudience::Method::on_behalf_of: return "on_behalf_of";
    case ExchangeAudience::Method::refresh_token: return "refresh_token";
    default: return "token_exchange";
  }
}

std::optional<ExchangeAudience> parse_exchange_audience(std::string_view line, std::string* err) {
  const auto words = directive_words(line);
  ExchangeAudience a;
  if (words.empty() || !plain_word(words[0]) || words[0].find('=') != std::string_view::npos) {
    *err = complaint(kAudienceDirective, "the first word must be the audience's name");
    return std::nullopt;
  }
  a.name = std::string(words[0]);
  bool method = false;
  for (size_t i = 1; i < words.size(); ++i) {
    std::string_view name, value;
    if (!split_setting(words[i], &name, &value)) {
      *err = complaint(kAudienceDirective, "\"" + std::string(words[i]) + "\" is not NAME=VALUE");
      return std::nullopt;
    }
    if (name == "method" && !method) {
      method = true;
      if (value == "token_exchange") a.method = ExchangeAudience::Method::token_exchange;
      else if (value == "on_behalf_of") a.method = ExchangeAudience::Method::on_behalf_of;
      else if (value == "refresh_token") a.method = ExchangeAudience::Method::refresh_token;
      else {
        *err = complaint(kAudienceDirective, "method must be token_exchange, on_behalf_of or refresh_token");
        return std::nullopt;
      }
    } else if (name == "scope" && a.scopes.empty()) {
      if (!parse_scope_words(value, &a.scopes)) {
        *err = complaint(kAudienceDirective, "scope= must hold scope tokens (RFC 6749); quote the whole word for several: \"scope=a b\"");
        return std::nullopt;
      }
    } else if (name == "provider_audience" && a.provider_audience.empty() && plain_word(value)) {
      a.provider_audience = std::string(value);
    } else if (name == "provider_resource" && a.provider_resource.empty() && plain_word(value)) {
      a.provider_resource = std::string(value);
    } else {
      *err = complaint(kAudienceDirective, "unknown, repeated or malformed setting \"" + std::string(words[i]) + "\"");
      return std::nullopt;
    }
  }
  if (!method) {
    *err = complaint(kAudienceDirective, "method= is required");
    return std::nullopt;
  }
  // The provider needs to be told which scopes these flows are for.
  if (a.method != ExchangeAudience::Method::token_exchange && a.scopes.empty()) {
    *err = complaint(kAudienceDirective, std::string("method=") + exchange_method_word(a.method) + " needs scope=");
    return std::nullopt;
  }
  if (a.method != ExchangeAudience::Method::token_exchange &&
      (!a.provider_audience.empty() || !a.provider_resource.empty())) {
    *err = complaint(kAudienceDirective, "provider_audience= and provider_resource= are for method=token_exchange");
    return std::nullopt;
  }
  if (a.method == ExchangeAudience::Method::token_exchange && a.provider_audience.empty() &&
      a.provider_resource.empty())
    a.provider_audience = a.name;
  return a;
}

std::optional<ExchangeClient> parse_exchange_client(std::string_view line, std::string* err) {
  const auto words = directive_words(line);
  ExchangeClient c;
  if (words.empty() || !plain_word(words[0]) || words[0].find('=') != std::string_view::npos) {
    *err = complaint(kClientDirective, "the first word must be the client id");
    return std::nullopt;
  }
  c.client_id = std::string(words[0]);
  for (size_t i = 1; i < words.size(); ++i) {
    std::string_view name, value;
    if (!split_setting(words[i], &name, &value)) {
      *err = complaint(kClientDirective, "\"" + std::string(words[i]) + "\" is not NAME=VALUE");
      return std::nullopt;
    }
    if (take_credential_setting(name, value, &c)) continue;
    if (name == "audience" && plain_word(value)) {
      if (c.grant_for(value)) {
        *err = complaint(kClientDirective, "audience " + std::string(value) + " is repeated");
        return std::nullopt;
      }
      c.grants.push_back({std::string(value), {}});
    } else if (name == "scope" && !c.grants.empty() && c.grants.back().scopes.empty()) {
      if (!parse_scope_words(value, &c.grants.back().scopes)) {
        *err = complaint(kClientDirective, "scope= must hold scope tokens (RFC 6749); quote the whole word for several: \"scope=a b\"");
        return std::nullopt;
      }
    } else {
      *err = complaint(kClientDirective, "unknown, repeated or misplaced setting \"" + std::string(words[i]) +
                                             "\" (scope= follows the audience= it narrows)");
      return std::nullopt;
    }
  }
  std::string why = check_credential_settings(kClientDirective, c);
  if (!why.empty()) {
    *err = why;
    return std::nullopt;
  }
  if (c.grants.empty()) {
    *err = complaint(kClientDirective, "name at least one audience=");
    return std::nullopt;
  }
  return c;
}

}  // namespace mcpauth
