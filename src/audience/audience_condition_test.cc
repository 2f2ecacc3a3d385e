// The audience language: precise parse errors, every added name and function answering as
// documented, MatchAll agreeing with one Matches per condition, and export fields.
#include "audience/audience_condition.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "common/time_util.h"
#include "gtest/gtest.h"
#include "profile/testing/profile_test_events.h"

namespace persona {
namespace {

using testing::OwnedEvent;

constexpr int64_t kT0 = 1511740800000;  // 2017-11-27T00:00:00Z

std::string CompileError(std::string_view text) {
  absl::StatusOr<AudienceCondition> c = AudienceCondition::Compile(text);
  if (c.ok()) return "compiled";
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(c.status().message());
}

TEST(AudienceConditionErrorsTest, MessagesNamePositionAndExpectation) {
  EXPECT_EQ(CompileError("rfm.monetery_30d >= 500"),
            "column 1: unknown field 'rfm.monetery_30d' (did you mean 'rfm.monetary_30d'?)");
  EXPECT_EQ(CompileError("orders > 1 and rfm.monetary_30 >= 500"),
            "column 16: unknown field 'rfm.monetary_30' (did you mean 'rfm.monetary_30d'?)");
  EXPECT_EQ(CompileError("rfm.monetary_30d >= and orders > 1"),
            "column 21: expected a number, a string, a name or '(' but found 'and'");
  EXPECT_EQ(CompileError("segment ="),
            "column 10: expected a number, a string, a name or '(' but found end of input");
  EXPECT_EQ(CompileError("lifecycle > 3"),
            "column 1: expected a number before '>' but found a string");
  EXPECT_EQ(CompileError("attribute(\"city\") = 3"),
            "column 21: expected a string after '=' but found a number");
  EXPECT_EQ(CompileError("(orders > 1 or anomalous"),
            "column 25: expected ')' to close the '(' at column 1 but found end of input");
  EXPECT_EQ(CompileError("interests.category(\"c1\") > 0.3"),
            "column 1: unknown function 'interests.category' (did you mean 'interest.category'?)");
  EXPECT_EQ(CompileError("tags(\"bot\")"),
            "column 1: unknown function 'tags' (did you mean 'tag'?)");
  EXPECT_EQ(CompileError("tag"),
            "column 1: 'tag' is a function; call it with a string, e.g. tag(\"x\")");
  EXPECT_EQ(CompileError("predictions.churn"),
            "column 1: expected a condition that is true or false but found a number");
}

TEST(AudienceConditionErrorsTest, IssueExampleCompilesAndReportsWhatItReads) {
  absl::StatusOr<AudienceCondition> c = AudienceCondition::Compile(
      "interest.category(\"electronics.audio\") > 0.3 and rfm.monetary_30d >= 500 and "
      "lifecycle = \"dormant\" and predictions.churn > 0.7 and not tag(\"bot\")");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->uses_predictions());
  EXPECT_TRUE(c->uses_time());

  absl::StatusOr<AudienceCondition> plain =
      AudienceCondition::Compile("purchases >= 1 and monetary > 100 and tag(\"vip\")");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->uses_predictions());
  EXPECT_FALSE(plain->uses_time());
  for (std::string_view timed :
       {"views_7d > 1", "recency_days < 3", "lifecycle = \"new\"", "rfm.r >= 4",
        "days_since_first_seen > 2", "predictions.segment = 1"}) {
    absl::StatusOr<AudienceCondition> t = AudienceCondition::Compile(timed);
    ASSERT_TRUE(t.ok()) << timed;
    EXPECT_TRUE(t->uses_time()) << timed;
  }
}

class AudienceConditionTest : public ::testing::Test {
 protected:
  AudienceConditionTest() {
    ctx_.config = &config_;
    ctx_.population = &population_;
  }
  void Apply(Profile& p, EventType type, int64_t ts, std::string category, double price = NAN,
             std::string brand = "") {
    OwnedEvent e;
    e.user = "u";
    e.type = type;
    e.ts_ms = ts;
    e.item = "item_" + category;
    e.category = std::move(category);
    e.brand = std::move(brand);
    e.price = price;
    if (type == EventType::kPurchase) {
      e.quantity = 1;
      e.order = "o" + std::to_string(ts);
    }
    if (type == EventType::kSearch) e.query = "wireless earbuds";
    p.Apply(e.view(), ctx_);
  }
  bool Matches(std::string_view text, const Profile& p) {
    absl::StatusOr<AudienceCondition> c = AudienceCondition::Compile(text);
    EXPECT_TRUE(c.ok()) << text << ": " << c.status();
    if (!c.ok()) return false;
    const bool uncached = c->Matches(p, ctx_, now_, env_);
    AudienceEvalCache cache;
    const AudienceCondition* one[] = {&*c};
    EXPECT_EQ(MatchAll(one, p, ctx_, now_, env_, &cache), uncached ? 1u : 0u) << text;
    return uncached;
  }

