// OpenSSL 3 primitives and AES-256-GCM token sealing.  See crypto.hpp.
#include "crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "encoding.hpp"

namespace mcpauth {

namespace {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

// KeyRing::open runs on every guarded request.  Two costs of OpenSSL 3 are
// paid once instead: the implicit algorithm fetch behind EVP_aes_256_gcm()
// (a locked lookup in the provider store) and a context allocation.  The
// context is per thread and fully reset before every use.
struct CipherFree {
  void operator()(EVP_CIPHER* c) const { EVP_CIPHER_free(c); }
};

const EVP_CIPHER* aes_256_gcm() {
  static const std::unique_ptr<EVP_CIPHER, CipherFree> fetched(
      EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr));
  return fetched ? fetched.get() : EVP_aes_256_gcm();
}

// SHA-256 fetched once, for the same reason (the session tag of every
// guarded request is a digest).
struct MdFree {
  void operator()(EVP_MD* m) const { EVP_MD_free(m); }
};

const EVP_MD* sha256_md() {
  static const std::unique_ptr<EVP_MD, MdFree> fetched(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  return fetched ? fetched.get() : EVP_sha256();
}

EVP_CIPHER_CTX* open_ctx() {
  thread_local CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_CIPHER_CTX_reset(ctx.get()) != 1) throw std::bad_alloc();
  return ctx.get();
}

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* bytes_of(std::string& s) { return reinterpret_cast<unsigned char*>(&s[0]); }

std::string aad_for(std::string_view kid, uint8_t purpose) {
  std::string aad = "mcpauth-v1|";
  aad.append(kid);
  aad.push_back('|');
  aad.push_back(static_cast<char>(purpose));
  return aad;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

namespace {
thread_local RandomTape* current_tape = nullptr;

std::string fresh_random_bytes(size_t n) {
  std::string out(n, '\0');
  if (n == 0) return out;
  if (n > INT_MAX || RAND_bytes(bytes_of(out), static_cast<int>(n)) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  return out;
}
}  // namespace

void wipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(&s[0], s.size());
}

std::string RandomTape::draw(size_t n) {
  if (pos_ == bytes.size()) {
    if (frozen_) return fresh_random_bytes(n);
    bytes += fresh_random_bytes(n);
  }
  if (bytes.size() - pos_ < n) throw std::runtime_error("random tape out of step");
  std::string out = bytes.substr(pos_, n);
  pos_ += n;
  return out;
}

RandomTape* install_random_tape(RandomTape* tape) {
  RandomTape* prev = current_tape;
  current_tape = tape;
  return prev;
}

std::string random_bytes(size_t n) {
  return current_tape ? current_tape->draw(n) : fresh_random_bytes(n);
}

std::string random_token(size_t nbytes) {
  std::string raw = random_bytes(nbytes);
  std::string token = b64url_encode(raw);
  wipe(raw);
  return token;
}

std::string sha256(std::string_view data) {
  std::string out(32, '\0');
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), bytes_of(out), &len, sha256_md(), nullptr) != 1 ||
      len != 32) {
    throw std::runtime_error("SHA-256 failed");
  }
  return out;
}

std::string sha256_b64url(std::string_view data) { return b64url_encode(sha256(data)); }

std::string hmac_sha256(std::string_view key, std::string_view data) {
  std::string out(32, '\0');
  unsigned int len = 0;
  if (key.size() > INT_MAX ||
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), bytes_of(data), data.size(),
           bytes_of(out), &len) == nullptr ||
      len != 32) {
    throw std::runtime_error("HMAC-SHA-256 failed");
  }
  return out;
}

bool ct_equal(std::string_view a, std::string_view b) {
  // Every byte of the common prefix is looked at, eight at a time, whatever
  // the first difference; the length check is folded in without a branch on
  // content.  Not CRYPTO_memcmp, which goes a byte at a time: the guard's
  // token cache and the tool server's assertion cache compare tokens of
  // hundreds of bytes on every request (bench/results.md, "What each
  // optimisation saves").  The empty asm keeps the compiler from turning
  // the accumulation into an early exit.
  size_t n = a.size() < b.size() ? a.size() : b.size();
  uint64_t diff = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x, y;
    std::memcpy(&x, a.data() + i, 8);
    std::memcpy(&y, b.data() + i, 8);
    diff |= x ^ y;
    __asm__ volatile("" : "+r"(diff));
  }
  for (; i < n; ++i) {
    diff |= static_cast<uint64_t>(static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]));
    __asm__ volatile("" : "+r"(diff));
  }
  diff |= static_cast<uint64_t>(a.size() != b.size());
  return diff == 0;
}

