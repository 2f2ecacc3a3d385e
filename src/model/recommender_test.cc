// The recommendation layer on a real engine: the observer hook keeps trending and item-CF current,
// requests read the live profile (real-time reflection), fallbacks for cold users and missing
// models, filters, A/B assignment and attribution, hot-swap under load, rebuild from the log.
#include "model/recommender.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "event/json_event.h"
#include "store/scoped_temp_dir.h"

namespace persona {
namespace {

Recommender::Request Req(std::string_view user, uint32_t k, std::string_view category = "",
                         std::string_view source = "") {
  Recommender::Request r;
  r.user = user;
  r.k = k;
  r.category = category;
  r.source = source;
  return r;
}

std::shared_ptr<EventBatch> Batch(const std::string& ndjson) {
  auto batch = std::make_shared<EventBatch>();
  std::vector<EventIssue> issues;
  absl::Status st = ParseJsonBody(ndjson, ValidationLimits{}, false, batch.get(), &issues);
  EXPECT_TRUE(st.ok()) << st;
  for (const auto& is : issues) ADD_FAILURE() << is.index_or_line << ": " << is.field << " " << is.rule;
  return batch;
}

std::string Ev(std::string_view user, std::string_view type, std::string_view item, int64_t ts_s,
               std::string_view category = "", std::string_view extra = "") {
  std::string s = "{\"user_id\":\"" + std::string(user) + "\",\"type\":\"" + std::string(type) +
                  "\",\"ts\":" + std::to_string((1700000000 + ts_s) * 1000) + ",\"item_id\":\"" +
                  std::string(item) + "\"";
  if (!category.empty()) s += ",\"category_path\":\"" + std::string(category) + "\"";
  if (type == "purchase") s += ",\"price\":10";
  if (!extra.empty()) s += "," + std::string(extra);
  return s + "}\n";
}

// A SASRec model with random weights over items "i0".."i<n-1>": enough to exercise serving.
std::shared_ptr<const SasRecModel> RandomModel(uint32_t n, uint64_t seed, std::string version) {
  SasRecHyper hyper;
  hyper.max_len = 8;
  hyper.dim = 8;
  hyper.blocks = 1;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0, 0.5f);
  auto fill = [&](size_t count) {
    std::vector<float> v(count);
    for (float& x : v) x = normal(rng);
    return v;
  };
  const size_t d = hyper.dim;
  SasRecWeights w;
  w.item_emb = fill((n + 1) * d);
  std::fill(w.item_emb.begin(), w.item_emb.begin() + d, 0.0f);
  w.pos_emb = fill(hyper.max_len * d);
  SasRecWeights::Block b;
  b.ln1_g.assign(d, 1);
  b.ln1_b.assign(d, 0);
  b.in_proj_w = fill(3 * d * d);
  b.in_proj_b.assign(3 * d, 0);
  b.out_proj_w = fill(d * d);
  b.out_proj_b.assign(d, 0);
  b.ln2_g.assign(d, 1);
  b.ln2_b.assign(d, 0);
  b.ff1_w = fill(d * d);
  b.ff1_b.assign(d, 0);
  b.ff2_w = fill(d * d);
  b.ff2_b.assign(d, 0);
  w.blocks.push_back(b);
  w.lnf_g.assign(d, 1);
  w.lnf_b.assign(d, 0);
  std::vector<std::string> items = {""};
  for (uint32_t i = 0; i < n; ++i) items.push_back("i" + std::to_string(i));
  return std::make_shared<const SasRecModel>(hyper, std::move(items), std::move(w),
                                             std::move(version), "{}");
}

class RecommenderTest : public ::testing::Test {
 protected:
  void Open(RecommendConfig config = {}) {
    EngineConfig ec;
    ec.data_dir = dir_.path() + "/db";
    ec.partitions = 2;
    auto engine = Engine::Open(ec);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
    config.model_poll_seconds = 0;
    rec_ = std::make_unique<Recommender>(engine_.get(), config, dir_.path());
    engine_->SetEventObserver(rec_.get());
  }
  void TearDown() override {
    if (rec_) rec_->Stop();
    if (engine_) {
      ASSERT_TRUE(engine_->Close().ok());
      engine_->SetEventObserver(nullptr);
    }
  }
  void Ingest(const std::string& ndjson) {
    IngestOutcome out = engine_->Ingest(Batch(ndjson));
    ASSERT_TRUE(out.rejected.empty());
  }
  std::vector<std::string> Items(const Recommender::Response& r) {
    std::vector<std::string> out;
    for (const auto& i : r.items) out.push_back(i.item);
    return out;
  }
  // Users u0..u19 each view a then b, c then d: the co-occurrences item-CF must find.
  void PlantPairs() {
    std::string s;
    for (int u = 0; u < 20; ++u) {
      const std::string user = "p" + std::to_string(u);
      s += Ev(user, "view", "a", 1000 + u * 10, "shoes.running");
      s += Ev(user, "view", "b", 1001 + u * 10, "shoes.running");
      s += Ev(user, "view", "c", 1002 + u * 10, "books");
      s += Ev(user, "view", "d", 1003 + u * 10, "books");
    }
    Ingest(s);
  }

