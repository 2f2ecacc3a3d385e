// The recommendation layer on a real engine: as a stream operator it keeps trending and item-CF
// current, requests read the live profile (real-time reflection), fallbacks for cold users and
// missing models, filters, A/B assignment and attribution, hot-swap under load, and a restart
// that restores trending and item-CF exactly (checkpointed parts + the log tail replayed).
#include "recommend/recommender.h"

#include <gtest/gtest.h>

#include <algorithm>
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
  for (const auto& is : issues)
    ADD_FAILURE() << is.index_or_line << ": " << is.field << " " << is.rule;
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
  // Opens the engine with a fresh recommender in its pipeline and starts the recommender.
  void Open(RecommendConfig config = {}, bool checkpoint_on_close = true) {
    EngineConfig ec;
    ec.data_dir = dir_.path() + "/db";
    ec.partitions = 2;
    ec.checkpoint_on_close = checkpoint_on_close;
    config.model_poll_seconds = 0;
    config_ = config;
    rec_ = std::make_unique<Recommender>(config, dir_.path());
    auto engine = Engine::Open(ec, {}, {rec_.get()});
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
    rec_->Start(engine_.get());
  }
  // Stops the recommender and closes the engine; the recommender is destroyed after the engine.
  void Close() {
    if (rec_) rec_->Stop();
    if (engine_) {
      ASSERT_TRUE(engine_->Close().ok());
    }
    engine_.reset();
    rec_.reset();
  }
  // Closes, then opens the same data directory with a new recommender (same config).
  void Restart(bool checkpoint_on_close = true) {
    Close();
    Open(config_, checkpoint_on_close);
  }
  void TearDown() override { Close(); }
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
  RecommendConfig config_;
  // The recommender is an operator of the engine's pipeline: declared first, destroyed last.
  std::unique_ptr<Recommender> rec_;
  std::unique_ptr<Engine> engine_;
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
  for (int i = 0; i < 30; ++i)
    s += Ev("w" + std::to_string(i % 3), "view", "i" + std::to_string(i), 100 + i);
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
  Ingest(
      "{\"user_id\":\"searcher\",\"type\":\"search\",\"ts\":1700000300000,\"query\":\"rake\","
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
  for (int i = 0; i < 30; ++i)
    s += Ev("h" + std::to_string(i % 5), "view", "i" + std::to_string(i), 100 + i);
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

// What a request sees of the stream-wide state, by item string (catalogue ids are not stable
// across restarts).
struct RecState {
  std::vector<std::pair<std::string, double>> similar[4];
  std::vector<std::pair<std::string, double>> trending;
  std::vector<std::pair<std::string, double>> trending_books;
  std::vector<std::string> recommended;
};

RecState ReadState(Recommender& rec) {
  RecState out;
  const char* items[] = {"a", "b", "c", "d"};
  for (int i = 0; i < 4; ++i) {
    auto similar = rec.SimilarItems(items[i], 5);
    EXPECT_TRUE(similar.ok()) << similar.status();
    if (!similar.ok()) continue;
    for (const auto& s : *similar) out.similar[i].emplace_back(s.item, s.score);
  }
  auto trending = rec.TrendingItems("", 10);
  EXPECT_TRUE(trending.ok()) << trending.status();
  if (trending.ok()) {
    for (const auto& s : *trending) out.trending.emplace_back(rec.catalog().Item(s.item), s.score);
  }
  auto books = rec.TrendingItems("books", 10);
  EXPECT_TRUE(books.ok()) << books.status();
  if (books.ok()) {
    for (const auto& s : *books)
      out.trending_books.emplace_back(rec.catalog().Item(s.item), s.score);
  }
  Recommender::Request r;
  r.user = "q3";
  r.k = 5;
  auto recs = rec.Recommend(r);
  EXPECT_TRUE(recs.ok()) << recs.status();
  if (recs.ok()) {
    for (const auto& i : recs->items) out.recommended.push_back(i.item);
  }
  return out;
}

void ExpectSameLists(const std::vector<std::pair<std::string, double>>& restarted,
                     const std::vector<std::pair<std::string, double>>& live,
                     std::string_view what) {
  ASSERT_EQ(restarted.size(), live.size()) << what;
  for (size_t i = 0; i < live.size(); ++i) {
    EXPECT_EQ(restarted[i].first, live[i].first) << what << " rank " << i;
    EXPECT_NEAR(restarted[i].second, live[i].second, 1e-6 * std::max(1.0, live[i].second))
        << what << " rank " << i;
  }
}

void ExpectSameState(const RecState& restarted, const RecState& live) {
  for (int i = 0; i < 4; ++i) ExpectSameLists(restarted.similar[i], live.similar[i], "similar");
  ExpectSameLists(restarted.trending, live.trending, "trending");
  ExpectSameLists(restarted.trending_books, live.trending_books, "trending in books");
  EXPECT_EQ(restarted.recommended, live.recommended);
}

// More users after PlantPairs: q<u> view a then c, and buy d.
std::string Tail() {
  std::string s;
  for (int u = 0; u < 10; ++u) {
    const std::string user = "q" + std::to_string(u);
    s += Ev(user, "view", "a", 3000 + u * 10, "shoes.running");
    s += Ev(user, "view", "c", 3001 + u * 10, "books");
    s += Ev(user, "purchase", "d", 3002 + u * 10, "books");
  }
  return s;
}

// The events after the last checkpoint exist only in the log: the restarted recommender loads the
// checkpointed parts and learns the tail from the replay through the pipeline.
TEST_F(RecommenderTest, ARestartRestoresTrendingAndItemCfFromTheCheckpointAndTheLogTail) {
  RecommendConfig config;
  config.trending.refresh_ms = 0;  // every read sees the current parts
  Open(config, /*checkpoint_on_close=*/false);
  PlantPairs();
  ASSERT_TRUE(engine_->Checkpoint().ok());
  Ingest(Tail());
  const RecState live = ReadState(*rec_);
  ASSERT_FALSE(live.similar[0].empty());
  ASSERT_FALSE(live.trending.empty());

  Restart(/*checkpoint_on_close=*/false);
  EXPECT_TRUE(rec_->warmed_up());  // complete as soon as the engine opened
  EXPECT_EQ(engine_->recovered_events(), 30u);
  ExpectSameState(ReadState(*rec_), live);
  // And it keeps learning live from there as a recommender that never stopped would.
  Ingest(Ev("late", "view", "b", 4000, "shoes.running") + Ev("late", "view", "d", 4001, "books"));
  auto similar = rec_->SimilarItems("b", 5);
  ASSERT_TRUE(similar.ok());
  EXPECT_FALSE(similar->empty());
}

// Every event is in the checkpoint (closing checkpoint): nothing is replayed, the parts alone
// restore the state.
TEST_F(RecommenderTest, ARestartRestoresTrendingAndItemCfFromTheClosingCheckpointAlone) {
  RecommendConfig config;
  config.trending.refresh_ms = 0;
  Open(config);
  PlantPairs();
  Ingest(Tail());
  const RecState live = ReadState(*rec_);
  Restart();
  EXPECT_TRUE(rec_->warmed_up());
  EXPECT_EQ(engine_->recovered_events(), 0u);
  ExpectSameState(ReadState(*rec_), live);
}

// A/B attribution counts live events since start: a replayed click is not counted again.
TEST_F(RecommenderTest, ReplayedEventsAreNotAttributedAgain) {
  Open({}, /*checkpoint_on_close=*/false);
  PlantPairs();
  auto r = rec_->Recommend(Req("p1", 2, "", ""));
  ASSERT_TRUE(r.ok());
  const size_t v = rec_->VariantOf("p1");
  Ingest(Ev("p1", "click", r->items[0].item, 9000, "", "\"rec_id\":\"" + r->rec_id + "\""));
  EXPECT_EQ(rec_->counters(v).clicks.load(), 1u);
  Restart(/*checkpoint_on_close=*/false);
  EXPECT_GT(engine_->recovered_events(), 0u);
  EXPECT_EQ(rec_->counters(v).clicks.load(), 0u);
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
