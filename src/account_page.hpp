// HTML of the account page ("Your connected apps"): the apps that hold
// sessions in the signed-in user's name, each with a Revoke button.  Same
// frame and rules as the consent page (consent_page.hpp): inline CSS only,
// no scripts, every interpolated string HTML-escaped.  Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mcpauth {

// Names of the form fields the page posts back.
inline constexpr std::string_view kAccountCsrfField = "csrf";
inline constexpr std::string_view kAccountActionField = "action";    // "revoke" | "signout"
inline constexpr std::string_view kAccountSessionField = "session";  // the session id, for "revoke"

struct AccountApp {
  std::string session_id;
  std::string client_name;    // self-declared by the client; may be empty
  std::string client_id;
  std::string redirect_host;  // host of the redirect URI the client got its code at
  std::string scope;          // space-separated
  int64_t created = 0;        // granted
  int64_t last_active = 0;    // last sign-in or token refresh
  bool remembered = false;    // this browser remembers consent for it
};

struct AccountView {
  std::string user_display;   // "Signed in as …"; omitted when empty
  std::string csrf_token;
  std::string action_path;    // where the forms post
  std::string notice;         // a confirmation line (e.g. after a revoke); omitted when empty
  std::vector<AccountApp> apps;
  size_t more = 0;            // sessions not listed (the page shows the newest)
};

std::string render_account_page(const AccountView& view);

// "2026-12-06 22:01 UTC"; "unknown" for 0 or less.
std::string utc_text(int64_t t);

}  // namespace mcpauth
