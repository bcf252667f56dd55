// Unit tests for src/encoding.hpp.
#include "encoding.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace mcpauth;

// RFC 4648 §10 test vectors, unpadded for base64url.
TEST(Base64Url, EncodesRfc4648TestVectorsWithoutPadding) {
  EXPECT_EQ(b64url_encode(""), "");
  EXPECT_EQ(b64url_encode("f"), "Zg");
  EXPECT_EQ(b64url_encode("fo"), "Zm8");
  EXPECT_EQ(b64url_encode("foo"), "Zm9v");
  EXPECT_EQ(b64url_encode("foob"), "Zm9vYg");
  EXPECT_EQ(b64url_encode("fooba"), "Zm9vYmE");
  EXPECT_EQ(b64url_encode("foobar"), "Zm9vYmFy");
}

TEST(Base64Url, UsesDashAndUnderscoreInsteadOfPlusAndSlash) {
  EXPECT_EQ(b64url_encode(std::string("\xfb\xff\xbf", 3)), "-_-_");
}

TEST(Base64Url, RoundTripsEveryByteValue) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t n = 0; n <= all.size(); n += 7) {
    auto s = all.substr(0, n);
    auto back = b64url_decode(b64url_encode(s));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, s);
  }
}

TEST(Base64Url, DecodesKnownValues) {
  EXPECT_EQ(b64url_decode("Zm9vYmFy").value_or("?"), "foobar");
  EXPECT_EQ(b64url_decode("Zm9vYg").value_or("?"), "foob");
  EXPECT_EQ(b64url_decode("").value_or("?"), "");
}

TEST(Base64Url, RejectsPadding) { EXPECT_FALSE(b64url_decode("Zm9vYg==").has_value()); }

TEST(Base64Url, RejectsStandardAlphabetCharacters) {
  EXPECT_FALSE(b64url_decode("-_+/").has_value());
  EXPECT_FALSE(b64url_decode("ab/c").has_value());
}

TEST(Base64Url, RejectsWhitespace) {
  EXPECT_FALSE(b64url_decode("Zm9v YmFy").has_value());
  EXPECT_FALSE(b64url_decode("Zm9vYmFy\n").has_value());
}

TEST(Base64Url, RejectsImpossibleLength) { EXPECT_FALSE(b64url_decode("Zm9vY").has_value()); }

TEST(Base64Url, RejectsNonCanonicalTrailingBits) {
  // "Zg" is 'f'; "Zh" encodes the same byte with a non-zero unused bit.
  EXPECT_TRUE(b64url_decode("Zg").has_value());
  EXPECT_FALSE(b64url_decode("Zh").has_value());
}

TEST(Base64, EncodesWithPadding) {
  EXPECT_EQ(b64_encode("f"), "Zg==");
  EXPECT_EQ(b64_encode("fo"), "Zm8=");
  EXPECT_EQ(b64_encode("foo"), "Zm9v");
  EXPECT_EQ(b64_encode(std::string("\xfb\xff\xbf", 3)), "+/+/");
}

TEST(Base64, DecodesHttpBasicCredentials) {
  EXPECT_EQ(b64_decode("QWxhZGRpbjpvcGVuIHNlc2FtZQ==").value_or("?"), "Aladdin:open sesame");
}

TEST(Base64, RequiresPadding) {
  EXPECT_FALSE(b64_decode("Zg").has_value());
  EXPECT_FALSE(b64_decode("Zm8").has_value());
  EXPECT_TRUE(b64_decode("Zm8=").has_value());
}

TEST(Base64, RejectsMisplacedOrExcessPadding) {
  EXPECT_FALSE(b64_decode("Z===").has_value());
  EXPECT_FALSE(b64_decode("Zg==Zg==").has_value());
  EXPECT_FALSE(b64_decode("=Zg=").has_value());
}

TEST(Base64, RejectsUrlAlphabet) { EXPECT_FALSE(b64_decode("-_-_").has_value()); }

TEST(PercentDecode, DecodesEscapesInEitherCase) {
  EXPECT_EQ(pct_decode("a%2Fb%2fc", false).value_or("?"), "a/b/c");
}

TEST(PercentDecode, TreatsPlusAsSpaceOnlyForForms) {
  EXPECT_EQ(pct_decode("a+b", true).value_or("?"), "a b");
  EXPECT_EQ(pct_decode("a+b", false).value_or("?"), "a+b");
  EXPECT_EQ(pct_decode("a%2Bb", true).value_or("?"), "a+b");
}

TEST(PercentDecode, RejectsMalformedEscapes) {
  EXPECT_FALSE(pct_decode("%", false).has_value());
  EXPECT_FALSE(pct_decode("%4", false).has_value());
  EXPECT_FALSE(pct_decode("%zz", false).has_value());
  EXPECT_FALSE(pct_decode("abc%", false).has_value());
}

TEST(PercentDecode, RejectsEncodedAndRawNul) {
  EXPECT_FALSE(pct_decode("a%00b", false).has_value());
  EXPECT_FALSE(pct_decode(std::string("a\0b", 3), false).has_value());
}

TEST(PercentEncode, LeavesUnreservedAlone) {
  EXPECT_EQ(pct_encode("AZaz09-._~"), "AZaz09-._~");
}