  ScopedTempDir dir_{"recommender"};
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Recommender> rec_;
};

TEST_F(RecommenderTest, ANewViewIsReflectedInTheNextRecommendation) {
  Open();
  PlantPairs();
  Ingest(Ev("fresh", "view", "c", 5000, "books"));
  auto r = rec_->Recommend(Req("fresh", 3, "", "item_cf"));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_FALSE(r->items.empty());
  EXPECT_EQ(r->items[0].item, "d");
  EXPECT_EQ(r->items[0].because, "c");
  // The user now views a: the very next call follows the new item.
  Ingest(Ev("fresh", "view", "a", 5001, "shoes.running"));
  r = rec_->Recommend(Req("fresh", 1, "", "item_cf"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->items.size(), 1u);
  EXPECT_EQ(r->items[0].item, "b");
  EXPECT_EQ(r->items[0].source, RecSource::kItemCf);
}

TEST_F(RecommenderTest, SasRecScoresFollowTheLiveSequence) {
  Open();
  rec_->SetModel(RandomModel(30, 7, "sasrec-test"));
  std::string s;
  for (int i = 0; i < 30; ++i) s += Ev("w" + std::to_string(i % 3), "view", "i" + std::to_string(i), 100 + i);
  Ingest(s);
  auto before = rec_->Recommend(Req("w0", 5, "", "sasrec"));
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->model_version, "sasrec-test");
  ASSERT_EQ(before->items.size(), 5u);
  for (const auto& item : before->items) EXPECT_EQ(item.source, RecSource::kSasRec);
  // The model's own ranking for the user's current sequence is what is served.
  Ingest(Ev("w0", "view", "i7", 500));
  auto after = rec_->Recommend(Req("w0", 5, "", "sasrec"));
  ASSERT_TRUE(after.ok());
  auto model = rec_->model();
  std::vector<uint32_t> seq;
  for (int i = 0; i < 30; i += 3) seq.push_back(model->IndexOf("i" + std::to_string(i)));
  seq.push_back(model->IndexOf("i7"));
  std::vector<float> scores(model->num_items() + 1);
  model->ScoreAll(seq, scores);
  uint32_t best = 1;
  for (uint32_t i = 1; i < scores.size(); ++i) {
    if (scores[i] > scores[best]) best = i;
  }
  EXPECT_EQ(after->items[0].item, model->ItemAt(best));
}

TEST_F(RecommenderTest, ColdUsersGetTrendingInTheirCategoriesThenOverall) {
  Open();
  std::string s;
  for (int u = 0; u < 10; ++u) s += Ev("t" + std::to_string(u), "view", "hot", 100 + u, "toys");
  for (int u = 0; u < 3; ++u) s += Ev("t" + std::to_string(u), "view", "warm", 200 + u, "garden");
  Ingest(s);
  auto unknown = rec_->Recommend(Req("nobody", 2, "", ""));
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->known_user);
  EXPECT_TRUE(unknown->cold);
  EXPECT_EQ(Items(*unknown), (std::vector<std::string>{"hot", "warm"}));
  for (const auto& item : unknown->items) EXPECT_EQ(item.source, RecSource::kTrending);
  // A user whose only activity is a search in "garden" (no item) gets garden first.
  Ingest("{\"user_id\":\"searcher\",\"type\":\"search\",\"ts\":1700000300000,\"query\":\"rake\","
         "\"category_path\":\"garden\"}\n");
  auto searcher = rec_->Recommend(Req("searcher", 2, "", ""));
  ASSERT_TRUE(searcher.ok());
  EXPECT_TRUE(searcher->known_user);
  EXPECT_TRUE(searcher->cold);
  EXPECT_EQ(Items(*searcher), (std::vector<std::string>{"warm", "hot"}));
}