  ProfileConfig config_;
  Population population_;
  ProfileContext ctx_;
  AudienceEnv env_;
  int64_t now_ = kT0 + 12 * kHourMs;
};

TEST_F(AudienceConditionTest, RfmAliasesAnswerLikeTheProfileNames) {
  Profile p;
  Apply(p, EventType::kView, kT0, "electronics.audio", 100);
  Apply(p, EventType::kPurchase, kT0 + kHourMs, "electronics.audio", 600);
  EXPECT_TRUE(Matches("rfm.monetary_30d >= 500 and rfm.monetary = monetary", p));
  EXPECT_TRUE(Matches("rfm.orders = 1 and rfm.aov = 600 and rfm.monetary_1d = 600", p));
  EXPECT_TRUE(Matches("rfm.recency_days = recency_days and rfm.r = rfm_r and rfm.f = rfm_f", p));
  EXPECT_TRUE(Matches("rfm.m = rfm_m and rfm.monetary_7d = monetary_7d", p));
  EXPECT_FALSE(Matches("rfm.monetary_30d > 600", p));
}

TEST_F(AudienceConditionTest, WindowsAgreeWithProfileFeaturesForLapsedAndRecentUsers) {
  // Windows of a user whose last active day is older than the window are answered without the
  // day buckets; every combination must still equal the profile's own window sums.
  for (int last_days_ago = 0; last_days_ago <= 45; last_days_ago += 3) {
    Profile p;
    if (last_days_ago % 2 == 0) {  // half the users never bought: all-time totals of 0
      Apply(p, EventType::kPurchase, now_ - (last_days_ago + 2) * kDayMs, "c1", 40);
    }
    Apply(p, EventType::kView, now_ - last_days_ago * kDayMs, "c1");
    const AudienceEnv env;
    AudienceSource source(p, ctx_, now_, env);
    ProfileFeatures features(p, ctx_, now_);
    for (std::string_view name :
         {"views_1d", "views_7d", "views_30d", "purchases_7d", "purchases_30d", "events_30d",
          "monetary_7d", "monetary_30d", "rfm.monetary_30d"}) {
      const VarInfo info = *AudienceCatalog().Lookup(name);
      EXPECT_EQ(source.Number(info.id), features.Number(info.id))
          << name << " " << last_days_ago << " days ago";
    }
  }
}

TEST_F(AudienceConditionTest, SegmentSatisfactionAndAnomalyNames) {
  Profile p;
  Apply(p, EventType::kView, kT0, "books");
  EXPECT_TRUE(Matches("segment = -1", p));
  EXPECT_FALSE(Matches("satisfaction >= 0 or satisfaction < 0", p));  // NaN: nothing holds
  EXPECT_FALSE(Matches("anomalous", p));
  p.set_segment(3);
  p.AddReviewSentiment(0.8, "books", ctx_);
  p.set_anomaly_flags(kAnomalyViewBurst);
  EXPECT_TRUE(Matches("segment = 3 and satisfaction > 0.79 and satisfaction < 0.81", p));
  EXPECT_TRUE(Matches("anomalous and tag(\"view_burst\") and tag(\"bot\")", p));
  EXPECT_FALSE(Matches("tag(\"high_rate\") or tag(\"cart_churn\") or tag(\"regular_timing\")", p));
}

TEST_F(AudienceConditionTest, PredictionsWithoutAPredictorAreUndefined) {
  Profile p;
  Apply(p, EventType::kView, kT0, "books");
  EXPECT_FALSE(Matches("predictions.churn > 0.7 or predictions.churn <= 0.7", p));
  EXPECT_FALSE(Matches("predictions.propensity >= 0", p));
  EXPECT_TRUE(Matches("predictions.segment = -1", p));
}

