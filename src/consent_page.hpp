// HTML for the consent screen and for error/message pages shown in the
// browser during the login flow.  Self-contained pages (inline CSS only, no
// scripts) meant to be served with
//   Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline';
//                            form-action 'self'; frame-ancestors 'none'
// Every interpolated string is HTML-escaped.  Pure: no I/O.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mcpauth {

// Names of the form fields the consent page posts back.
inline constexpr std::string_view kConsentDecisionField = "decision";  // "allow" | "deny"
inline constexpr std::string_view kConsentCsrfField = "csrf_token";
inline constexpr std::string_view kConsentRememberField = "remember";  // "1" when ticked

struct ConsentView {
  std::string client_name;        // self-declared by the client; may be empty
  std::string client_id;
  std::string redirect_uri_host;  // where the browser goes after the decision
  std::string csrf_token;
  std::string action_path;        // form action; empty posts to the current URL
  std::vector<std::pair<std::string, std::string>> hidden_fields;  // name, value
  std::vector<std::pair<std::string, std::string>> scopes;         // scope, description
  // Scopes in `scopes` beyond what this browser remembered approving for
  // the client: the page says that the application now asks for more.
  std::vector<std::string> new_scopes;
  bool remember_option = false;
  std::string product_name;       // e.g. "Acme MCP Gateway"; a default when empty
  std::string user_display;       // "Signed in as …" line; omitted when empty
};

std::string render_consent_page(const ConsentView& view);

// The frame every page shares (head, stylesheet plus `extra_style`, the
// card), for pages rendered elsewhere (account_page.cpp).  `title` is
// escaped; `extra_style` is the caller's own constant CSS.
void render_page_start(std::string* out, std::string_view title, std::string_view extra_style = {});
void render_page_end(std::string* out);

// A page with a heading and one paragraph, for "Client not found", "Invalid
// redirect URI", "Login failed", provider unavailable...  `status_hint` is the
// HTTP status the caller will send; it is shown small and picks the tone
// (>= 500: "try again later").
std::string render_message_page(std::string_view title, std::string_view message, int status_hint);

// A message page with one link back to the application (its redirect URI,
// carrying the outcome), for outcomes the gateway will not send the browser
// to on its own (RFC 9700 §4.11.2): the user sees where the link goes and
// follows it or not.
std::string render_return_page(std::string_view title, std::string_view message, std::string_view href,
                               std::string_view destination, int status_hint);

}  // namespace mcpauth
