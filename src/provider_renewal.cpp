#include "provider_renewal.hpp"

#include "claims.hpp"
#include "config.hpp"
#include "id_token.hpp"
#include "json.hpp"
#include "provider.hpp"
#include "session_index.hpp"

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

RenewalOutcome apply_provider_renewal(const Config& cf, Store& store, const std::string& sid, int fetch_status,
                                      const std::string& fetch_body, int64_t now) {
  const std::string key = "session:" + sid;
  RenewalOutcome outcome = RenewalOutcome::unavailable;

  if ((fetch_status == 400 || fetch_status == 401) && provider_error_code(fetch_body) == "invalid_grant") {
    // The user's sign-in at the provider has ended: so does ours, with what
    // is listed under it (session_index.hpp).
    StoreStatus gone = end_session(store, sid, now);
    if (gone == StoreStatus::pending) return RenewalOutcome::pending;
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
        // The claim rules again, on the ID token the provider sent with the
        // renewal: a user no longer admitted ends here, one who left a
        // group loses the scopes it gave.  Without an ID token the claims
        // of the last one stay.
        if (!cf.access.empty() && !t->id_token.empty()) {
          IdTokenExpectations expect;
          expect.issuer = cf.provider_issuer;
          expect.client_id = cf.provider_client_id;
          expect.now = now;
          auto read = read_refreshed_id_token(t->id_token, expect, s->sub);
          const IdTokenClaims* who = std::get_if<IdTokenClaims>(&read);
          if (!who) break;  // an answer we cannot use: nothing changes
          Json payload(cJSON_ParseWithLength(who->payload.data(), who->payload.size()));
          if (!payload || !cf.access.admit(payload.get()).empty()) {
            StoreStatus gone = store.del(key);
            if (gone == StoreStatus::ok) gone = unlist_session(store, *s, now);
            if (gone == StoreStatus::pending) return RenewalOutcome::pending;
            outcome = RenewalOutcome::ended;
            break;
          }
          ClaimSet kept = cf.access.keep(payload.get());
          s->claims = kept.to_record();
          s->scope = cf.access.holdable(s->scope, kept);  // never wider than granted
        }
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