// ---------------------------------------------------------------- KeyRing

namespace {
constexpr std::string_view kNonceKeyLabel = "mcpauth-v1 deterministic seal nonce";
}  // namespace

KeyRing::~KeyRing() {
  for (auto& k : keys_) {
    wipe(k.bytes);
    wipe(k.nonce_key);
  }
}

bool KeyRing::valid_kid(std::string_view kid) {
  if (kid.empty() || kid.size() > kMaxKidChars) return false;
  for (char c : kid) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::optional<KeyRing> KeyRing::parse(std::string_view file_text, std::string* error) {
  auto fail = [error](size_t line, const std::string& what) -> std::optional<KeyRing> {
    if (error) {
      *error = line ? "line " + std::to_string(line) + ": " + what : what;
    }
    return std::nullopt;
  };
  KeyRing ring;
  std::vector<size_t> line_of;  // parallel to ring.keys_, for duplicate reports
  size_t lineno = 0;
  while (!file_text.empty()) {
    size_t nl = file_text.find('\n');
    std::string_view line = trim(file_text.substr(0, nl));
    file_text = nl == std::string_view::npos ? std::string_view() : file_text.substr(nl + 1);
    ++lineno;
    if (line.empty() || line.front() == '#') continue;

    size_t sp = line.find_first_of(" \t");
    if (sp == std::string_view::npos) {
      return fail(lineno, "expected \"<kid> <base64url key>\", found a single field");
    }
    std::string_view kid = line.substr(0, sp);
    std::string_view key_text = trim(line.substr(sp));
    if (key_text.find_first_of(" \t") != std::string_view::npos) {
      return fail(lineno, "expected \"<kid> <base64url key>\", found more than two fields");
    }
    if (!valid_kid(kid)) {
      return fail(lineno, "key id must be 1 to 16 characters of A-Z a-z 0-9 _ - (got " +
                              std::to_string(kid.size()) + " characters)");
    }
    for (size_t i = 0; i < ring.keys_.size(); ++i) {
      if (ring.keys_[i].kid == kid) {
        return fail(lineno, "duplicate key id \"" + std::string(kid) + "\" (first on line " +
                                std::to_string(line_of[i]) + ")");
      }
    }
    auto key = b64url_decode(key_text);
    if (!key) {
      return fail(lineno, "key for \"" + std::string(kid) +
                              "\" is not valid base64url (RFC 4648 §5, no padding)");
    }
    if (key->size() != kKeyBytes) {
      size_t got = key->size();
      wipe(*key);
      return fail(lineno, "key for \"" + std::string(kid) + "\" must decode to 32 bytes, got " +
                              std::to_string(got));
    }
    std::string nonce_key = hmac_sha256(*key, kNonceKeyLabel);
    ring.keys_.push_back(Key{std::string(kid), std::move(*key), std::move(nonce_key)});
    line_of.push_back(lineno);
  }
  if (ring.keys_.empty()) return fail(0, "no keys found (expected \"<kid> <base64url key>\" lines)");
  return ring;
}

std::string KeyRing::generate_line(std::string_view kid) {
  if (!valid_kid(kid)) return std::string();
  std::string key = random_bytes(kKeyBytes);
  std::string line = std::string(kid) + " " + b64url_encode(key);
  wipe(key);
  return line;
}

const KeyRing::Key* KeyRing::find(std::string_view kid) const {
  for (const auto& k : keys_) {
    if (k.kid == kid) return &k;
  }
  return nullptr;
}

std::string KeyRing::seal(uint8_t purpose, std::string_view plaintext) const {
  return seal_with_iv(purpose, plaintext, random_bytes(kIvBytes));
}

std::string KeyRing::seal_deterministic(uint8_t purpose, std::string_view plaintext) const {
  // See crypto.hpp: nonce = HMAC-SHA-256(Kn, AAD || plaintext)[0..12).  The
  // AAD is unambiguous (a kid holds no '|', the purpose is one byte), so
  // AAD || plaintext names exactly one (kid, purpose, plaintext).
  const Key& key = keys_.front();
  std::string input = aad_for(key.kid, purpose);
  input.append(plaintext);
  std::string mac = hmac_sha256(key.nonce_key, input);
  wipe(input);
  return seal_with_iv(purpose, plaintext, mac.substr(0, kIvBytes));
}

std::string KeyRing::seal_with_iv(uint8_t purpose, std::string_view plaintext, std::string iv) const {
  const Key& key = keys_.front();
  if (plaintext.size() > static_cast<size_t>(INT_MAX) - 64) {
    throw std::length_error("plaintext too long to seal");
  }
  if (iv.size() != kIvBytes) throw std::logic_error("AES-256-GCM nonce must be 12 bytes");
  std::string aad = aad_for(key.kid, purpose);
  std::string blob = std::move(iv);
  blob.resize(kIvBytes + plaintext.size() + kTagBytes);

  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) throw std::bad_alloc();
  int len = 0;
  int total = 0;
  unsigned char* out = bytes_of(blob) + kIvBytes;
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kIvBytes),
                          nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, bytes_of(key.bytes), bytes_of(blob)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes_of(aad), static_cast<int>(aad.size())) !=
          1 ||
      EVP_EncryptUpdate(ctx.get(), out, &len, bytes_of(plaintext),
                        static_cast<int>(plaintext.size())) != 1) {
    throw std::runtime_error("AES-256-GCM seal failed");
  }
  total = len;
  if (EVP_EncryptFinal_ex(ctx.get(), out + total, &len) != 1) {
    throw std::runtime_error("AES-256-GCM seal failed");
  }
  total += len;
  if (static_cast<size_t>(total) != plaintext.size() ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes),
                          out + total) != 1) {
    throw std::runtime_error("AES-256-GCM seal failed");
  }
  return key.kid + "." + b64url_encode(blob);
}

