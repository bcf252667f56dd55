#include "jsonrpc_peek.hpp"

#include <cstdint>
#include <cstring>

#include "json_string_scan.hpp"

namespace mcpauth {
namespace {

constexpr int kMaxDepth = 512;        // cJSON's limit is 1000: we refuse first
constexpr size_t kMaxNumberLen = 63;  // cJSON copies a number into a 64-byte buffer


int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// k == w for a literal w (a fixed-size compare the compiler inlines)
template <size_t N>
bool is(std::string_view k, const char (&w)[N]) {
  return k.size() == N - 1 && std::memcmp(k.data(), w, N - 1) == 0;
}

class Scanner {
 public:
  explicit Scanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  bool body(std::vector<McpCall>* calls, bool* is_batch) {
    ws();
    if (p_ == end_) return false;
    if (is_batch) *is_batch = *p_ == '[';
    if (*p_ == '{') {
      McpCall call;
      if (!message(&call)) return false;
      calls->push_back(std::move(call));
    } else if (*p_ == '[') {
      if (!batch(calls)) return false;
    } else if (!value(1)) {
      return false;
    }
    ws();
    return p_ == end_;
  }

 private:
  const char* p_;
  const char* end_;

  // The end of the plain run of a string from p, a byte at a time: a
  // JSON-RPC body's strings are a few bytes long, where 16-byte steps
  // (json_string_run) cost more than they save.
  const char* run_end(const char* p) const {
    while (p != end_ && !kJsonStringStops.stop[static_cast<unsigned char>(*p)]) ++p;
    return p;
  }

  void ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  bool eat(char c) {
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }

  // \uXXXX (p_ at the 'u'): four hex digits, all of them.
  bool hex4(uint32_t* out) {
    if (end_ - p_ < 5) return false;
    uint32_t v = 0;
    for (int i = 1; i <= 4; ++i) {
      int d = hex_digit(p_[i]);
      if (d < 0) return false;
      v = (v << 4) | static_cast<uint32_t>(d);
    }
    p_ += 5;
    *out = v;
    return true;
  }

  // One escape (p_ just after the backslash), appended decoded to `out`
  // when given.  Only escapes that decode to exactly one character.
  bool escape(std::string* out) {
    if (p_ == end_) return false;
    char c = *p_;
    char plain;
    switch (c) {
      case '"': plain = '"'; break;
      case '\\': plain = '\\'; break;
      case '/': plain = '/'; break;
      case 'b': plain = '\b'; break;
      case 'f': plain = '\f'; break;
      case 'n': plain = '\n'; break;
      case 'r': plain = '\r'; break;
      case 't': plain = '\t'; break;
      case 'u': {
        uint32_t cp;
        if (!hex4(&cp) || cp == 0) return false;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // a low surrogate alone
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t lo;
          if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
          ++p_;
          if (!hex4(&lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
          cp = 0x10000 + (((cp & 0x3FF) << 10) | (lo & 0x3FF));
        }
        if (out) append_utf8(out, cp);
        return true;
      }
      default: return false;
    }
    ++p_;
    if (out) out->push_back(plain);
    return true;
  }

  // A string (p_ at its opening quote).  `raw` gets the text between the
  // quotes when it holds no escape (then that is the value, and raw.data()
  // is never null); otherwise raw becomes a null view and `decoded` (when
  // given) gets the decoded value.
  bool string(std::string_view* raw, std::string* decoded) {
    ++p_;  // the opening quote
    const char* start = p_;
    p_ = run_end(p_);
    if (p_ == end_) return false;
    if (*p_ == '"') {
      if (raw) *raw = std::string_view(start, static_cast<size_t>(p_ - start));
      ++p_;
      return true;
    }
    if (*p_ != '\\') return false;  // a raw control byte
    if (raw) *raw = std::string_view();
    if (decoded) decoded->assign(start, static_cast<size_t>(p_ - start));
    while (true) {
      // p_ at a backslash
      ++p_;
      if (!escape(decoded)) return false;
      const char* run = p_;
      p_ = run_end(p_);
      if (p_ == end_) return false;
      if (decoded) decoded->append(run, static_cast<size_t>(p_ - run));
      if (*p_ == '"') {
        ++p_;
        return true;
      }
      if (*p_ != '\\') return false;
    }
  }

  // A string's value into `out` (decoded).
  bool string_value(std::string* out) {
    std::string_view raw;
    if (!string(&raw, out)) return false;
    if (raw.data() != nullptr) out->assign(raw);
    return true;
  }

  // An object key and the ':' after it.  `k` is the key as is when it holds
  // no escape (all real ones), else decoded into `scratch`.
  bool key(std::string_view* k, std::string* scratch) {
    if (p_ == end_ || *p_ != '"') return false;
    const char* quote = p_;
    if (!string(k, nullptr)) return false;
    if (k->data() == nullptr) {  // escapes: read it again, decoding
      p_ = quote;
      if (!string(k, scratch)) return false;
      *k = *scratch;
    }
    ws();
    if (!eat(':')) return false;
    ws();
    return true;
  }

  bool number() {
    const char* start = p_;
    eat('-');
    if (p_ == end_) return false;
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    } else {
      return false;
    }
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      const char* digits = p_;
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      if (p_ == digits) return false;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      const char* digits = p_;
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      if (p_ == digits) return false;
    }
    return static_cast<size_t>(p_ - start) <= kMaxNumberLen;
  }