TEST(PercentEncode, EncodesEverythingElseInUpperHex) {
  EXPECT_EQ(pct_encode("a b/c?d=e&f"), "a%20b%2Fc%3Fd%3De%26f");
  EXPECT_EQ(pct_encode("\xc3\xa9"), "%C3%A9");
}

TEST(PercentEncode, RoundTripsThroughDecode) {
  std::string s = "https://x.example/cb?a=1&b=2#frag \x01\xff";
  EXPECT_EQ(pct_decode(pct_encode(s), false).value_or("?"), s);
}

TEST(Params, ParsesFormBodyWithPlusAndEscapes) {
  auto p = Params::parse("grant_type=authorization_code&redirect_uri=https%3A%2F%2Fa%2Fcb&x=a+b");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->get("grant_type").value_or("?"), "authorization_code");
  EXPECT_EQ(p->get("redirect_uri").value_or("?"), "https://a/cb");
  EXPECT_EQ(p->get("x").value_or("?"), "a b");
  EXPECT_EQ(p->items().size(), 3u);
}

TEST(Params, SkipsEmptySegments) {
  auto p = Params::parse("&&a=1&&b=2&");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->items().size(), 2u);
}

TEST(Params, NameWithoutEqualsHasEmptyValue) {
  auto p = Params::parse("flag&a=1");
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->has("flag"));
  EXPECT_EQ(p->get("flag").value_or("?"), "");
}

TEST(Params, KeepsEqualsSignsInsideTheValue) {
  auto p = Params::parse("a=b=c");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->get("a").value_or("?"), "b=c");
}

TEST(Params, ReportsRepeatedParameters) {
  auto p = Params::parse("state=1&state=2&code=x");
  ASSERT_TRUE(p.has_value());
  std::string v;
  EXPECT_EQ(p->find("state", &v), Params::Lookup::repeated);
  EXPECT_FALSE(p->get("state").has_value());
  EXPECT_TRUE(p->has("state"));
  EXPECT_EQ(p->find("code", &v), Params::Lookup::one);
  EXPECT_EQ(v, "x");
  EXPECT_EQ(p->find("nope", &v), Params::Lookup::absent);
  EXPECT_FALSE(p->has("nope"));
}

TEST(Params, ComparesNamesAfterDecoding) {
  auto p = Params::parse("st%61te=1&state=2");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->find("state", nullptr), Params::Lookup::repeated);
}

TEST(Params, FailsOnBadEscapeOrNul) {
  EXPECT_FALSE(Params::parse("a=%zz").has_value());
  EXPECT_FALSE(Params::parse("a%0=1").has_value());
  EXPECT_FALSE(Params::parse("a=%00").has_value());
}

TEST(Params, EmptyTextIsEmptyList) {
  auto p = Params::parse("");
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->items().empty());
}

TEST(Cookie, FindsValueInSemicolonSpaceList) {
  EXPECT_EQ(cookie_value("a=1; mcp_session=abc; b=2", "mcp_session").value_or("?"), "abc");
}

TEST(Cookie, FirstMatchWins) {
  EXPECT_EQ(cookie_value("s=first; s=second", "s").value_or("?"), "first");
}

TEST(Cookie, StripsSurroundingQuotes) {
  EXPECT_EQ(cookie_value("s=\"quoted\"", "s").value_or("?"), "quoted");
  EXPECT_EQ(cookie_value("s=\"", "s").value_or("?"), "\"");
}

TEST(Cookie, DoesNotMatchNamePrefixesOrSuffixes) {
  EXPECT_FALSE(cookie_value("xs=1; sx=2", "s").has_value());
  EXPECT_FALSE(cookie_value("", "s").has_value());
}

TEST(Cookie, ToleratesMissingSpaceAndPairsWithoutEquals) {
  EXPECT_EQ(cookie_value("junk;a=1;s=2", "s").value_or("?"), "2");
}

TEST(Cookie, ValueMayBeEmpty) { EXPECT_EQ(cookie_value("s=; t=1", "s").value_or("?"), ""); }

TEST(HtmlEscape, EscapesTheFiveSpecialCharacters) {
  EXPECT_EQ(html_escape("<a href=\"x\" title='y'>&</a>"),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
}

TEST(HtmlEscape, LeavesOrdinaryTextUnchanged) { EXPECT_EQ(html_escape("plain text é"), "plain text é"); }

// token68_run against the definition, for every byte value at every place
// of strings around the 16-byte steps.
TEST(Token68, RunStopsAtTheFirstByteOutsideTheToken68Set) {
  auto in_set = [](unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~' || c == '+' || c == '/';
  };
  EXPECT_EQ(mcpauth::token68_run(""), 0u);
  EXPECT_EQ(mcpauth::token68_run("abc=="), 3u);
  for (size_t len : {1u, 15u, 16u, 17u, 33u, 48u}) {
    std::string base(len, 'A');
    for (size_t i = 0; i < len; ++i) base[i] = "aZ09-._~+/"[i % 10];
    EXPECT_EQ(mcpauth::token68_run(base), len);
    for (size_t at = 0; at < len; ++at)
      for (int c = 0; c < 256; ++c) {
        std::string t = base;
        t[at] = static_cast<char>(c);
        ASSERT_EQ(mcpauth::token68_run(t), in_set(static_cast<unsigned char>(c)) ? len : at)
            << "len " << len << " at " << at << " byte " << c;
      }
  }
}