TEST_F(AudienceConditionTest, TagsComeFromTheEnvRulesAndUnknownTagsAreFalse) {
  absl::StatusOr<std::shared_ptr<const TagRules>> rules = TagRules::Parse(
      "vip: monetary > 1000\nbrowser: views > 0\n", "test", ProfileFeatureCatalog());
  ASSERT_TRUE(rules.ok()) << rules.status();
  Profile p;
  Apply(p, EventType::kView, kT0, "books");
  p.tag_bits = 0b10;                             // "browser" fired, "vip" did not
  EXPECT_FALSE(Matches("tag(\"browser\")", p));  // no rules in the env yet
  env_.tags = *rules;
  EXPECT_TRUE(Matches("tag(\"browser\") and not tag(\"vip\")", p));
  EXPECT_FALSE(Matches("tag(\"no_such_rule\")", p));
  EXPECT_FALSE(Matches("tag(\"bot\")", p));

  // A cache resolved against one rule set re-resolves when the env's rules change.
  AudienceEvalCache cache;
  absl::StatusOr<AudienceCondition> c = AudienceCondition::Compile("tag(\"browser\")");
  ASSERT_TRUE(c.ok());
  const AudienceCondition* one[] = {&*c};
  EXPECT_EQ(MatchAll(one, p, ctx_, now_, env_, &cache), 1u);
  env_.tags = *TagRules::Parse("browser: views > 0\nvip: monetary > 1000\n", "test",
                               ProfileFeatureCatalog());
  EXPECT_EQ(MatchAll(one, p, ctx_, now_, env_, &cache), 0u);  // bit 0 is "browser" now
}

TEST_F(AudienceConditionTest, AttributesAreStringsOrJsonText) {
  Profile p;
  Apply(p, EventType::kView, kT0, "books");
  EXPECT_TRUE(Matches("attribute(\"city\") = \"\"", p));
  ASSERT_TRUE(
      p.SetAttributes(
           R"({"city":"Paris \"15e\"","age":34,"vip":true,"tags":["a","b"],"x":{"k":1}})", false)
          .ok());
  EXPECT_TRUE(Matches("attribute(\"city\") = \"Paris \\\"15e\\\"\"", p));
  EXPECT_TRUE(Matches("attribute(\"age\") = \"34\" and attribute(\"vip\") = \"true\"", p));
  EXPECT_TRUE(Matches("attribute(\"tags\") = \"[\\\"a\\\",\\\"b\\\"]\"", p));
  EXPECT_TRUE(Matches("attribute(\"x\") = \"{\\\"k\\\":1}\"", p));
  EXPECT_TRUE(Matches("attribute(\"missing\") = \"\" and attribute(\"CITY\") = \"\"", p));
  EXPECT_TRUE(Matches("attribute(\"age\") in [\"33\", \"34\"]", p));
}

TEST_F(AudienceConditionTest, InterestSharesWithAndWithoutTheLearntCodeCache) {
  Profile audio, books, none;
  Apply(audio, EventType::kView, kT0, "electronics.audio");
  Apply(audio, EventType::kView, kT0, "books.fiction");
  Apply(books, EventType::kView, kT0, "books.fiction");
  Apply(none, EventType::kSearch, kT0, "");
  absl::StatusOr<AudienceCondition> c =
      AudienceCondition::Compile("interest.category(\"electronics\") > 0.4");
  ASSERT_TRUE(c.ok());
  AudienceEvalCache cache;
  const AudienceCondition* one[] = {&*c};
  // Books first: the cache has not learnt the code yet and must not conclude "absent".
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(MatchAll(one, books, ctx_, now_, env_, &cache), 0u);
    EXPECT_EQ(MatchAll(one, none, ctx_, now_, env_, &cache), 0u);
    EXPECT_EQ(MatchAll(one, audio, ctx_, now_, env_, &cache), 1u);
  }
  EXPECT_TRUE(Matches("interest.category(\"books\") = 1", books));
  EXPECT_TRUE(Matches("interest.keyword(\"earbuds\") = 1 and interest.brand(\"x\") = 0", none));
  EXPECT_TRUE(Matches("interest.item(\"item_books.fiction\") = 0.5", audio));
}

// A random condition over a mix of cheap, windowed, string, call and constant terms.
std::string RandomCondition(std::mt19937& rng) {
  static const std::vector<std::string> kAtoms = {
      "purchases >= 1",
      "monetary > 100",
      "rfm.monetary_30d >= 50",
      "views_7d > 2",
      "lifecycle = \"active\"",
      "lifecycle in [\"new\", \"dormant\"]",
      "interest.category(\"c1\") > 0.3",
      "interest.category(\"c2.c2_1\") > 0.1",
      "not tag(\"bot\")",
      "tag(\"browser\")",
      "top_category = \"c1.c1_2\"",
      "aov > 20",
      "satisfaction > 0.5",
      "segment = 2",
      "attribute(\"city\") = \"Lyon\"",
      "price_tier != \"\"",
      "(views + carts) / 2 > 1",
      "buyer",
      "anomalous",
      "rfm.r >= 3",
      "recency_days < 5",
  };
  std::uniform_int_distribution<size_t> pick(0, kAtoms.size() - 1);
  std::string out = kAtoms[pick(rng)];
  const int terms = std::uniform_int_distribution<int>(0, 3)(rng);
  for (int t = 0; t < terms; ++t) {
    out += rng() % 2 ? " and " : " or ";
    if (rng() % 4 == 0) out += "not ";
    out += kAtoms[pick(rng)];
  }
  return out;
}

