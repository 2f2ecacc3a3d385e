// Per-row cost of the native tree walk (GbdtModel::Margin / Probability) for ensembles of the
// size the propensity and churn models reach: full binary trees of depth 6 (64 leaves) over 30
// features, 10% of the inputs missing. The target is well under 20 us per row for 100 trees.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "predict/event_log.h"
#include "predict/gbdt_model.h"
#include "predict/profile_vector.h"

namespace persona {
namespace {

constexpr int kFeatures = 30;

// An XGBoost 1.7 JSON dump of `trees` full trees of depth `depth`, random splits and leaves.
std::string SyntheticXgboostJson(int trees, int depth, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> feature(0, kFeatures - 1);
  std::normal_distribution<float> value;
  std::bernoulli_distribution coin;
  std::string out = R"({"learner":{"feature_names":[],"gradient_booster":{"model":{"trees":[)";
  const int nodes = (1 << (depth + 1)) - 1;
  const int internal = (1 << depth) - 1;
  for (int t = 0; t < trees; ++t) {
    std::string left, right, split, cond, def;
    for (int i = 0; i < nodes; ++i) {
      const char* sep = i ? "," : "";
      const bool leaf = i >= internal;
      absl::StrAppend(&left, sep, leaf ? -1 : 2 * i + 1);
      absl::StrAppend(&right, sep, leaf ? -1 : 2 * i + 2);
      absl::StrAppend(&split, sep, leaf ? 0 : feature(rng));
      absl::StrAppend(&cond, sep, leaf ? 0.01f * value(rng) : value(rng));
      absl::StrAppend(&def, sep, coin(rng) ? 1 : 0);
    }
    absl::StrAppend(&out, t ? "," : "", R"({"left_children":[)", left, R"(],"right_children":[)",
                    right, R"(],"split_indices":[)", split, R"(],"split_conditions":[)", cond,
                    R"(],"default_left":[)", def, R"(],"tree_param":{"num_nodes":")", nodes,
                    R"("}})");
  }
  absl::StrAppend(&out, R"(],"tree_info":[]},"name":"gbtree"},"learner_model_param":)",
                  R"({"base_score":"5E-1","num_class":"0","num_feature":")", kFeatures,
                  R"("},"objective":{"name":"binary:logistic"}}})");
  return out;
}

void BM_GbdtProbability(benchmark::State& state) {
  const int trees = static_cast<int>(state.range(0));
  auto model = GbdtModel::FromXgboostJson(SyntheticXgboostJson(trees, 6, 1));
  if (!model.ok()) {
    state.SkipWithError(std::string(model.status().message()).c_str());
    return;
  }
  std::mt19937_64 rng(2);
  std::normal_distribution<float> value;
  std::bernoulli_distribution missing(0.1);
  constexpr int kRows = 1024;  // more rows than fit in L1 beside the model, as in serving
  std::vector<float> rows(kRows * kFeatures);
  for (float& v : rows) v = missing(rng) ? NAN : value(rng);
  size_t r = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        model->Probability(std::span<const float>(rows.data() + r * kFeatures, kFeatures)));
    r = (r + 1) % kRows;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GbdtProbability)->Arg(100)->Arg(300);

void BM_GbdtImportJson(benchmark::State& state) {
  const std::string json = SyntheticXgboostJson(100, 6, 1);
  for (auto _ : state) benchmark::DoNotOptimize(GbdtModel::FromXgboostJson(json));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(json.size()));
}
BENCHMARK(BM_GbdtImportJson)->Unit(benchmark::kMillisecond);

// The other half of a live prediction: the feature vector of a real profile (the taobao slice's
// 815 users, ~104 events each) at "now", which the trees then score.
void BM_ProfileVectorExtract(benchmark::State& state) {
  auto log = EventLog::FromFile(std::string(PERSONA_DATASETS) + "/taobao/UserBehavior-by-user.csv",
                                InputFormat::kTaobao);
  if (!log.ok()) {
    state.SkipWithError("taobao slice not found");
    return;
  }
  ProfileConfig config;
  Population population;
  ProfileContext ctx;
  ctx.config = &config;
  ctx.population = &population;
  absl::flat_hash_map<std::string, Profile> profiles;
  for (const Event* e : log->events()) profiles[std::string(e->user_id)].Apply(*e, ctx);
  std::vector<const Profile*> all;
  for (const auto& [user, p] : profiles) all.push_back(&p);
  std::vector<float> features(ProfileVectorNames().size());
  const int64_t now = log->max_ts_ms();
  size_t i = 0;
  for (auto _ : state) {
    ExtractProfileVector(*all[i++ % all.size()], ctx, now, features);
    benchmark::DoNotOptimize(features.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ProfileVectorExtract);

}  // namespace
}  // namespace persona
