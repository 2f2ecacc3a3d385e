#include "serve/api_context.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <utility>

#include "common/time_util.h"
#include "kafka/cluster_exchange.h"
#include "kafka/kafka_source.h"
#include "serve/json_response.h"
#include "serve/request_target.h"

namespace persona::serve {

ApiContext::ApiContext(Engine* engine, const ServeConfig& config, std::string config_path,
                       Recommender* recommender, Predictor* predictor)
    : engine_(engine),
      recommender_(recommender),
      predictor_(predictor),
      config_(config),
      config_path_(std::move(config_path)) {}

ApiContext::~ApiContext() = default;

namespace {
constexpr char kForwardedHeader[] = "X-Persona-Forwarded";
constexpr std::chrono::milliseconds kForwardTimeout{10000};
}  // namespace

void ApiContext::set_cluster(ClusterExchange* cluster) {
  if (cluster != nullptr && forwarder_ == nullptr) forwarder_ = std::make_unique<HttpForwarder>();
  cluster_.store(cluster);
}

std::vector<std::pair<std::string, std::string>> ApiContext::AuthHeaders(const HttpRequest& req) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* name : {"Authorization", "X-Api-Key"}) {
    if (std::string_view v = req.header(name); !v.empty()) out.emplace_back(name, std::string(v));
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ApiContext::ForwardHeaders(
    const HttpRequest& req) const {
  auto headers = AuthHeaders(req);
  for (const char* name : {"Content-Type", "Accept"}) {
    if (std::string_view v = req.header(name); !v.empty())
      headers.emplace_back(name, std::string(v));
  }
  if (ClusterExchange* cluster = cluster_.load(); cluster != nullptr) {
    headers.emplace_back(kForwardedHeader, cluster->self_url());
  }
  return headers;
}

bool ApiContext::WasForwarded(const HttpRequest& req) {
  return !req.header(kForwardedHeader).empty();
}

void ApiContext::ForwardToOwner(uint32_t partition, const HttpRequest& req, Responder respond) {
  ClusterExchange* cluster = cluster_.load();
  if (WasForwarded(req) || cluster == nullptr) {
    HttpResponse r = JsonError(503, "not_owner",
                               "this instance does not own partition " + std::to_string(partition) +
                                   " any more (the group is rebalancing); retry shortly");
    r.headers.emplace_back("Retry-After", "1");
    respond(std::move(r));
    return;
  }
  std::optional<std::string> owner = cluster->OwnerUrl(partition);
  if (!owner) {
    HttpResponse r = JsonError(503, "owner_unknown",
                               "partition " + std::to_string(partition) +
                                   " is owned by another instance whose address is not known "
                                   "yet (the group is rebalancing); retry shortly");
    r.headers.emplace_back("Retry-After", "1");
    respond(std::move(r));
    return;
  }
  forwarder_->Forward(*owner, std::string(req.method), std::string(req.target), ForwardHeaders(req),
                      std::string(req.body), kForwardTimeout, std::move(respond));
}

void ApiContext::WhenApplied(int32_t partition, int64_t offset, std::chrono::milliseconds timeout,
                             std::vector<std::pair<std::string, std::string>> auth,
                             std::function<void(bool)> done) {
  KafkaSource* source = kafka_.load();
  ClusterExchange* cluster = cluster_.load();
  if (source == nullptr) {
    done(false);
    return;
  }
  if (cluster == nullptr || partition < 0 ||
      static_cast<uint32_t>(partition) >= engine_->partitions() ||
      !engine_->foreign(static_cast<uint32_t>(partition))) {
    source->WhenApplied(partition, offset, timeout, std::move(done));
    return;
  }
  std::optional<std::string> owner = cluster->OwnerUrl(static_cast<uint32_t>(partition));
  if (!owner) {
    done(false);
    return;
  }
  auth.emplace_back(kForwardedHeader, cluster->self_url());
  const std::string target = "/v1/cluster/applied?partition=" + std::to_string(partition) +
                             "&offset=" + std::to_string(offset) +
                             "&timeout_ms=" + std::to_string(timeout.count());
  forwarder_->Forward(
      *owner, "GET", target, std::move(auth), "", timeout + kForwardTimeout,
      [done = std::move(done)](HttpResponse r) {
        done(r.status == 200 && r.body.find("\"applied\":true") != std::string::npos);
      });
}

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

}  // namespace persona::serve