TEST_F(AudienceConditionTest, MatchAllAndReorderedConjunctionsEqualTheWrittenProgram) {
  std::mt19937 rng(7);
  env_.tags = *TagRules::Parse("browser: views > 1\n", "test", ProfileFeatureCatalog());
  std::vector<Profile> profiles(60);
  for (size_t u = 0; u < profiles.size(); ++u) {
    Profile& p = profiles[u];
    const int events = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < events; ++i) {
      const std::string category = "c" + std::to_string(1 + rng() % 3) + ".c" +
                                   std::to_string(1 + rng() % 3) + "_" +
                                   std::to_string(1 + rng() % 2);
      const EventType type = static_cast<EventType>(rng() % 7);
      Apply(p, type, kT0 - static_cast<int64_t>(rng() % 20) * kDayMs, category,
            10 + static_cast<double>(rng() % 300));
    }
    p.tag_bits = rng() % 2;
    if (rng() % 5 == 0) p.set_anomaly_flags(kAnomalyHighRate);
    if (rng() % 3 == 0) p.set_segment(static_cast<int16_t>(rng() % 4));
    if (rng() % 2 == 0) {
      ASSERT_TRUE(p.SetAttributes(R"({"city":"Lyon"})", false).ok());
    }
  }
  std::vector<AudienceCondition> conditions;
  // The plain compiled programs, evaluated in written order: AudienceCondition reorders the
  // operands of a conjunction by cost, which must not change any result.
  std::vector<Condition> programs;
  std::vector<std::string> texts = {
      "lifecycle = \"active\" AND (views > 1 or carts > 0) && not tag(\"bot\")",
      "attribute(\"city\") = \"Lyon and Paris\" or interest.category(\"c1\") > 0.2",
      "attribute(\"android\") = \"\" and orders >= 0 and top_brand = \"\"",
      "interest.category(\"c2\") > 0.1 and buyer and views_7d >= 1 and segment in [1, 2]",
      "(purchases >= 1 and monetary > 100) or (views_30d > 2 and not buyer)",
  };
  while (texts.size() < 64) texts.push_back(RandomCondition(rng));
  for (const std::string& text : texts) {
    absl::StatusOr<AudienceCondition> c = AudienceCondition::Compile(text);
    ASSERT_TRUE(c.ok()) << text << ": " << c.status();
    conditions.push_back(*std::move(c));
    programs.push_back(*Condition::Compile(text, AudienceCatalog()));
  }
  std::vector<const AudienceCondition*> pointers;
  for (const AudienceCondition& c : conditions) pointers.push_back(&c);
  AudienceEvalCache cache;
  uint64_t any = 0;
  for (const Profile& p : profiles) {
    uint64_t expected = 0;
    for (size_t i = 0; i < conditions.size(); ++i) {
      const bool written_order = programs[i].Evaluate(AudienceSource(p, ctx_, now_, env_));
      EXPECT_EQ(conditions[i].Matches(p, ctx_, now_, env_), written_order) << texts[i];
      if (written_order) expected |= uint64_t{1} << i;
    }
    EXPECT_EQ(MatchAll(pointers, p, ctx_, now_, env_), expected);
    EXPECT_EQ(MatchAll(pointers, p, ctx_, now_, env_, &cache), expected);
    any |= expected;
  }
  // The random conditions must actually discriminate, or the comparison proves little.
  EXPECT_GT(std::popcount(any), 40);
}

// Answers every number 0, every string "" and every boolean false, and logs what was read.
class ReadLog : public VariableSource {
 public:
  double Number(uint32_t id) const override {
    ids.push_back(id);
    return 0;
  }
  std::string_view String(uint32_t id) const override {
    ids.push_back(id);
    return {};
  }
  bool Bool(uint32_t id) const override {
    ids.push_back(id);
    return false;
  }
  mutable std::vector<uint32_t> ids;
};

uint32_t IdOf(std::string_view name) { return AudienceCatalog().Lookup(name)->id; }

