// What the route handlers of every domain (serve/*_routes.h) share: the engine and the optional
// read-path services, the configuration the server started with, the API keys in force, the
// readiness flag, and one worker thread for slow calls. Api owns one; it outlives every handler.
//
// Threading: the services and the configuration are fixed at construction. The keys and the
// readiness flag are atomics: a reload swaps the keys while I/O threads authenticate with them.
// Post runs the calls it is given on the worker one at a time, in order.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/serial_worker.h"
#include "engine/engine.h"
#include "serve/api_keys.h"
#include "serve/http_forwarder.h"
#include "serve/http_server.h"
#include "serve/serve_config.h"

namespace persona {
class ClusterExchange;
class Changelog;
class ProfileChangeSink;
class KafkaProducer;
class KafkaSource;
class Predictor;
class Recommender;
}  // namespace persona

namespace persona::serve {

class ApiContext {
 public:
  // `engine` must outlive this object, and so must `recommender` and `predictor` (each may be
  // null: its routes then answer 503). `config_path` ("" = none) is re-read by a reload.
  ApiContext(Engine* engine, const ServeConfig& config, std::string config_path,
             Recommender* recommender, Predictor* predictor);
  ~ApiContext();  // runs the calls already posted, then joins the worker
  ApiContext(const ApiContext&) = delete;
  ApiContext& operator=(const ApiContext&) = delete;

  Engine& engine() const { return *engine_; }
  Recommender* recommender() const { return recommender_; }
  Predictor* predictor() const { return predictor_; }
  // The configuration as the server started with it; a reload re-reads only the API keys.
  const ServeConfig& config() const { return config_; }
  const std::string& config_path() const { return config_path_; }

  std::shared_ptr<const ApiKeys> keys() const { return keys_.load(); }
  void set_keys(std::shared_ptr<const ApiKeys> keys) { keys_.store(std::move(keys)); }

  // /readyz answers 503 until set_ready(true) and again after set_ready(false).
  bool ready() const { return ready_.load(); }
  void set_ready(bool ready) { ready_.store(ready); }

  // The Kafka source feeding the engine (null: none). /readyz waits for it to catch up with the
  // topic's backlog; /v1/stats and /metrics report its partitions and lag. With a source, POST
  // /v1/events produces to `topic` with `producer` (the owner of each user's partition applies
  // the events). Set before the server starts; cleared (nullptrs) before they are destroyed.
  KafkaSource* kafka() const { return kafka_.load(); }
  KafkaProducer* kafka_producer() const { return kafka_producer_.load(); }
  const std::string& kafka_topic() const { return kafka_topic_; }
  void set_kafka(KafkaSource* source, KafkaProducer* producer, std::string topic) {
    kafka_topic_ = std::move(topic);
    kafka_producer_.store(producer);
    kafka_.store(source);
  }

  // The cluster exchange (null: a single instance). With it, a partition owned by another instance
  // is foreign in the engine and requests about its users go to the owner (ForwardToOwner).
  ClusterExchange* cluster() const { return cluster_.load(); }
  // The profile-change sink when attached to a topic (for /metrics), else null.
  ProfileChangeSink* profile_changes() const { return profile_changes_.load(); }
  void set_profile_changes(ProfileChangeSink* sink) { profile_changes_.store(sink); }
  // The changelog mirroring owned partitions' checkpoints (for /v1/stats and /metrics), or null.
  Changelog* changelog() const { return changelog_.load(); }
  void set_changelog(Changelog* changelog) { changelog_.store(changelog); }
  void set_cluster(ClusterExchange* cluster);
  HttpForwarder* forwarder() const { return forwarder_.get(); }
  // Sends `req` on to the instance owning `partition` (a foreign one) and answers with its
  // response; 503 with a reason when the owner is not known yet, or when `req` was already
  // forwarded once (ownership moved meanwhile: the client retries).
  void ForwardToOwner(uint32_t partition, const HttpRequest& req, Responder respond);
  // done(true) once `offset` of Kafka `partition` is applied by the instance owning it: this one
  // (KafkaSource::WhenApplied) or, in a cluster, the owner (asked over HTTP with `auth`, the
  // caller's credentials headers). done(false) when not within `timeout` or nobody owns it.
  void WhenApplied(int32_t partition, int64_t offset, std::chrono::milliseconds timeout,
                   std::vector<std::pair<std::string, std::string>> auth,
                   std::function<void(bool)> done);
  // The credential headers of `req` (Authorization, X-Api-Key) to pass on when forwarding.
  static std::vector<std::pair<std::string, std::string>> AuthHeaders(const HttpRequest& req);
  // What a request forwarded to an owner carries: the credentials, Content-Type and Accept of
  // `req`, and X-Persona-Forwarded naming this instance (an owner never forwards it again).
  std::vector<std::pair<std::string, std::string>> ForwardHeaders(const HttpRequest& req) const;
  // True when `req` was forwarded here by another instance.
  static bool WasForwarded(const HttpRequest& req);

  // Runs `fn` on the worker for slow calls (checkpoint, reload, stats, segment sizes), so that
  // they never hold an I/O thread.
  void Post(std::function<void()> fn) { worker_.Post(std::move(fn)); }

 private:
  Engine* const engine_;
  Recommender* const recommender_;
  Predictor* const predictor_;
  const ServeConfig config_;
  const std::string config_path_;
  std::atomic<std::shared_ptr<const ApiKeys>> keys_{std::make_shared<const ApiKeys>()};
  std::atomic<bool> ready_{false};
  std::atomic<KafkaSource*> kafka_{nullptr};
  std::atomic<KafkaProducer*> kafka_producer_{nullptr};
  std::string kafka_topic_;
  std::atomic<ClusterExchange*> cluster_{nullptr};
  std::atomic<Changelog*> changelog_{nullptr};
  std::atomic<ProfileChangeSink*> profile_changes_{nullptr};
  std::unique_ptr<HttpForwarder> forwarder_;

  SerialWorker worker_;  // last: destroyed (drained) first, while everything above is alive
};

// The keys of config.api_keys; InvalidArgument naming the key with a bad hash or scope.
absl::StatusOr<std::shared_ptr<const ApiKeys>> BuildApiKeys(const ServeConfig& config);

// Checks of request parts that handlers of several domains share.

// The media type of a Content-Type header, lower-cased, without parameters.
std::string MediaType(std::string_view content_type);
// OK for a user id of 1 to 256 bytes, else InvalidArgument saying what is wrong.
absl::Status CheckUserId(std::string_view id);
// A decimal integer of 1 to 9 digits; nullopt for anything else.
std::optional<size_t> ParseUint(std::string_view s);

}  // namespace persona::serve
