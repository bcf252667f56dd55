// Cryptographic primitives (OpenSSL 3) and the KeyRing that seals tokens
// with AES-256-GCM.  Pure functions, no I/O; secrets are never logged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mcpauth {

// `n` bytes from the OpenSSL CSPRNG.  Throws std::runtime_error if the
// generator fails: returning predictable bytes is never an option, and the C
// boundary turns the exception into an error code.
std::string random_bytes(size_t n);
// base64url (no padding) of `nbytes` random bytes.
std::string random_token(size_t nbytes);

// Random bytes kept for a request that is run again (replay_store.hpp):
// while a tape is installed, random_bytes() replays what the tape holds
// and records fresh bytes past its end, so a rerun draws what the first
// run drew.  Per thread; a worker is single-threaded.
//
// freeze(): the run stopped at a store operation whose answer is not known
// yet, and whatever it does after that point is discarded; bytes it still
// draws come fresh and are not recorded, so the tape ends where the rerun
// must go on drawing.  rewind() starts the next run and thaws the tape.
class RandomTape {
 public:
  std::string bytes;
  void rewind() {
    pos_ = 0;
    frozen_ = false;
  }
  void freeze() { frozen_ = true; }
  std::string draw(size_t n);

 private:
  size_t pos_ = 0;
  bool frozen_ = false;
};
// Returns the tape that was installed before (nullptr: none).
RandomTape* install_random_tape(RandomTape* tape);

// Raw 32-byte SHA-256 digest.
std::string sha256(std::string_view data);
// base64url (no padding) of SHA-256: the form in which codes, tokens and
// client secrets are stored.
std::string sha256_b64url(std::string_view data);
// Raw 32-byte HMAC-SHA-256.
std::string hmac_sha256(std::string_view key, std::string_view data);

// Overwrites a secret before its memory is released.
void wipe(std::string& s);

// Constant-time equality for secrets, used for every secret compared in
// the gateway and the tool server.  The running time depends only on the
// lengths, never on the content.
bool ct_equal(std::string_view a, std::string_view b);

// What a sealed token is for.  The purpose byte is bound into the AEAD's
// additional data, so a token sealed for one purpose cannot be opened as
// another (an access token is not a refresh token).
namespace seal_purpose {
constexpr uint8_t access_token = 1;
constexpr uint8_t refresh_token = 2;
constexpr uint8_t state_file = 3;
constexpr uint8_t cookie = 4;
constexpr uint8_t store_value = 5;  // a value kept in a networked store
}  // namespace seal_purpose

// A set of AES-256 keys.  Key file: one key per line, "<kid> <base64url of
// exactly 32 bytes>"; '#' comment lines and blank lines are ignored; kid is
// 1..16 chars of [A-Za-z0-9_-].  The FIRST key seals, every key opens, so a
// rotation prepends a new key and drops the old one once its tokens expired.
//
// Token text: "<kid>.<b64url(12-byte IV || ciphertext || 16-byte tag)>",
// AAD = "mcpauth-v1|" + kid + "|" + purpose byte.  Expiry, session ids etc.
// belong inside the plaintext and are the caller's business.
class KeyRing {
 public:
  static constexpr size_t kKeyBytes = 32;
  static constexpr size_t kIvBytes = 12;
  static constexpr size_t kTagBytes = 16;
  static constexpr size_t kMaxKidChars = 16;

  // nullopt and a message naming the line and the problem (never the key
  // material) when the text is not a valid key file or holds no key.
  static std::optional<KeyRing> parse(std::string_view file_text, std::string* error);
  // A fresh key line "<kid> <b64url key>" (no newline); "" if kid is invalid.
  static std::string generate_line(std::string_view kid);
  static bool valid_kid(std::string_view kid);

  KeyRing(const KeyRing&) = default;
  KeyRing(KeyRing&&) = default;
  KeyRing& operator=(const KeyRing&) = default;
  KeyRing& operator=(KeyRing&&) = default;
  ~KeyRing();  // wipes the key material

  std::string seal(uint8_t purpose, std::string_view plaintext) const;
  // The same, deterministically: the same (first key, purpose, plaintext)
  // always gives the same token, so a token can be handed out again without
  // being stored.  SIV-style (the idea of RFC 5297 over AES-GCM): the nonce
  // is the first 12 bytes of HMAC-SHA-256(Kn, AAD || plaintext), where
  //   Kn  = HMAC-SHA-256(K, "mcpauth-v1 deterministic seal nonce"), used for
  //         nothing else, and
  //   AAD = "mcpauth-v1|" + kid + "|" + purpose byte, as for seal().
  // Distinct plaintexts (or purposes) get distinct nonces unless the PRF
  // collides on 96 bits -- the same bound random nonces have -- so a GCM
  // nonce repeats only together with its plaintext, and then the whole
  // token repeats: an observer learns only that two tokens are equal.  The
  // token opens with open() like any other.  Use it only where equal
  // plaintexts SHOULD give equal tokens.
  std::string seal_deterministic(uint8_t purpose, std::string_view plaintext) const;
  // nullopt on any failure: unknown kid, bad encoding, too short, tag
  // mismatch (wrong purpose, tampering, wrong key).
  std::optional<std::string> open(uint8_t purpose, std::string_view token) const;

  // 32 bytes: HMAC-SHA-256(first key, label), for CSRF and cookie keys.
  std::string derive_key(std::string_view label) const;

  const std::string& sealing_kid() const { return keys_.front().kid; }
  size_t size() const { return keys_.size(); }

 private:
  struct Key {
    std::string kid;
    std::string bytes;      // kKeyBytes raw bytes
    std::string nonce_key;  // Kn of seal_deterministic, derived from bytes
  };
  KeyRing() = default;
  const Key* find(std::string_view kid) const;
  std::string seal_with_iv(uint8_t purpose, std::string_view plaintext, std::string iv) const;

  std::vector<Key> keys_;
};

}  // namespace mcpauth
