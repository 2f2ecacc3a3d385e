// Cost of evaluating compiled rule conditions: the per-profile price of tagging. The source is an
// array behind the VariableSource interface, as a real profile view is, so the numbers include the
// one virtual call per variable read that the design accepts.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "rules/condition.h"
#include "rules/tag_rules.h"

namespace persona {
namespace {

constexpr std::array<std::string_view, 8> kNumberNames = {
    "monetary_30d", "purchases_30d", "views_30d", "orders",
    "rfm_f",        "rfm_r",         "reviews",   "searches_7d"};
constexpr std::array<std::string_view, 2> kStringNames = {"lifecycle", "price_tier"};
constexpr uint32_t kCategoryCallId = 100;

class BenchCatalog : public VariableCatalog {
 public:
  std::optional<VarInfo> Lookup(std::string_view name) const override {
    for (uint32_t i = 0; i < kNumberNames.size(); ++i) {
      if (kNumberNames[i] == name) return VarInfo{i, VarType::kNumber};
    }
    for (uint32_t i = 0; i < kStringNames.size(); ++i) {
      if (kStringNames[i] == name) return VarInfo{50 + i, VarType::kString};
    }
    return std::nullopt;
  }
  std::optional<VarInfo> LookupCall(std::string_view function,
                                    std::string_view arg) const override {
    if (function == "interest.category" && arg == "shoes") {
      return VarInfo{kCategoryCallId, VarType::kNumber};
    }
    return std::nullopt;
  }
};

// A profile whose values make every clause below true, so nothing short-circuits early.
class BenchSource : public VariableSource {
 public:
  double Number(uint32_t id) const override { return id == kCategoryCallId ? 0.6 : numbers_[id]; }
  std::string_view String(uint32_t id) const override { return strings_[id - 50]; }
  bool Bool(uint32_t) const override { return false; }

 private:
  std::array<double, 8> numbers_ = {2500, 4, 80, 3, 5, 5, 4, 12};
  std::array<std::string, 2> strings_ = {"active", "budget"};
};

Condition MustCompile(std::string_view text) {
  absl::StatusOr<Condition> c = Condition::Compile(text, BenchCatalog());
  if (!c.ok()) {
    std::fprintf(stderr, "%s\n", std::string(c.status().message()).c_str());
    std::abort();
  }
  return *std::move(c);
}

void BM_ConditionEvaluateFourClauses(benchmark::State& state) {
  const Condition condition = MustCompile(
      "monetary_30d > 1000 and purchases_30d >= 3 and lifecycle = \"active\" and "
      "interest.category(\"shoes\") > 0.5");
  const BenchSource source;
  for (auto _ : state) benchmark::DoNotOptimize(condition.Evaluate(source));
}
BENCHMARK(BM_ConditionEvaluateFourClauses);

void BM_ConditionEvaluateArithmeticAndList(benchmark::State& state) {
  const Condition condition = MustCompile(
      "monetary_30d / orders > 500 and (rfm_f + rfm_r) / 2 >= 4 and "
      "price_tier in [\"budget\", \"mid\"] and not views_30d < 10");
  const BenchSource source;
  for (auto _ : state) benchmark::DoNotOptimize(condition.Evaluate(source));
}
BENCHMARK(BM_ConditionEvaluateArithmeticAndList);

void BM_TagRulesEvaluateEightRules(benchmark::State& state) {
  auto rules = TagRules::Parse(
      "high_value: monetary_30d > 1000 and purchases_30d >= 3\n"
      "window_shopper: views_30d >= 50 and purchases_30d = 0\n"
      "churn_risk: lifecycle = \"dormant\" and orders >= 2\n"
      "bargain_hunter: price_tier = \"budget\"\n"
      "new_user: lifecycle = \"new\"\n"
      "loyal: rfm_f >= 4 and rfm_r >= 4\n"
      "reviewer: reviews >= 3\n"
      "searcher: searches_7d >= 10\n",
      "bench", BenchCatalog());
  if (!rules.ok()) std::abort();
  const BenchSource source;
  for (auto _ : state) benchmark::DoNotOptimize((*rules)->Evaluate(source));
}
BENCHMARK(BM_TagRulesEvaluateEightRules);

}  // namespace
}  // namespace persona
