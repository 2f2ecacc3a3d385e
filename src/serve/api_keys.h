// API keys: each configured key has a name, the SHA-256 of its secret (the secret itself is never
// stored or logged) and scopes. A request presents the secret ("Authorization: Bearer <key>" or
// "X-Api-Key: <key>"); Authenticate hashes it and compares it with every configured hash in
// constant time (CRYPTO_memcmp over all entries, no early exit), so response timing reveals
// neither which key nor how many bytes matched.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace persona::serve {

enum Scope : uint8_t { kScopeIngest = 1, kScopeRead = 2, kScopeAdmin = 4 };
// "ingest" / "read" / "admin" -> bit; InvalidArgument naming the unknown scope otherwise.
absl::StatusOr<uint8_t> ParseScopes(std::span<const std::string> names);
std::string ScopeNames(uint8_t scopes);  // "ingest,read"

struct ApiKey {
  std::string name;
  std::array<uint8_t, 32> sha256{};
  uint8_t scopes = 0;
};

class ApiKeys {
 public:
  ApiKeys() = default;
  // `sha256_hex` must be 64 hex digits; names must be unique and non-empty; scopes non-empty.
  absl::Status Add(std::string name, std::string_view sha256_hex, uint8_t scopes);
  bool enabled() const { return !keys_.empty(); }
  size_t size() const { return keys_.size(); }
  // The key whose hash matches `secret`, or nullptr. Constant time in the secret's content.
  const ApiKey* Authenticate(std::string_view secret) const;
  // The secret from the request headers ("Bearer x" or X-Api-Key), "" if none.
  static std::string_view SecretFromHeaders(std::string_view authorization,
                                            std::string_view x_api_key);

  static std::string Sha256Hex(std::string_view secret);
  // A new random secret: "pk_" + 43 base64url characters (32 bytes from RAND_bytes).
  static std::string GenerateSecret();

 private:
  std::vector<ApiKey> keys_;
};

}  // namespace persona::serve
