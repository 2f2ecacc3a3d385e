#include "serve/api_keys.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/escaping.h"

namespace persona::serve {
namespace {

using Digest = std::array<uint8_t, 32>;

Digest Sha256(std::string_view data) {
  Digest digest{};
  unsigned int length = 0;
  // EVP_Digest fails only on allocation failure or a broken OpenSSL install; a zero digest would
  // then match nothing real, but it must never match, so stop instead.
  if (EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1 ||
      length != digest.size()) {
    std::fprintf(stderr, "api_keys: EVP_Digest(SHA-256) failed\n");
    std::abort();
  }
  return digest;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr std::string_view kScopeNames[] = {"ingest", "read", "admin"};
constexpr uint8_t kScopeBits[] = {kScopeIngest, kScopeRead, kScopeAdmin};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view lower_prefix) {
  if (s.size() < lower_prefix.size()) return false;
  for (size_t i = 0; i < lower_prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower_prefix[i]) return false;
  }
  return true;
}

// `api key "name" problem`. (Debian's Abseil has its own string_view type, so absl::StrCat does
// not take ours.)
std::string KeyError(std::string_view name, std::string_view problem) {
  std::string out = "api key \"";
  out.append(name).append("\" ").append(problem);
  return out;
}

}  // namespace

absl::StatusOr<uint8_t> ParseScopes(std::span<const std::string> names) {
  uint8_t scopes = 0;
  for (const std::string& raw : names) {
    std::string_view name = TrimSpaces(raw);
    bool known = false;
    for (size_t i = 0; i < std::size(kScopeNames); ++i) {
      if (name == kScopeNames[i]) {
        scopes |= kScopeBits[i];
        known = true;
      }
    }
    if (!known) {
      return absl::InvalidArgumentError("unknown scope \"" + std::string(name) +
                                        "\" (expected ingest, read or admin)");
    }
  }
  return scopes;
}

std::string ScopeNames(uint8_t scopes) {
  std::string out;
  for (size_t i = 0; i < std::size(kScopeNames); ++i) {
    if ((scopes & kScopeBits[i]) == 0) continue;
    if (!out.empty()) out.push_back(',');
    out.append(kScopeNames[i]);
  }
  return out;
}

absl::Status ApiKeys::Add(std::string name, std::string_view sha256_hex, uint8_t scopes) {
  if (name.empty()) return absl::InvalidArgumentError("api key name is empty");
  for (const ApiKey& key : keys_) {
    if (key.name == name) {
      return absl::AlreadyExistsError(KeyError(name, "is configured twice"));
    }
  }
  if (sha256_hex.size() != 64) {
    return absl::InvalidArgumentError(KeyError(
        name,
        "sha256 must be 64 hex digits, got " + std::to_string(sha256_hex.size()) + " characters"));
  }
  ApiKey key;
  for (size_t i = 0; i < key.sha256.size(); ++i) {
    int high = HexValue(sha256_hex[2 * i]);
    int low = HexValue(sha256_hex[2 * i + 1]);
    if (high < 0 || low < 0) {
      return absl::InvalidArgumentError(KeyError(name, "sha256 has a non-hex character"));
    }
    key.sha256[i] = static_cast<uint8_t>(high << 4 | low);
  }
  if ((scopes & (kScopeIngest | kScopeRead | kScopeAdmin)) == 0) {
    return absl::InvalidArgumentError(KeyError(name, "has no scopes"));
  }
  // Two names for one secret would make Authenticate's answer depend on configuration order.
  for (const ApiKey& other : keys_) {
    if (other.sha256 == key.sha256) {
      return absl::AlreadyExistsError(
          KeyError(name, "has the same secret as api key \"" + other.name + "\""));
    }
  }
  key.name = std::move(name);
  key.scopes = scopes;
  keys_.push_back(std::move(key));
  return absl::OkStatus();
}

const ApiKey* ApiKeys::Authenticate(std::string_view secret) const {
  // Rejecting "" early reveals only that nothing was sent, which the client knows anyway.
  if (secret.empty() || keys_.empty()) return nullptr;
  const Digest presented = Sha256(secret);
  // Every key is compared, and the match is folded in with masks instead of a branch, so the
  // time taken does not depend on which key (if any) matched or on how many bytes agreed.
  uint64_t match = keys_.size();  // "none"
  for (size_t i = 0; i < keys_.size(); ++i) {
    uint64_t differs = static_cast<uint32_t>(
        CRYPTO_memcmp(presented.data(), keys_[i].sha256.data(), presented.size()));
    uint64_t equal_mask = ((differs | (0 - differs)) >> 63) - 1;  // all ones iff differs == 0
    match = (match & ~equal_mask) | (i & equal_mask);
  }
  return match < keys_.size() ? &keys_[match] : nullptr;
}

std::string_view ApiKeys::SecretFromHeaders(std::string_view authorization,
                                            std::string_view x_api_key) {
  std::string_view auth = TrimSpaces(authorization);
  constexpr std::string_view kBearer = "bearer";
  if (auth.size() > kBearer.size() && StartsWithIgnoreCase(auth, kBearer) &&
      (auth[kBearer.size()] == ' ' || auth[kBearer.size()] == '\t')) {
    std::string_view token = TrimSpaces(auth.substr(kBearer.size()));
    if (!token.empty()) return token;
  }
  return TrimSpaces(x_api_key);
}

std::string ApiKeys::Sha256Hex(std::string_view secret) {
  const Digest digest = Sha256(secret);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * digest.size());
  for (uint8_t b : digest) {
    hex.push_back(kHex[b >> 4]);
    hex.push_back(kHex[b & 15]);
  }
  return hex;
}

std::string ApiKeys::GenerateSecret() {
  std::array<unsigned char, 32> bytes{};
  // Without entropy there is no safe secret to hand out; the CLI that calls this cannot recover.
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    std::fprintf(stderr, "api_keys: RAND_bytes failed: no secure randomness available\n");
    std::abort();
  }
  std::string encoded;
  absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), &encoded);
  OPENSSL_cleanse(bytes.data(), bytes.size());
  return "pk_" + encoded;
}

}  // namespace persona::serve
