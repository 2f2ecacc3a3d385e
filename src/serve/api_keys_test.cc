#include "serve/api_keys.h"

#include <gtest/gtest.h>

#include <cctype>
#include <set>
#include <string>
#include <vector>

namespace persona::serve {
namespace {

constexpr std::string_view kAbcSha256 =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

TEST(ApiKeysTest, Sha256HexMatchesKnownVectors) {
  EXPECT_EQ(ApiKeys::Sha256Hex("abc"), kAbcSha256);
  EXPECT_EQ(ApiKeys::Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(ApiKeysTest, AuthenticatesTheRightSecretOnly) {
  ApiKeys keys;
  EXPECT_FALSE(keys.enabled());
  ASSERT_TRUE(keys.Add("shop", kAbcSha256, kScopeIngest | kScopeRead).ok());
  EXPECT_TRUE(keys.enabled());
  const ApiKey* key = keys.Authenticate("abc");
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(key->name, "shop");
  EXPECT_EQ(key->scopes, kScopeIngest | kScopeRead);
  EXPECT_EQ(keys.Authenticate("abd"), nullptr);
  EXPECT_EQ(keys.Authenticate("ab"), nullptr);
  EXPECT_EQ(keys.Authenticate("abc "), nullptr);
  EXPECT_EQ(keys.Authenticate(""), nullptr);
  EXPECT_EQ(keys.Authenticate(kAbcSha256), nullptr);  // the hash itself is not a credential
}

TEST(ApiKeysTest, UppercaseHexIsAccepted) {
  ApiKeys keys;
  std::string upper(kAbcSha256);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  ASSERT_TRUE(keys.Add("shop", upper, kScopeRead).ok());
  ASSERT_NE(keys.Authenticate("abc"), nullptr);
}

TEST(ApiKeysTest, EachOfSeveralKeysAuthenticatesAsItself) {
  ApiKeys keys;
  const std::vector<std::string> secrets = {"first-secret", "second-secret", "third-secret"};
  const uint8_t scopes[] = {kScopeIngest, kScopeRead, kScopeAdmin};
  for (size_t i = 0; i < secrets.size(); ++i) {
    ASSERT_TRUE(
        keys.Add("key" + std::to_string(i), ApiKeys::Sha256Hex(secrets[i]), scopes[i]).ok());
  }
  EXPECT_EQ(keys.size(), 3u);
  for (size_t i = 0; i < secrets.size(); ++i) {
    const ApiKey* key = keys.Authenticate(secrets[i]);
    ASSERT_NE(key, nullptr) << i;
    EXPECT_EQ(key->name, "key" + std::to_string(i));
    EXPECT_EQ(key->scopes, scopes[i]);
  }
  EXPECT_EQ(keys.Authenticate("fourth-secret"), nullptr);
}

TEST(ApiKeysTest, AddRejectsBadHashNamesAndScopes) {
  ApiKeys keys;
  EXPECT_EQ(keys.Add("", kAbcSha256, kScopeRead).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(keys.Add("short", kAbcSha256.substr(1), kScopeRead).code(),
            absl::StatusCode::kInvalidArgument);
  std::string non_hex(kAbcSha256);
  non_hex[10] = 'g';
  EXPECT_EQ(keys.Add("nonhex", non_hex, kScopeRead).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(keys.Add("noscopes", kAbcSha256, 0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(keys.size(), 0u);

  ASSERT_TRUE(keys.Add("shop", kAbcSha256, kScopeRead).ok());
  absl::Status duplicate_name = keys.Add("shop", ApiKeys::Sha256Hex("other"), kScopeRead);
  EXPECT_EQ(duplicate_name.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(duplicate_name.message().find("shop"), std::string_view::npos);
  EXPECT_EQ(keys.Add("shop2", kAbcSha256, kScopeRead).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(keys.size(), 1u);
}

TEST(ApiKeysTest, ParseScopesAndScopeNamesRoundTrip) {
  std::vector<std::string> names = {"ingest", "read"};
  absl::StatusOr<uint8_t> scopes = ParseScopes(names);
  ASSERT_TRUE(scopes.ok());
  EXPECT_EQ(*scopes, kScopeIngest | kScopeRead);
  EXPECT_EQ(ScopeNames(*scopes), "ingest,read");
  names = {"admin"};
  EXPECT_EQ(*ParseScopes(names), kScopeAdmin);
  EXPECT_EQ(ScopeNames(kScopeIngest | kScopeRead | kScopeAdmin), "ingest,read,admin");
  EXPECT_EQ(ScopeNames(0), "");
}

TEST(ApiKeysTest, ParseScopesNamesTheUnknownScope) {
  std::vector<std::string> names = {"read", "wrtie"};
  absl::StatusOr<uint8_t> scopes = ParseScopes(names);
  ASSERT_FALSE(scopes.ok());
  EXPECT_EQ(scopes.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(scopes.status().message().find("\"wrtie\""), std::string_view::npos) << scopes.status();
  names = {"READ"};  // scope names are case-sensitive, as written in the config
  EXPECT_FALSE(ParseScopes(names).ok());
  names = {""};
  EXPECT_FALSE(ParseScopes(names).ok());
}

TEST(ApiKeysTest, SecretFromHeadersPrefersBearerThenApiKeyHeader) {
  EXPECT_EQ(ApiKeys::SecretFromHeaders("Bearer abc", ""), "abc");
  EXPECT_EQ(ApiKeys::SecretFromHeaders("bearer abc", ""), "abc");
  EXPECT_EQ(ApiKeys::SecretFromHeaders("BEARER   abc  ", ""), "abc");
  EXPECT_EQ(ApiKeys::SecretFromHeaders("  Bearer\tabc", ""), "abc");
  EXPECT_EQ(ApiKeys::SecretFromHeaders("Bearer abc", "xyz"), "abc");
  EXPECT_EQ(ApiKeys::SecretFromHeaders("", "xyz"), "xyz");
  EXPECT_EQ(ApiKeys::SecretFromHeaders("", " xyz "), "xyz");
  // Other schemes and an empty bearer token fall back to X-Api-Key.
  EXPECT_EQ(ApiKeys::SecretFromHeaders("Basic dXNlcjpwYXNz", "xyz"), "xyz");
  EXPECT_EQ(ApiKeys::SecretFromHeaders("Bearer", "xyz"), "xyz");
  EXPECT_EQ(ApiKeys::SecretFromHeaders("Bearer   ", "xyz"), "xyz");
  EXPECT_EQ(ApiKeys::SecretFromHeaders("Bearerabc", ""), "");
  EXPECT_EQ(ApiKeys::SecretFromHeaders("", ""), "");
}

TEST(ApiKeysTest, GeneratedSecretsAreDistinctAndAuthenticate) {
  ApiKeys keys;
  std::set<std::string> seen;
  std::vector<std::string> secrets;
  for (int i = 0; i < 16; ++i) {
    std::string secret = ApiKeys::GenerateSecret();
    ASSERT_EQ(secret.size(), 3u + 43u) << secret;
    EXPECT_TRUE(secret.starts_with("pk_")) << secret;
    EXPECT_EQ(secret.find_first_not_of(
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 3),
              std::string::npos)
        << secret;
    EXPECT_TRUE(seen.insert(secret).second) << secret;
    secrets.push_back(secret);
    ASSERT_TRUE(keys.Add("k" + std::to_string(i), ApiKeys::Sha256Hex(secret), kScopeRead).ok());
  }
  ASSERT_EQ(secrets.size(), 16u);
  for (size_t i = 0; i < secrets.size(); ++i) {
    const ApiKey* key = keys.Authenticate(secrets[i]);
    ASSERT_NE(key, nullptr) << secrets[i];
    EXPECT_EQ(key->name, "k" + std::to_string(i));
  }
}

}  // namespace
}  // namespace persona::serve
