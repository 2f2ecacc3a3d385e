#include "serve/api_context.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <utility>

namespace persona::serve {

ApiContext::ApiContext(Engine* engine, const ServeConfig& config, std::string config_path,
                       Recommender* recommender, Predictor* predictor)
    : engine_(engine),
      recommender_(recommender),
      predictor_(predictor),
      config_(config),
      config_path_(std::move(config_path)) {}

ApiContext::~ApiContext() = default;

absl::StatusOr<std::shared_ptr<const ApiKeys>> BuildApiKeys(const ServeConfig& config) {
  auto keys = std::make_shared<ApiKeys>();
  for (const ApiKeyConfig& k : config.api_keys) {
    auto scopes = ParseScopes(k.scopes);
    if (!scopes.ok()) {
      return absl::InvalidArgumentError("server.api_keys '" + k.name +
                                        "': " + std::string(scopes.status().message()));
    }
    if (absl::Status s = keys->Add(k.name, k.sha256, *scopes); !s.ok()) {
      return absl::InvalidArgumentError("server.api_keys '" + k.name +
                                        "': " + std::string(s.message()));
    }
  }
  return std::shared_ptr<const ApiKeys>(std::move(keys));
}

std::string MediaType(std::string_view content_type) {
  const size_t semi = content_type.find(';');
  std::string_view t = content_type.substr(0, semi);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
  std::string out(t);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

absl::Status CheckUserId(std::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError("the user id is empty");
  if (id.size() > 256) return absl::InvalidArgumentError("the user id is longer than 256 bytes");
  return absl::OkStatus();
}

std::optional<size_t> ParseUint(std::string_view s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  size_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<size_t>(c - '0');
  }
  return v;
}

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace persona::serve
