#include "account_page.hpp"

#include <ctime>

#include "consent_page.hpp"
#include "encoding.hpp"

namespace mcpauth {
namespace {

// A wider card (after the shared rule, so it wins) and the list of apps;
// the rest comes from the shared stylesheet.
constexpr std::string_view kAccountStyle = R"css(
.card{max-width:760px}
ul.apps{list-style:none;margin:0 0 20px;padding:0;border:1px solid var(--border);border-radius:8px}
ul.apps li{padding:14px 16px;border-top:1px solid var(--border);display:flex;gap:16px;
align-items:flex-start;justify-content:space-between}
ul.apps li:first-child{border-top:0}
.app-name{font-weight:600;overflow-wrap:anywhere}
.app-meta{color:var(--muted);font-size:13px;margin:2px 0 0}
.app-meta dt{display:inline;font-weight:600}
.app-meta dd{display:inline;margin:0 12px 0 4px;overflow-wrap:anywhere}
.app-scopes{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.app-remembered{font-size:12px;font-weight:600;color:var(--muted);border:1px solid var(--border);
border-radius:4px;padding:0 6px;margin-left:8px}
.empty{color:var(--muted);border:1px dashed var(--border);border-radius:8px;padding:20px;text-align:center}
.confirm{background:var(--bg);border:1px solid var(--border);border-radius:8px;padding:10px 12px;
font-size:14px;margin:0 0 20px}
button.danger{background:transparent;color:var(--error);border:1px solid var(--error);min-width:90px;
padding:6px 14px}
button.danger:hover{background:var(--error);color:#fff}
form.inline{margin:0}
.foot{display:flex;justify-content:flex-end}
)css";

void put(std::string* out, std::string_view text) { *out += html_escape(text); }

void hidden(std::string* out, std::string_view name, std::string_view value) {
  *out += "<input type=\"hidden\" name=\"";
  put(out, name);
  *out += "\" value=\"";
  put(out, value);
  *out += "\">\n";
}

void form_start(std::string* out, const AccountView& v, std::string_view action) {
  *out += "<form class=\"inline\" method=\"post\" action=\"";
  put(out, v.action_path);
  *out += "\">\n";
  hidden(out, kAccountCsrfField, v.csrf_token);
  hidden(out, kAccountActionField, action);
}

void meta(std::string* out, std::string_view label, std::string_view value, bool scopes = false) {
  *out += "<dt>";
  put(out, label);
  *out += "</dt><dd";
  if (scopes) *out += " class=\"app-scopes\"";
  *out += ">";
  put(out, value);
  *out += "</dd>";
}

}  // namespace

std::string utc_text(int64_t t) {
  if (t <= 0) return "unknown";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  if (!gmtime_r(&tt, &tm)) return "unknown";
  char buf[32];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return n ? std::string(buf, n) : "unknown";
}

std::string render_account_page(const AccountView& v) {
  std::string out;
  out.reserve(4096 + v.apps.size() * 1024);
  render_page_start(&out, "Your connected apps", kAccountStyle);

  out += "<p class=\"product\">MCP Gateway</p>\n<h1>Your connected apps</h1>\n";
  if (!v.user_display.empty()) {
    out += "<p class=\"muted\">Signed in as <strong>";
    put(&out, v.user_display);
    out += "</strong></p>\n";
  }
  if (!v.notice.empty()) {
    out += "<p class=\"confirm\" role=\"status\">";
    put(&out, v.notice);
    out += "</p>\n";
  }
  out += "<p class=\"muted\">These applications can use this server in your name. Revoking one ends its "
         "access at once; it has to ask you again to come back.</p>\n";

  if (v.apps.empty()) {
    out += "<p class=\"empty\">No app holds access in your name.</p>\n";
  } else {
    out += "<ul class=\"apps\">\n";
    for (const auto& a : v.apps) {
      out += "<li><div>\n<div class=\"app-name\">";
      put(&out, a.client_name.empty() ? std::string_view("unnamed app") : std::string_view(a.client_name));
      if (a.remembered)
        out += "<span class=\"app-remembered\" title=\"This browser remembers your consent\">remembered</span>";
      out += "</div>\n<dl class=\"app-meta\">";
      meta(&out, "Returns to", a.redirect_host.empty() ? std::string_view("unknown") : a.redirect_host);
      meta(&out, "Scopes", a.scope.empty() ? std::string_view("(none)") : a.scope, true);
      out += "</dl>\n<dl class=\"app-meta\">";
      meta(&out, "Granted", utc_text(a.created));
      meta(&out, "Last active", utc_text(a.last_active));
      out += "</dl>\n<dl class=\"app-meta\">";
      meta(&out, "Consent remembered in this browser", a.remembered ? "yes" : "no");
      out += "</dl>\n</div>\n";
      form_start(&out, v, "revoke");
      hidden(&out, kAccountSessionField, a.session_id);
      out += "<button type=\"submit\" class=\"danger\" aria-label=\"Revoke ";
      put(&out, a.client_name.empty() ? std::string_view("unnamed app") : std::string_view(a.client_name));
      out += "\">Revoke</button>\n</form>\n</li>\n";
    }
    out += "</ul>\n";
  }
  if (v.more > 0)
    out += "<p class=\"muted\">" + std::to_string(v.more) + (v.more == 1 ? " older session is" : " older sessions are") +
           " not shown; revoke some of the above to see " + (v.more == 1 ? "it" : "them") + ".</p>\n";
  out += "<div class=\"foot\">\n";
  form_start(&out, v, "signout");
  out += "<button type=\"submit\" class=\"secondary\">Sign out of this page</button>\n</form>\n</div>\n";
  render_page_end(&out);
  return out;
}

}  // namespace mcpauth
