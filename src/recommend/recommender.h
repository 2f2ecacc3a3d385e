// The recommendation layer: a stream operator (engine/stream_operator.h) that keeps the
// stream-wide recommenders (trending, online item-CF) current with every event the engine applies,
// holds the current SASRec model (hot-swapped when a new artifact appears), and answers requests by
// blending the sources of the user's A/B variant over the user's *live* profile: the event
// acknowledged a moment ago is already in the sequence the model encodes.
//
//   Recommender rec(config, data_dir);
//   auto engine = Engine::Open(cfg, log, {&predictor, &rec});  // checkpointed parts restored,
//   rec.Start(engine.get());                                    // log tail replayed through it
//   rec.Recommend({.user = "u1", .k = 10});
//
// State: trending and item-CF are kept as one part per partition (each fed only by its partition's
// writer, so a part is a function of that partition's stream), checkpointed with the partition
// (with the catalogue entries the part refers to, by item string) and combined at read time. A
// restart loads the parts and replays only the log tail: no scan of the history.
//
// Fallbacks: no model or no known item in the history -> item-CF + trending; a cold user (no
// items) -> trending in the user's top categories, then overall. Attribution: every response has
// a rec_id "<variant>.<hex>"; events carrying it are counted for that variant (clicks, carts,
// purchases, revenue), and served responses are logged for `persona eval-online`.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "engine/stream_operator.h"
#include "recommend/item_catalog.h"
#include "recommend/item_cf.h"
#include "recommend/recommend_config.h"
#include "recommend/sasrec_model.h"
#include "recommend/trending.h"

namespace persona {

class Recommender : public StreamOperator {
 public:
  // `data_dir` resolves the default model directory and the impressions log.
  Recommender(RecommendConfig config, std::string data_dir);
  ~Recommender() override;
  Recommender(const Recommender&) = delete;
  Recommender& operator=(const Recommender&) = delete;

  // StreamOperator: the catalogue, trending and item-CF parts, A/B attribution (live events only:
  // the attribution counters are metrics since start).
  std::string_view name() const override { return "recommend"; }
  void OpenPartitions(uint32_t partitions) override;
  void OnEvent(const AppliedEvent& applied) override;
  void SaveState(uint32_t partition, std::string* out) override;
  absl::Status LoadState(uint32_t partition, std::string_view blob) override;
  void OnRecovered() override;

  // Binds the engine the recommender was opened with (reads of live profiles and "now"), loads
  // the newest model and starts polling the model directory. `engine` must outlive the
  // recommender. `log` receives progress lines.
  void Start(Engine* engine, std::function<void(std::string_view)> log = {});
  // Stops background threads (idempotent; the destructor calls it).
  void Stop();
  // True once the state is complete: the engine opened (checkpointed parts + log tail replayed).
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
  const Trending& trending() const { return *trending_; }
  const ItemCf& item_cf() const { return *cf_; }

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
  void WatchModels();
  // The catalogue id of `item` (interned), remembered as one of `partition`'s items so that its
  // checkpoint carries the item's string and category.
  uint32_t InternFor(uint32_t partition, std::string_view item, std::string_view category);
  std::string ModelDir() const;
  void Attribute(const Event& event);

  Engine* engine_ = nullptr;
  RecommendConfig config_;
  std::string data_dir_;
  ItemCatalog catalog_;
  std::unique_ptr<Trending> trending_;  // created by OpenPartitions, one part per partition
  std::unique_ptr<ItemCf> cf_;
  std::atomic<std::shared_ptr<const SasRecModel>> model_;
  std::string model_path_;  // artifact of the current model (guarded by reload_mu_)
  std::mutex reload_mu_;
  // Per partition, writer-thread only: pool code -> catalogue id (kNone = not yet mapped), and
  // the catalogue ids the partition's parts may refer to.
  std::vector<std::vector<uint32_t>> code_to_item_;
  std::vector<absl::flat_hash_set<uint32_t>> items_of_;
  std::unique_ptr<VariantCounters[]> counters_;
  std::atomic<uint64_t> rec_counter_{0};
  std::atomic<uint64_t> flagged_events_{0};
  std::mutex impressions_mu_;
  std::FILE* impressions_ = nullptr;  // append-only, flushed by the watcher thread and Stop
  std::atomic<bool> warmed_up_{false};
  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::thread watch_thread_;
};

}  // namespace persona