TEST_F(RecommenderTest, WithoutAModelTheBlendFallsBackToItemCfAndTrending) {
  Open();
  PlantPairs();
  Ingest(Ev("x", "view", "a", 6000, "shoes.running"));
  auto r = rec_->Recommend(Req("x", 4, "", ""));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->model_version.empty());
  ASSERT_GE(r->items.size(), 2u);
  EXPECT_EQ(r->items[0].item, "b");
  EXPECT_EQ(r->items[0].source, RecSource::kItemCf);
  std::set<RecSource> sources;
  for (const auto& i : r->items) sources.insert(i.source);
  EXPECT_TRUE(sources.count(RecSource::kTrending));
}

TEST_F(RecommenderTest, PurchasedItemsAreFilteredAndCategoriesRestrict) {
  Open();
  PlantPairs();
  Ingest(Ev("buyer", "view", "a", 7000, "shoes.running") +
         Ev("buyer", "purchase", "b", 7001, "shoes.running"));
  auto r = rec_->Recommend(Req("buyer", 10, "", ""));
  ASSERT_TRUE(r.ok());
  for (const auto& i : r->items) EXPECT_NE(i.item, "b");
  auto books = rec_->Recommend(Req("buyer", 10, "books", ""));
  ASSERT_TRUE(books.ok());
  ASSERT_FALSE(books->items.empty());
  for (const auto& i : books->items) EXPECT_TRUE(i.item == "c" || i.item == "d") << i.item;
  // A parent category matches its descendants.
  auto shoes = rec_->Recommend(Req("nobody", 10, "shoes", ""));
  ASSERT_TRUE(shoes.ok());
  EXPECT_EQ(shoes->items.size(), 2u);
  EXPECT_EQ(rec_->Recommend(Req("buyer", 3, "nope", "")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(rec_->Recommend(Req("buyer", 0, "", "")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rec_->Recommend(Req("buyer", 3, "", "magic")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RecommenderTest, VariantsAreStableAndProportionalAndEventsAttributeToThem) {
  RecommendConfig config;
  config.variants = {{"control", 1, {RecSource::kTrending}},
                     {"model", 3, {RecSource::kItemCf, RecSource::kTrending}}};
  Open(config);
  PlantPairs();
  int model = 0;
  for (int u = 0; u < 4000; ++u) {
    const std::string user = "ab" + std::to_string(u);
    const size_t v = rec_->VariantOf(user);
    EXPECT_EQ(v, rec_->VariantOf(user));
    model += v == 1;
  }
  EXPECT_NEAR(model / 4000.0, 0.75, 0.03);

  auto r = rec_->Recommend(Req("p1", 2, "", ""));
  ASSERT_TRUE(r.ok());
  const size_t v = rec_->VariantOf("p1");
  EXPECT_EQ(r->variant, config.variants[v].name);
  EXPECT_EQ(r->rec_id.substr(0, r->variant.size() + 1), r->variant + ".");
  Ingest(Ev("p1", "click", r->items[0].item, 9000, "", "\"rec_id\":\"" + r->rec_id + "\"") +
         Ev("p1", "purchase", r->items[0].item, 9001, "", "\"rec_id\":\"" + r->rec_id + "\""));
  EXPECT_EQ(rec_->counters(v).responses.load(), 1u);
  EXPECT_EQ(rec_->counters(v).clicks.load(), 1u);
  EXPECT_EQ(rec_->counters(v).purchases.load(), 1u);
  EXPECT_EQ(rec_->counters(v).revenue_cents.load(), 1000u);
  EXPECT_EQ(rec_->counters(1 - v).clicks.load(), 0u);
}

TEST_F(RecommenderTest, ModelSwapsUnderLoadNeverFailARequest) {
  Open();
  std::string s;
  for (int i = 0; i < 30; ++i) s += Ev("h" + std::to_string(i % 5), "view", "i" + std::to_string(i), 100 + i);
  Ingest(s);
  rec_->SetModel(RandomModel(30, 1, "v1"));
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, served{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      while (!stop.load()) {
        const std::string user = "h" + std::to_string(t);
        auto r = rec_->Recommend(Req(user, 5, "", "sasrec"));
        if (!r.ok() || r->items.size() != 5 || r->model_version.empty()) failures++;
        served++;
      }
    });
  }
  for (int i = 0; i < 200; ++i) rec_->SetModel(RandomModel(30, i, "v" + std::to_string(i)));
  // Artifacts appearing in the model directory are picked up by ReloadModel.
  std::filesystem::create_directories(dir_.path() + "/models/sasrec");
  ASSERT_TRUE(RandomModel(30, 99, "sasrec-20261122T000000Z")
                  ->Save(dir_.path() + "/models/sasrec/sasrec-20261122T000000Z.psm")
                  .ok());
  auto v = rec_->ReloadModel();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, "sasrec-20261122T000000Z");
  while (served.load() < 300) std::this_thread::yield();
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
  // A corrupt newer artifact is refused and the current model stays in service.
  {
    std::ofstream bad(dir_.path() + "/models/sasrec/sasrec-20261123T000000Z.psm");
    bad << "not a model";
  }
  EXPECT_FALSE(rec_->ReloadModel().ok());
  EXPECT_EQ(rec_->model()->version(), "sasrec-20261122T000000Z");
}

TEST_F(RecommenderTest, RebuildFromTheLogEqualsLiveLearning) {
  Open();
  PlantPairs();
  auto live = rec_->SimilarItems("a", 3);
  ASSERT_TRUE(live.ok());
  auto live_trending = rec_->TrendingItems("", 4);
  ASSERT_TRUE(live_trending.ok());
  // A second recommender that never saw the events live learns them from the log.
  RecommendConfig config;
  config.model_poll_seconds = 0;
  Recommender cold(engine_.get(), config, "");
  cold.StartBackground(engine_->LastSeqs());
  for (int i = 0; i < 500 && !cold.warmed_up(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(cold.warmed_up());
  auto rebuilt = cold.SimilarItems("a", 3);
  ASSERT_TRUE(rebuilt.ok());
  ASSERT_EQ(rebuilt->size(), live->size());
  for (size_t i = 0; i < live->size(); ++i) {
    EXPECT_EQ((*rebuilt)[i].item, (*live)[i].item);
    EXPECT_NEAR((*rebuilt)[i].score, (*live)[i].score, 1e-5);
  }
  auto rebuilt_trending = cold.TrendingItems("", 4);
  ASSERT_TRUE(rebuilt_trending.ok());
  ASSERT_EQ(rebuilt_trending->size(), live_trending->size());
  cold.Stop();
}

TEST_F(RecommenderTest, SimilarFallsBackToModelEmbeddingsForItemsWithoutCoOccurrence) {
  Open();
  rec_->SetModel(RandomModel(30, 3, "emb"));
  auto r = rec_->SimilarItems("i5", 4);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 4u);
  for (const auto& s : *r) {
    EXPECT_EQ(s.source, RecSource::kSasRec);
    EXPECT_NE(s.item, "i5");
  }
  EXPECT_EQ(rec_->SimilarItems("unknown-item", 4).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace persona
