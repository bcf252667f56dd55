#include "provider_renewal.hpp"

#include "provider.hpp"

namespace mcpauth {
namespace {
constexpr int64_t kRenewLockSeconds = 30;
}

bool provider_renewal_due(const Session& s, int64_t now, int64_t margin) {
  return !s.provider_refresh_token.empty() && s.provider_expires != 0 && s.provider_expires - now < margin;
}

StoreStatus claim_provider_renewal(Store& store, const std::string& sid, int64_t now) {
  return store.put_new("renewing:" + sid, "1", now + kRenewLockSeconds);
}

RenewalOutcome apply_provider_renewal(Store& store, const std::string& sid, int fetch_status,
                                      const std::string& fetch_body, int64_t now) {
  const std::string key = "session:" + sid;
  RenewalOutcome outcome = RenewalOutcome::unavailable;

  if ((fetch_status == 400 || fetch_status == 401) && provider_error_code(fetch_body) == "invalid_grant") {
    // The user's sign-in at the provider has ended: so does ours.
    if (store.del(key) == StoreStatus::pending) return RenewalOutcome::pending;
    outcome = RenewalOutcome::ended;
  } else if (fetch_status == 200) {
    auto parsed = parse_provider_tokens(fetch_body);
    if (auto* t = std::get_if<ProviderTokens>(&parsed)) {
      for (int attempt = 0; attempt < 4; ++attempt) {
        std::string raw;
        StoreStatus got = store.get(key, &raw);
        if (got == StoreStatus::pending) return RenewalOutcome::pending;
        if (got != StoreStatus::ok) break;
        auto s = decode_session(raw);
        if (!s) break;
        s->provider_access_token = t->access_token;
        if (!t->refresh_token.empty()) s->provider_refresh_token = t->refresh_token;
        s->provider_expires = t->expires_in > 0 ? now + t->expires_in : 0;
        StoreStatus st = store.replace_if(key, raw, encode_session(*s), s->expires);
        if (st == StoreStatus::pending) return RenewalOutcome::pending;
        if (st == StoreStatus::ok) {
          outcome = RenewalOutcome::renewed;
          break;
        }
        if (st != StoreStatus::conflict) break;  // a concurrent write: read again
      }
    }
  }
  if (store.del("renewing:" + sid) == StoreStatus::pending) return RenewalOutcome::pending;
  return outcome;
}

const char* renewal_outcome_word(RenewalOutcome o) {
  switch (o) {
    case RenewalOutcome::renewed: return "renewed";
    case RenewalOutcome::ended: return "ended";
    default: return "failed";
  }
}

}  // namespace mcpauth
