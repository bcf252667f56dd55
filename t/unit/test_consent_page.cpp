// render_consent_page / render_message_page: escaped, script-free HTML.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <string>

#include "consent_page.hpp"

namespace {

using mcpauth::ConsentView;
using mcpauth::render_consent_page;
using mcpauth::render_message_page;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::size_t count(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

bool has(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

ConsentView view() {
  ConsentView v;
  v.client_name = "Claude Desktop";
  v.client_id = "c-123";
  v.redirect_uri_host = "127.0.0.1:33418";
  v.csrf_token = "1800000000.abc_DEF-123";
  v.action_path = "/oauth/consent";
  v.hidden_fields = {{"txn", "t-42"}};
  v.scopes = {{"mcp:tools", "Run tools on the MCP server"}, {"offline_access", "Stay signed in"}};
  v.remember_option = true;
  v.product_name = "Acme MCP Gateway";
  return v;
}

// Every '<' in the page must open one of the tags the renderer itself writes
// (escaped text has none), and no tag may carry an event handler or load a
// resource.  So nothing interpolated can have become markup.
void expect_inert(const std::string& html) {
  static const char* const kAllowed[] = {"!doctype", "html", "head", "meta", "title", "style", "body",
                                         "main", "p", "h1", "h2", "span", "strong", "ul", "li",
                                         "form", "input", "label", "div", "button"};
  std::string l = lower(html);
  EXPECT_FALSE(has(l, "<script"));
  for (std::size_t pos = l.find('<'); pos != std::string::npos; pos = l.find('<', pos + 1)) {
    std::size_t end = l.find('>', pos);
    ASSERT_NE(end, std::string::npos);
    std::string tag = l.substr(pos + 1, end - pos - 1);
    if (!tag.empty() && tag[0] == '/') tag.erase(0, 1);
    std::string name = tag.substr(0, tag.find_first_of(" \t\n"));
    EXPECT_TRUE(std::find(std::begin(kAllowed), std::end(kAllowed), name) != std::end(kAllowed))
        << "unexpected tag <" << name << ">";
    // Attribute names only: drop the "…" values (a value cannot hold a raw '"').
    std::string names;
    bool quoted = false;
    for (char c : tag) {
      if (c == '"') quoted = !quoted;
      else if (!quoted) names += c;
    }
    EXPECT_FALSE(quoted) << tag;
    EXPECT_FALSE(has(names, " on")) << tag;
    EXPECT_FALSE(has(names, "src=")) << tag;
    EXPECT_FALSE(has(names, "href=")) << tag;
    EXPECT_FALSE(has(names, "formaction")) << tag;
  }
}

TEST(ConsentPage, APlainViewRendersACompletePageWithTheClientAndScopes) {
  std::string html = render_consent_page(view());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_TRUE(has(html, "</html>"));
  EXPECT_TRUE(has(html, "<title>Authorize Claude Desktop</title>"));
  EXPECT_TRUE(has(html, "Acme MCP Gateway"));
  EXPECT_TRUE(has(html, "c-123"));
  EXPECT_TRUE(has(html, "sent back to <strong>127.0.0.1:33418</strong>"));
  EXPECT_TRUE(has(html, "mcp:tools"));
  EXPECT_TRUE(has(html, "Run tools on the MCP server"));
  EXPECT_TRUE(has(html, "offline_access"));
  EXPECT_TRUE(has(html, "not been verified"));
  expect_inert(html);
}

TEST(ConsentPage, OnePostFormCarriesBothDecisionButtons) {
  std::string html = render_consent_page(view());
  EXPECT_EQ(count(html, "<form"), 1u);
  EXPECT_EQ(count(html, "</form>"), 1u);
  EXPECT_TRUE(has(html, "<form method=\"post\" action=\"/oauth/consent\">"));
  std::size_t open = html.find("<form"), close = html.find("</form>");
  std::size_t allow = html.find("name=\"decision\" value=\"allow\"");
  std::size_t deny = html.find("name=\"decision\" value=\"deny\"");
  ASSERT_NE(allow, std::string::npos);
  ASSERT_NE(deny, std::string::npos);
  EXPECT_TRUE(open < allow && allow < close);
  EXPECT_TRUE(open < deny && deny < close);
  EXPECT_EQ(count(html, "type=\"submit\""), 2u);
}

TEST(ConsentPage, CsrfAndHiddenFieldsAreInsideTheForm) {
  std::string html = render_consent_page(view());
  std::size_t open = html.find("<form"), close = html.find("</form>");
  std::size_t csrf = html.find("<input type=\"hidden\" name=\"csrf_token\" value=\"1800000000.abc_DEF-123\">");
  std::size_t txn = html.find("<input type=\"hidden\" name=\"txn\" value=\"t-42\">");
  ASSERT_NE(csrf, std::string::npos);
  ASSERT_NE(txn, std::string::npos);
  EXPECT_TRUE(open < csrf && csrf < close);
  EXPECT_TRUE(open < txn && txn < close);
}

TEST(ConsentPage, TheRememberCheckboxAppearsOnlyWhenOffered) {
  ConsentView v = view();
  EXPECT_TRUE(has(render_consent_page(v), "type=\"checkbox\" name=\"remember\" value=\"1\""));
  v.remember_option = false;
  EXPECT_FALSE(has(render_consent_page(v), "checkbox"));
}

TEST(ConsentPage, AHostileClientNameIsEscapedEverywhere) {
  ConsentView v = view();
  v.client_name = "<script>alert(1)</script><img src=x onerror=alert(2)>";
  std::string html = render_consent_page(v);
  expect_inert(html);
  EXPECT_FALSE(has(html, "<img"));
  EXPECT_TRUE(has(html, "<title>Authorize &lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;</title>"));
  EXPECT_TRUE(has(html, "<h1>Authorize &lt;script&gt;"));
}

TEST(ConsentPage, QuotesCannotBreakOutOfAttributeValues) {
  ConsentView v = view();
  v.csrf_token = "\"><script>x()</script>";
  v.hidden_fields = {{"a\" onmouseover=\"x()", "b' onfocus='y()"}};
  v.action_path = "/c\" formaction=\"https://evil.example";
  std::string html = render_consent_page(v);
  expect_inert(html);
  EXPECT_TRUE(has(html, "name=\"csrf_token\" value=\"&quot;&gt;&lt;script&gt;x()&lt;/script&gt;\""));
  EXPECT_TRUE(has(html, "name=\"a&quot; onmouseover=&quot;x()\" value=\"b&#39; onfocus=&#39;y()\""));
  EXPECT_TRUE(has(html, "action=\"/c&quot; formaction=&quot;https://evil.example\""));
  EXPECT_FALSE(has(html, "\" onmouseover"));
  EXPECT_FALSE(has(html, "\" formaction"));
}

TEST(ConsentPage, HostileScopesClientIdAndHostAreEscaped) {
  ConsentView v = view();
  v.client_id = "<b>id</b>";
  v.redirect_uri_host = "evil.example<script>";
  v.scopes = {{"<s>", "desc & <i>more</i>"}};
  v.product_name = "<Product>";
  v.user_display = "<u>ada</u>";
  std::string html = render_consent_page(v);
  expect_inert(html);
  for (const char* raw : {"<b>", "<s>", "<i>", "<u>", "<Product>"}) EXPECT_FALSE(has(html, raw)) << raw;
  EXPECT_TRUE(has(html, "&lt;b&gt;id&lt;/b&gt;"));
  EXPECT_TRUE(has(html, "desc &amp; &lt;i&gt;more&lt;/i&gt;"));
  EXPECT_TRUE(has(html, "Signed in as <strong>&lt;u&gt;ada&lt;/u&gt;</strong>"));
}

TEST(ConsentPage, AnUnnamedClientIsShownAsSuchWithAWarning) {
  ConsentView v = view();
  v.client_name.clear();
  std::string html = render_consent_page(v);
  EXPECT_TRUE(has(html, "<title>Authorize Unnamed client</title>"));
  EXPECT_TRUE(has(html, "did not give a name"));
  EXPECT_TRUE(has(html, "class=\"notice\""));
}

TEST(ConsentPage, DefaultsApplyWhenOptionalPartsAreEmpty) {
  ConsentView v = view();
  v.product_name.clear();
  v.action_path.clear();
  v.scopes.clear();
  v.redirect_uri_host.clear();
  std::string html = render_consent_page(v);
  EXPECT_TRUE(has(html, "MCP Gateway"));
  EXPECT_TRUE(has(html, "<form method=\"post\">"));
  EXPECT_TRUE(has(html, "on your behalf"));
  EXPECT_FALSE(has(html, "sent back to"));
  EXPECT_FALSE(has(html, "Signed in as"));
}

TEST(MessagePage, AnErrorPageShowsEscapedTitleMessageAndStatus) {
  std::string html = render_message_page("Client <not> found", "No client \"x\" & co.", 400);
  expect_inert(html);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_TRUE(has(html, "<title>Client &lt;not&gt; found</title>"));
  EXPECT_TRUE(has(html, "<h1>Client &lt;not&gt; found</h1>"));
  EXPECT_TRUE(has(html, "No client &quot;x&quot; &amp; co."));
  EXPECT_TRUE(has(html, "Error 400"));
  EXPECT_FALSE(has(html, "<form"));
}

TEST(MessagePage, AServerErrorSuggestsTryingAgainLater) {
  std::string html = render_message_page("Login failed", "The identity provider is unavailable.", 502);
  EXPECT_TRUE(has(html, "Error 502"));
  EXPECT_TRUE(has(html, "try again"));
  EXPECT_FALSE(has(render_message_page("Invalid redirect URI", "m", 400), "try again in"));
}

TEST(MessagePage, AScriptInTheMessageIsNeutralised) {
  std::string html = render_message_page("<script>a()</script>", "<SCRIPT src=//evil></SCRIPT>", 0);
  expect_inert(html);
  EXPECT_FALSE(has(html, "Error"));
}

}  // namespace