TEST(AudienceConditionOrderTest, CheapConjunctsAreEvaluatedBeforeDearOnes) {
  // Written dearest first, with a string literal that holds " and " and " or ": the compiled
  // tree has three operands, and a plain field of the profile decides before the model score or
  // the attribute (which parses JSON) is read.
  absl::StatusOr<AudienceCondition> c = AudienceCondition::Compile(
      "predictions.churn > 0.5 and attribute(\"note\") = \"a and b or c\" and orders > 10");
  ASSERT_TRUE(c.ok()) << c.status();
  ReadLog log;
  EXPECT_FALSE(c->Evaluate(log));
  EXPECT_EQ(log.ids, std::vector<uint32_t>{IdOf("orders")});

  // Nested conjunctions are ordered too: inside the parentheses, orders before the model score.
  c = AudienceCondition::Compile(
      "anomalous or (predictions.propensity > 0.5 and monetary_30d >= 0 && orders > 10)");
  ASSERT_TRUE(c.ok()) << c.status();
  log.ids.clear();
  EXPECT_FALSE(c->Evaluate(log));
  EXPECT_EQ(log.ids, (std::vector<uint32_t>{IdOf("anomalous"), IdOf("orders")}));
}

TEST_F(AudienceConditionTest, ManyDistinctVariablesOverflowTheMemoCorrectly) {
  // More distinct ids than the memo holds: the rest are computed directly, with the same result.
  Profile p;
  Apply(p, EventType::kView, kT0, "c1");
  std::string text = "views = 1";
  for (int i = 0; i < 70; ++i) text += " and interest.category(\"k" + std::to_string(i) + "\") = 0";
  EXPECT_TRUE(Matches(text, p));
  EXPECT_FALSE(Matches(text + " and views = 2", p));
}

TEST_F(AudienceConditionTest, FieldsParseAndRenderAsCsvAndJson) {
  Profile p;
  Apply(p, EventType::kPurchase, kT0, "c1.c1_2", 19.5);
  ASSERT_TRUE(p.SetAttributes(R"({"city":"Saint-Denis, \"93\""})", false).ok());
  std::vector<std::string> names = {"monetary",  "attribute(\"city\")",       "aov",
                                    "buyer",     "interest.category(\"c1\")", "satisfaction",
                                    "rfm.orders"};
  absl::StatusOr<std::vector<AudienceField>> fields = AudienceField::ParseAll(names);
  ASSERT_TRUE(fields.ok()) << fields.status();
  AudienceSource source(p, ctx_, now_, env_);
  std::string csv;
  JsonWriter w;
  w.BeginArray();
  for (const AudienceField& f : *fields) {
    const AudienceValue v = f.Value(source);
    if (!csv.empty()) csv += ',';
    AudienceField::AppendCsv(csv, v);
    AudienceField::Write(w, v);
  }
  w.EndArray();
  EXPECT_EQ(csv, "19.5,\"Saint-Denis, \"\"93\"\"\",19.5,true,1,,1");
  EXPECT_EQ(w.str(), R"([19.5,"Saint-Denis, \"93\"",19.5,true,1,null,1])");

  absl::StatusOr<AudienceField> bad = AudienceField::Parse("monetery");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "unknown field 'monetery' (did you mean 'monetary'?)");
  EXPECT_EQ(AudienceField::Parse("attribute(city)").status().message(),
            "unknown field 'attribute(city)'");
  EXPECT_EQ(AudienceField::Parse("tag").status().message(),
            "'tag' is a function; call it with a string, e.g. tag(\"x\")");
  EXPECT_FALSE(AudienceField::Parse("").ok());
  EXPECT_TRUE(AudienceField::Parse("tag(\"bot\")").ok());
}

TEST(AudienceCatalogTest, FieldListCoversEveryPlainNameWithATypeAndDescription) {
  const std::vector<AudienceFieldInfo>& fields = AudienceFieldList();
  std::vector<std::string> listed;
  for (const AudienceFieldInfo& f : fields) {
    std::optional<VarInfo> info = AudienceCatalog().Lookup(f.name);
    ASSERT_TRUE(info.has_value()) << f.name;
    EXPECT_EQ(info->type, f.type) << f.name;
    EXPECT_FALSE(f.description.empty()) << f.name;
    EXPECT_FALSE(f.group.empty()) << f.name;
    listed.push_back(f.name);
  }
  for (const std::string& name : AudienceCatalog().Names()) {
    if (AudienceCatalog().Lookup(name)) {
      EXPECT_NE(std::find(listed.begin(), listed.end(), name), listed.end()) << name;
    }
  }
  for (const AudienceFunctionInfo& f : AudienceFunctionList()) {
    EXPECT_TRUE(AudienceCatalog().LookupCall(f.name, "x").has_value()) << f.name;
  }
}

}  // namespace
}  // namespace persona
