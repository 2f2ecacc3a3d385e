// The recommendation layer: keeps the stream-wide recommenders (trending, online item-CF) current
// with every event the engine applies, holds the current SASRec model (hot-swapped when a new
// artifact appears), and answers requests by blending the sources of the user's A/B variant over
// the user's *live* profile: the event acknowledged a moment ago is already in the sequence the
// model encodes.
//
//   Recommender rec(engine, config, data_dir);
//   engine->SetEventObserver(&rec);              // from now on every applied event updates it
//   rec.StartBackground(seqs_before_attach);      // rebuild from the log, watch the model dir
//   rec.Recommend({.user = "u1", .k = 10});
//
// Fallbacks: no model or no known item in the history -> item-CF + trending; a cold user (no
// items) -> trending in the user's top categories, then overall. Attribution: every response has
// a rec_id "<variant>.<hex>"; events carrying it are counted for that variant (clicks, carts,
// purchases, revenue), and served responses are logged for `persona eval-online`.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "engine/event_observer.h"
#include "model/item_catalog.h"
#include "model/item_cf.h"
#include "model/recommend_config.h"
#include "model/sasrec_model.h"
#include "model/trending.h"

namespace persona {

class Recommender : public EventObserver {
 public:
  // `engine` must outlive the recommender. `data_dir` resolves the default model directory and
  // the impressions log.
  Recommender(Engine* engine, RecommendConfig config, std::string data_dir);
  ~Recommender() override;
  Recommender(const Recommender&) = delete;
  Recommender& operator=(const Recommender&) = delete;

  // EventObserver: updates catalogue, trending, item-CF and A/B attribution.
  void OnEvent(uint32_t partition, const Event& event, const Profile& profile,
               const ProfileContext& ctx) override;

  // Starts the background work: replays the log records up to `log_seqs` (per partition, the
  // records written before this observer was attached) into trending and item-CF, loads the
  // newest model, and polls the model directory. `log` receives progress lines.
  void StartBackground(std::vector<uint64_t> log_seqs,
                       std::function<void(std::string_view)> log = {});
  // Also hands every event of that log replay (redacted ones excepted) to `listener`, on the
  // replay thread, so other stream-wide learners warm up from the same single pass. Set before
  // StartBackground.
  void SetReplayListener(std::function<void(const Event&)> listener) {
    replay_listener_ = std::move(listener);
  }
  // Stops background threads (idempotent; the destructor calls it).
  void Stop();
  // True once the log replay finished.
  bool warmed_up() const { return warmed_up_.load(std::memory_order_acquire); }

  // Loads the newest artifact of the model directory when it is not the current one. Returns
  // the current model version afterwards ("" when there is none); an unreadable artifact is an
  // error and the previous model stays in service.
  absl::StatusOr<std::string> ReloadModel();
  // Replaces the model directly (tests, CLI).
  void SetModel(std::shared_ptr<const SasRecModel> model);
  std::shared_ptr<const SasRecModel> model() const { return model_.load(); }

  struct Request {
    std::string_view user;
    uint32_t k = 10;
    std::string_view category;  // only items in this category node (and below)
    std::string_view source;    // force one source ("sasrec", "item_cf", "trending"); empty = blend
  };
  struct Item {
    std::string item;
    double score = 0;
    RecSource source = RecSource::kTrending;  // the source contributing most to the item
    uint8_t sources = 0;                      // bit per RecSource that proposed it
    std::string because;                      // item-CF: the history item behind it
  };
  struct Response {
    std::string rec_id;
    std::string variant;
    std::string model_version;  // "" when no model served this response
    bool known_user = false;
    bool cold = false;  // no item history: trending fallback
    std::vector<Item> items;
  };
  // Recommendations for a user (unknown users get the cold-start answer). InvalidArgument for a
  // bad k / source / unknown category.
  absl::StatusOr<Response> Recommend(const Request& request);

  // Items similar to `item`: item-CF neighbours, else the SASRec embedding's nearest items.
  // NotFound when the item is unknown to both.
  struct Similar {
    std::string item;
    double score;
    RecSource source;
  };
  absl::StatusOr<std::vector<Similar>> SimilarItems(std::string_view item, uint32_t k) const;
  // Trending items overall or in a category node; NotFound for an unknown category.
  absl::StatusOr<std::vector<Trending::Scored>> TrendingItems(std::string_view category,
                                                              uint32_t k) const;
  const ItemCatalog& catalog() const { return catalog_; }

  // A/B counters per variant (index as in config().variants; the last entry counts rec_ids of
  // unknown variants).
  struct VariantCounters {
    std::atomic<uint64_t> responses{0}, items{0}, clicks{0}, carts{0}, purchases{0};
    std::atomic<uint64_t> revenue_cents{0};
  };
  const VariantCounters& counters(size_t variant) const { return counters_[variant]; }
  const RecommendConfig& config() const { return config_; }
  // The variant a user is assigned to (index into config().variants).
  size_t VariantOf(std::string_view user) const;
  // Stats for /v1/stats and the dashboard: catalogue size, CF pairs, model, per-variant counters.
  std::string StatsJson() const;
  // Events of anomaly-flagged users kept out of trending and item-CF since start.
  uint64_t flagged_events() const { return flagged_events_.load(std::memory_order_relaxed); }

 private:
  void RebuildFromLog(const std::vector<uint64_t>& log_seqs,
                      const std::function<void(std::string_view)>& log);
  void WatchModels();
  std::string ModelDir() const;
  void Attribute(const Event& event);

  Engine* engine_;
  RecommendConfig config_;
  std::string data_dir_;
  ItemCatalog catalog_;
  Trending trending_;
  ItemCf cf_;
  std::atomic<std::shared_ptr<const SasRecModel>> model_;
  std::string model_path_;  // artifact of the current model (guarded by reload_mu_)
  std::mutex reload_mu_;
  // Per partition: pool code -> catalogue id (kNone = not yet mapped). Writer-thread only.
  std::vector<std::vector<uint32_t>> code_to_item_;
  std::unique_ptr<VariantCounters[]> counters_;
  std::atomic<uint64_t> rec_counter_{0};
  std::atomic<uint64_t> flagged_events_{0};
  std::function<void(const Event&)> replay_listener_;
  std::mutex impressions_mu_;
  std::FILE* impressions_ = nullptr;  // append-only, flushed by the watcher thread and Stop
  std::atomic<bool> warmed_up_{false};
  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::thread rebuild_thread_, watch_thread_;
};

}  // namespace persona