  bool literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) return false;
    p_ += word.size();
    return true;
  }

  // Any value, checked and skipped; `depth` is the nesting it would open.
  bool value(int depth) {
    if (p_ == end_) return false;
    switch (*p_) {
      case '"': return string(nullptr, nullptr);
      case '{': {
        if (depth > kMaxDepth) return false;
        ++p_;
        ws();
        if (eat('}')) return true;
        while (true) {
          std::string_view k;
          std::string scratch;
          if (!key(&k, &scratch) || !value(depth + 1)) return false;
          ws();
          if (eat('}')) return true;
          if (!eat(',')) return false;
          ws();
        }
      }
      case '[': {
        if (depth > kMaxDepth) return false;
        ++p_;
        ws();
        if (eat(']')) return true;
        while (true) {
          if (!value(depth + 1)) return false;
          ws();
          if (eat(']')) return true;
          if (!eat(',')) return false;
          ws();
        }
      }
      case 't': return literal("true");
      case 'f': return literal("false");
      case 'n': return literal("null");
      default: return number();
    }
  }

  // params of a message (p_ at '{', depth 2 or 3): its "name" and "uri",
  // each once.
  bool params(int depth, McpCall* call, bool* name_is_string, bool* uri_is_string) {
    if (depth > kMaxDepth) return false;
    ++p_;
    ws();
    if (eat('}')) return true;
    bool seen_name = false, seen_uri = false;
    while (true) {
      std::string_view k;
      std::string scratch;
      if (!key(&k, &scratch)) return false;
      const bool is_name = is(k, "name"), is_uri = !is_name && is(k, "uri");
      if (is_name || is_uri) {
        bool& seen = is_name ? seen_name : seen_uri;
        if (seen) return false;
        seen = true;
        if (p_ != end_ && *p_ == '"') {
          if (!string_value(is_name ? &call->name : &call->uri)) return false;
          (is_name ? *name_is_string : *uri_is_string) = true;
        } else if (!value(depth + 1)) {
          return false;
        }
      } else if (!value(depth + 1)) {
        return false;
      }
      ws();
      if (eat('}')) return true;
      if (!eat(',')) return false;
      ws();
    }
  }

  // One message object (p_ at '{'; depth 1, or 2 in a batch).
  bool message(McpCall* call, int depth = 1) {
    ++p_;
    ws();
    bool seen_method = false, seen_params = false, method_is_string = false, params_is_object = false,
         name_is_string = false, uri_is_string = false;
    int ids = 0;
    McpCall params_call;
    if (!eat('}')) {
      while (true) {
        std::string_view k;
        std::string scratch;
        if (!key(&k, &scratch)) return false;
        if (is(k, "method")) {
          if (seen_method) return false;
          seen_method = true;
          if (p_ != end_ && *p_ == '"') {
            if (!string_value(&call->method)) return false;
            method_is_string = true;
          } else if (!value(depth + 1)) {
            return false;
          }
        } else if (is(k, "params")) {
          if (seen_params) return false;
          seen_params = true;
          if (p_ != end_ && *p_ == '{') {
            if (!params(depth + 1, &params_call, &name_is_string, &uri_is_string)) return false;
            params_is_object = true;
          } else if (!value(depth + 1)) {
            return false;
          }
        } else if (is(k, "id")) {
          ++ids;
          const char* start = p_;
          const bool echoable = p_ != end_ && (*p_ == '"' || *p_ == '-' || (*p_ >= '0' && *p_ <= '9'));
          if (!value(depth + 1)) return false;
          if (echoable) call->id.assign(start, static_cast<size_t>(p_ - start));
        } else if (!value(depth + 1)) {
          return false;
        }
        ws();
        if (eat('}')) break;
        if (!eat(',')) return false;
        ws();
      }
    }
    if (ids != 1) call->id.clear();
    // as the tool server reads it: params.name / params.uri only beside a
    // string method
    if (!method_is_string) call->method.clear();
    if (method_is_string && params_is_object) {
      if (name_is_string) {
        call->name = std::move(params_call.name);
        call->has_name = true;
      }
      if (uri_is_string) {
        call->uri = std::move(params_call.uri);
        call->has_uri = true;
      }
    }
    return true;
  }

  bool batch(std::vector<McpCall>* calls) {
    ++p_;
    ws();
    if (eat(']')) return true;
    while (true) {
      if (p_ != end_ && *p_ == '{') {
        McpCall call;
        if (!message(&call, 2)) return false;
        calls->push_back(std::move(call));
      } else if (!value(2)) {
        return false;
      }
      ws();
      if (eat(']')) return true;
      if (!eat(',')) return false;
      ws();
    }
  }
};

}  // namespace

std::optional<std::vector<McpCall>> peek_jsonrpc(std::string_view body, bool* batch) {
  std::vector<McpCall> calls;
  if (!Scanner(body).body(&calls, batch)) return std::nullopt;
  return calls;
}

}  // namespace mcpauth
