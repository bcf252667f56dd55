#include "consent_page.hpp"

#include "encoding.hpp"

namespace mcpauth {
namespace {

constexpr std::string_view kDefaultProduct = "MCP Gateway";

// One stylesheet for every page.  No external resources: the CSP allows
// none, and the page must render identically offline.
constexpr std::string_view kStyle = R"css(
:root{--bg:#f4f5f7;--card:#fff;--text:#1c1f24;--muted:#5f6670;--border:#dde0e4;
--primary:#1f5eff;--primary-hover:#1749cc;--warn-bg:#fff6e0;--warn-border:#f0c36d;--warn-text:#6b4a00;
--error:#b42318}
@media (prefers-color-scheme:dark){:root{--bg:#14161a;--card:#1d2026;--text:#e8eaed;--muted:#9aa1ab;
--border:#30343c;--primary:#4c82ff;--primary-hover:#3a6ff0;--warn-bg:#2e2612;--warn-border:#6b5420;
--warn-text:#f3d38b;--error:#ff8a80}}
*{box-sizing:border-box}
html,body{margin:0;padding:0}
body{background:var(--bg);color:var(--text);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,"Noto Sans",sans-serif;min-height:100vh;display:flex;align-items:center;
justify-content:center;padding:24px}
.card{background:var(--card);border:1px solid var(--border);border-radius:12px;
box-shadow:0 4px 24px rgba(0,0,0,.06);max-width:480px;width:100%;padding:32px}
.product{font-size:13px;font-weight:600;letter-spacing:.04em;text-transform:uppercase;color:var(--muted);
margin:0 0 16px}
h1{font-size:22px;line-height:1.3;margin:0 0 8px;overflow-wrap:anywhere}
p{margin:0 0 16px}
.muted{color:var(--muted);font-size:14px}
.client-id{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px;
overflow-wrap:anywhere}
.notice{background:var(--warn-bg);border:1px solid var(--warn-border);color:var(--warn-text);
border-radius:8px;padding:10px 12px;font-size:13px;margin:0 0 20px}
h2{font-size:15px;margin:0 0 8px}
ul.scopes{list-style:none;margin:0 0 20px;padding:0;border:1px solid var(--border);border-radius:8px}
ul.scopes li{padding:10px 12px;border-top:1px solid var(--border)}
ul.scopes li:first-child{border-top:0}
.scope-name{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px;
overflow-wrap:anywhere}
.scope-desc{display:block;color:var(--muted);font-size:14px}
.redirect{font-size:14px;margin:0 0 20px;overflow-wrap:anywhere}
.remember{display:flex;gap:8px;align-items:center;font-size:14px;margin:0 0 20px}
.actions{display:flex;gap:12px;justify-content:flex-end;flex-wrap:wrap}
button{font:inherit;font-weight:600;border-radius:8px;padding:10px 20px;cursor:pointer;min-width:110px}
button.primary{background:var(--primary);color:#fff;border:1px solid var(--primary)}
button.primary:hover{background:var(--primary-hover)}
button.secondary{background:transparent;color:var(--text);border:1px solid var(--border)}
button.secondary:hover{border-color:var(--muted)}
button:focus-visible{outline:3px solid var(--primary);outline-offset:2px}
.status{font-size:13px;color:var(--muted);margin:0 0 8px}
a.return{display:inline-block;font-weight:600;color:var(--primary);overflow-wrap:anywhere}
.scope-new{font-size:12px;font-weight:600;color:var(--warn-text);background:var(--warn-bg);
border:1px solid var(--warn-border);border-radius:4px;padding:0 6px;margin-left:8px}
.status.error{color:var(--error)}
)css";

void put(std::string* out, std::string_view text) { *out += html_escape(text); }

void page_start(std::string* out, std::string_view title, std::string_view extra_style = {}) {
  *out +=
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<meta name=\"referrer\" content=\"same-origin\">\n"  // not no-referrer: forms would post "Origin: null"
      "<meta name=\"robots\" content=\"noindex, nofollow\">\n<title>";
  put(out, title);
  *out += "</title>\n<style>";
  *out += kStyle;
  *out += extra_style;
  *out += "</style>\n</head>\n<body>\n<main class=\"card\">\n";
}

void page_end(std::string* out) { *out += "</main>\n</body>\n</html>\n"; }

void hidden(std::string* out, std::string_view name, std::string_view value) {
  *out += "<input type=\"hidden\" name=\"";
  put(out, name);
  *out += "\" value=\"";
  put(out, value);
  *out += "\">\n";
}

}  // namespace

void render_page_start(std::string* out, std::string_view title, std::string_view extra_style) {
  page_start(out, title, extra_style);
}
void render_page_end(std::string* out) { page_end(out); }

std::string render_consent_page(const ConsentView& v) {
  const std::string_view product = v.product_name.empty() ? kDefaultProduct : std::string_view(v.product_name);
  const bool unnamed = v.client_name.empty();
  const std::string_view name = unnamed ? std::string_view("Unnamed client") : std::string_view(v.client_name);

  std::string out;
  out.reserve(8192);
  page_start(&out, "Authorize " + std::string(name));

  out += "<p class=\"product\">";
  put(&out, product);
  out += "</p>\n<h1>Authorize ";
  put(&out, name);
  out += "</h1>\n<p class=\"muted\">Client ID: <span class=\"client-id\">";
  put(&out, v.client_id);
  out += "</span></p>\n";
  if (!v.user_display.empty()) {
    out += "<p class=\"muted\">Signed in as <strong>";
    put(&out, v.user_display);
    out += "</strong></p>\n";
  }

  // Dynamically registered clients name themselves (RFC 7591 §5): say so.
  out += "<p class=\"notice\" role=\"note\">";
  if (unnamed) {
    out += "This application did not give a name. ";
  } else {
    out += "The name above was provided by the application itself and has not been verified. ";
  }
  out += "Only allow access if you started this sign-in and trust the application.</p>\n";

  if (!v.new_scopes.empty()) {
    out += "<p class=\"notice\" role=\"note\">You approved this application before. It now asks for more: ";
    for (size_t i = 0; i < v.new_scopes.size(); ++i) {
      if (i) out += ", ";
      out += "<strong>";
      put(&out, v.new_scopes[i]);
      out += "</strong>";
    }
    out += ".</p>\n";
  }
  out += "<h2>It is asking to:</h2>\n<ul class=\"scopes\">\n";
  if (v.scopes.empty()) {
    out += "<li><span class=\"scope-desc\">Access the MCP server on your behalf</span></li>\n";
  }
  for (const auto& [scope, description] : v.scopes) {
    out += "<li><span class=\"scope-name\">";
    put(&out, scope);
    out += "</span>";
    for (const auto& n : v.new_scopes)
      if (n == scope) {
        out += "<span class=\"scope-new\">new</span>";
        break;
      }
    if (!description.empty()) {
      out += "<span class=\"scope-desc\">";
      put(&out, description);
      out += "</span>";
    }
    out += "</li>\n";
  }
  out += "</ul>\n";

  if (!v.redirect_uri_host.empty()) {
    out += "<p class=\"redirect\">After you choose, you will be sent back to <strong>";
    put(&out, v.redirect_uri_host);
    out += "</strong>.</p>\n";
  }

  out += "<form method=\"post\"";
  if (!v.action_path.empty()) {
    out += " action=\"";
    put(&out, v.action_path);
    out += "\"";
  }
  out += ">\n";
  hidden(&out, kConsentCsrfField, v.csrf_token);
  for (const auto& [field, value] : v.hidden_fields) hidden(&out, field, value);
  if (v.remember_option) {
    out += "<label class=\"remember\"><input type=\"checkbox\" name=\"";
    out += kConsentRememberField;
    out += "\" value=\"1\"> Remember my choice for this app</label>\n";
  }
  out += "<div class=\"actions\">\n"
         "<button type=\"submit\" class=\"secondary\" name=\"decision\" value=\"deny\">Deny</button>\n"
         "<button type=\"submit\" class=\"primary\" name=\"decision\" value=\"allow\">Allow</button>\n"
         "</div>\n</form>\n";
  page_end(&out);
  return out;
}

namespace {

// The start of a message page: its status line, heading and paragraph.
void message_start(std::string* out, std::string_view title, std::string_view message, int status_hint) {
  page_start(out, title);
  if (status_hint >= 100 && status_hint <= 599) {
    *out += status_hint >= 400 ? "<p class=\"status error\">" : "<p class=\"status\">";
    *out += status_hint >= 400 ? "Error " : "Status ";
    *out += std::to_string(status_hint);
    *out += "</p>\n";
  }
  *out += "<h1>";
  put(out, title);
  *out += "</h1>\n<p>";
  put(out, message);
  *out += "</p>\n";
}

}  // namespace

std::string render_message_page(std::string_view title, std::string_view message, int status_hint) {
  std::string out;
  out.reserve(4096);
  message_start(&out, title, message, status_hint);
  if (status_hint >= 500) {
    out += "<p class=\"muted\">This is probably temporary. Please try again in a few minutes.</p>\n";
  } else if (status_hint >= 400) {
    out += "<p class=\"muted\">You can close this window and start again from the application.</p>\n";
  }
  page_end(&out);
  return out;
}

std::string render_return_page(std::string_view title, std::string_view message, std::string_view href,
                               std::string_view destination, int status_hint) {
  std::string out;
  out.reserve(4096);
  message_start(&out, title, message, status_hint >= 400 ? status_hint : 0);
  out += "<p class=\"muted\">The application that sent you here can be told from this link; follow it "
         "only if you started this sign-in yourself.</p>\n<p><a class=\"return\" rel=\"noreferrer\" href=\"";
  put(&out, href);
  out += "\">Return to ";
  put(&out, destination);
  out += "</a></p>\n";
  page_end(&out);
  return out;
}

}  // namespace mcpauth