std::optional<std::string> KeyRing::open(uint8_t purpose, std::string_view token) const {
  size_t dot = token.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  std::string_view kid = token.substr(0, dot);
  const Key* key = find(kid);
  if (!key) return std::nullopt;
  auto blob = b64url_decode(token.substr(dot + 1));
  if (!blob || blob->size() < kIvBytes + kTagBytes) return std::nullopt;
  size_t ct_len = blob->size() - kIvBytes - kTagBytes;
  if (ct_len > static_cast<size_t>(INT_MAX) - 64) return std::nullopt;

  std::string aad = aad_for(key->kid, purpose);
  std::string plain(ct_len, '\0');
  EVP_CIPHER_CTX* ctx = open_ctx();
  unsigned char* iv = bytes_of(*blob);
  unsigned char* ct = iv + kIvBytes;
  unsigned char* tag = ct + ct_len;
  // A dummy output byte keeps the pointer valid when the plaintext is empty.
  unsigned char dummy = 0;
  unsigned char* out = ct_len ? bytes_of(plain) : &dummy;
  int len = 0;
  int total = 0;
  // 12 bytes is GCM's default IV length: no EVP_CTRL_GCM_SET_IVLEN needed.
  static_assert(kIvBytes == 12, "AES-GCM default IV length");
  if (EVP_DecryptInit_ex(ctx, aes_256_gcm(), nullptr, bytes_of(key->bytes), iv) != 1 ||
      EVP_DecryptUpdate(ctx, nullptr, &len, bytes_of(aad), static_cast<int>(aad.size())) !=
          1 ||
      EVP_DecryptUpdate(ctx, out, &len, ct, static_cast<int>(ct_len)) != 1) {
    wipe(plain);
    return std::nullopt;
  }
  total = len;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes), tag) !=
          1 ||
      EVP_DecryptFinal_ex(ctx, out + total, &len) != 1) {
    // Tag mismatch: wrong purpose, wrong key or tampering.  Never release
    // the unauthenticated plaintext.
    wipe(plain);
    return std::nullopt;
  }
  total += len;
  if (static_cast<size_t>(total) != ct_len) {
    wipe(plain);
    return std::nullopt;
  }
  return plain;
}

std::string KeyRing::derive_key(std::string_view label) const {
  return hmac_sha256(keys_.front().bytes, label);
}

}  // namespace mcpauth
