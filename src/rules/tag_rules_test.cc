#include "rules/tag_rules.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace persona {
namespace {

using ::testing::ElementsAre;

// The feature names the profile stage documents for rules (a stand-in for ProfileFeatureCatalog,
// which these tests must not depend on).
class DocumentedFeatureCatalog : public VariableCatalog {
 public:
  DocumentedFeatureCatalog() {
    std::vector<std::string> numbers = {"events",
                                        "views",
                                        "clicks",
                                        "searches",
                                        "carts",
                                        "remove_carts",
                                        "favs",
                                        "purchases",
                                        "reviews",
                                        "refunds",
                                        "monetary",
                                        "monetary_30d",
                                        "orders",
                                        "aov",
                                        "refund_amount",
                                        "recency_days",
                                        "days_since_last_seen",
                                        "days_since_first_seen",
                                        "sessions",
                                        "avg_session_minutes",
                                        "avg_session_events",
                                        "cart_rate",
                                        "purchase_rate",
                                        "conversion_rate",
                                        "rfm_r",
                                        "rfm_f",
                                        "rfm_m",
                                        "price_index",
                                        "avg_rating"};
    for (std::string type : {"events", "views", "clicks", "searches", "carts", "remove_carts",
                             "favs", "purchases", "reviews", "refunds"}) {
      for (const char* window : {"_1d", "_7d", "_30d"}) {
        // purchases_30d is listed once whichever way it is spelt.
        if (type + window != "purchases_30d") numbers.push_back(type + window);
      }
    }
    numbers.push_back("purchases_30d");
    for (const std::string& name : numbers) Add(name, VarType::kNumber);
    for (const char* name : {"lifecycle", "price_tier", "top_category", "top_brand"}) {
      Add(name, VarType::kString);
    }
  }
  std::optional<VarInfo> Lookup(std::string_view name) const override {
    auto it = fields_.find(std::string(name));
    if (it == fields_.end()) return std::nullopt;
    return it->second;
  }
  std::optional<VarInfo> LookupCall(std::string_view function,
                                    std::string_view arg) const override {
    if (arg.empty()) return std::nullopt;
    if (function != "interest.category" && function != "interest.brand" &&
        function != "interest.keyword") {
      return std::nullopt;
    }
    std::string key = std::string(function) + "\n" + std::string(arg);
    auto it = calls_.find(key);
    if (it == calls_.end()) {
      it = calls_
               .emplace(key, VarInfo{static_cast<uint32_t>(1000 + calls_.size()), VarType::kNumber})
               .first;
    }
    return it->second;
  }
  std::vector<std::string> Names() const override {
    std::vector<std::string> names;
    for (const auto& [name, info] : fields_) names.push_back(name);
    return names;
  }
  uint32_t Id(const std::string& name) const { return fields_.at(name).id; }

 private:
  void Add(const std::string& name, VarType type) {
    const auto id = static_cast<uint32_t>(fields_.size());
    fields_.emplace(name, VarInfo{id, type});
  }
  std::map<std::string, VarInfo> fields_;
  mutable std::map<std::string, VarInfo> calls_;
};

// A profile by feature name; unset numbers are NaN and unset strings empty.
class NamedSource : public VariableSource {
 public:
  explicit NamedSource(const DocumentedFeatureCatalog& catalog) : catalog_(catalog) {}
  void Set(const std::string& name, double value) { numbers_[catalog_.Id(name)] = value; }
  void Set(const std::string& name, std::string value) { strings_[catalog_.Id(name)] = value; }
  double Number(uint32_t id) const override {
    auto it = numbers_.find(id);
    return it == numbers_.end() ? std::nan("") : it->second;
  }
  std::string_view String(uint32_t id) const override {
    auto it = strings_.find(id);
    return it == strings_.end() ? std::string_view() : std::string_view(it->second);
  }
  bool Bool(uint32_t) const override { return false; }

 private:
  const DocumentedFeatureCatalog& catalog_;
  std::map<uint32_t, double> numbers_;
  std::map<uint32_t, std::string> strings_;
};

class TagRulesTest : public ::testing::Test {
 protected:
  std::string ErrorOf(std::string_view text) {
    auto rules = TagRules::Parse(text, "tags.rules", catalog_);
    if (rules.ok()) return "OK";
    EXPECT_EQ(rules.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(rules.status().message());
  }
  DocumentedFeatureCatalog catalog_;
};

TEST_F(TagRulesTest, RulesTakeBitsInFileOrderSkippingCommentsAndBlankLines) {
  auto rules = TagRules::Parse(
      "# a comment\n"
      "\n"
      "high_value: monetary_30d > 1000   # trailing comment\n"
      "   \t\n"
      "  new_user :lifecycle = \"new\"\n"
      "reviewer: reviews >= 3\n",
      "tags.rules", catalog_);
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_THAT((*rules)->names(), ElementsAre("high_value", "new_user", "reviewer"));
  EXPECT_EQ((*rules)->size(), 3u);
  EXPECT_EQ((*rules)->condition(0).text(), "monetary_30d > 1000");
  EXPECT_EQ((*rules)->condition(1).text(), "lifecycle = \"new\"");
  EXPECT_EQ((*rules)->IndexOf("reviewer"), 2u);
  EXPECT_EQ((*rules)->IndexOf("nope"), std::nullopt);

  NamedSource profile(catalog_);
  profile.Set("monetary_30d", 5000.0);
  profile.Set("lifecycle", std::string("active"));
  profile.Set("reviews", 4.0);
  EXPECT_EQ((*rules)->Evaluate(profile), 0b101u);
  profile.Set("lifecycle", std::string("new"));
  profile.Set("monetary_30d", 10.0);
  EXPECT_EQ((*rules)->Evaluate(profile), 0b110u);
}

TEST_F(TagRulesTest, HashInsideAStringIsNotAComment) {
  auto rules = TagRules::Parse("hashtag: top_brand = \"#1 \\\"best\\\"\" # real comment\n",
                               "tags.rules", catalog_);
  ASSERT_TRUE(rules.ok()) << rules.status();
  NamedSource profile(catalog_);
  profile.Set("top_brand", std::string("#1 \"best\""));
  EXPECT_EQ((*rules)->Evaluate(profile), 1u);
}

TEST_F(TagRulesTest, AcceptsWindowsLineEndingsAndAMissingFinalNewline) {
  auto rules = TagRules::Parse("a: reviews > 1\r\nb: reviews > 2\r\nc: reviews > 3", "x", catalog_);
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_THAT((*rules)->names(), ElementsAre("a", "b", "c"));
  NamedSource profile(catalog_);
  profile.Set("reviews", 2.5);
  EXPECT_EQ((*rules)->Evaluate(profile), 0b011u);
}

TEST_F(TagRulesTest, EmptyTextGivesNoRules) {
  auto rules = TagRules::Parse("# nothing yet\n\n", "tags.rules", catalog_);
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_EQ((*rules)->size(), 0u);
  EXPECT_EQ((*rules)->Evaluate(NamedSource(catalog_)), 0u);
}

TEST_F(TagRulesTest, ConditionErrorsNameOriginLineAndColumnInTheFile) {
  EXPECT_EQ(ErrorOf("ok: reviews > 1\n\nhigh_value: monetery_30d > 1000\n"),
            "tags.rules:3:13: unknown field 'monetery_30d' (did you mean 'monetary_30d'?)");
  EXPECT_EQ(ErrorOf("  x:   reviews > and"),
            "tags.rules:1:18: expected a number, a string, a name or '(' but found 'and'");
  EXPECT_EQ(ErrorOf("empty:\n"),
            "tags.rules:1:7: expected a number, a string, a name or '(' but found end of input");
  EXPECT_EQ(ErrorOf("shoes: interest.category(\"shoes\") > 0.2 and top_brand > 1"),
            "tags.rules:1:45: expected a number before '>' but found a string");
}

TEST_F(TagRulesTest, RuleLineErrorsNameOriginLineAndColumn) {
  EXPECT_EQ(ErrorOf("a: reviews > 1\nreviews > 1\n"),
            "tags.rules:2:1: expected 'name: condition' but found no ':'");
  EXPECT_EQ(ErrorOf("  : reviews > 1"), "tags.rules:1:3: expected a rule name before ':'");
  EXPECT_EQ(ErrorOf("High_value: reviews > 1"),
            "tags.rules:1:1: rule name 'High_value' may contain only lowercase letters a-z, "
            "digits and '_'");
  EXPECT_EQ(ErrorOf("big spender: reviews > 1"),
            "tags.rules:1:4: rule name 'big spender' may contain only lowercase letters a-z, "
            "digits and '_'");
  EXPECT_EQ(ErrorOf("a: reviews > 1\nb: reviews > 2\n# c\n  a: reviews > 3\n"),
            "tags.rules:4:3: duplicate rule name 'a' (first defined on line 1)");
}

std::string ManyRules(int count) {
  std::string text;
  for (int i = 0; i < count; ++i) {
    text += "r" + std::to_string(i) + ": reviews >= " + std::to_string(i) + "\n";
  }
  return text;
}

TEST_F(TagRulesTest, SixtyFourRulesFillEveryBit) {
  auto rules = TagRules::Parse(ManyRules(64), "tags.rules", catalog_);
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_EQ((*rules)->size(), 64u);
  NamedSource profile(catalog_);
  profile.Set("reviews", 100.0);
  EXPECT_EQ((*rules)->Evaluate(profile), ~uint64_t{0});
  profile.Set("reviews", 63.0);
  EXPECT_EQ((*rules)->Evaluate(profile), ~uint64_t{0});
  profile.Set("reviews", 62.0);
  EXPECT_EQ((*rules)->Evaluate(profile), ~uint64_t{0} >> 1);
}

TEST_F(TagRulesTest, SixtyFifthRuleIsRejected) {
  EXPECT_EQ(ErrorOf(ManyRules(65)),
            "tags.rules:65:1: too many rules: at most 64 (one bit each in the profile's tag bits)");
}

TEST_F(TagRulesTest, ReloadBuildsANewObjectAndLeavesTheOldOneUntouched) {
  auto old_rules = TagRules::Parse("buyer: purchases > 0\n", "v1", catalog_);
  ASSERT_TRUE(old_rules.ok()) << old_rules.status();
  std::shared_ptr<const TagRules> in_use = *old_rules;

  auto new_rules = TagRules::Parse("reviewer: reviews > 0\nbuyer: purchases > 0\n", "v2", catalog_);
  ASSERT_TRUE(new_rules.ok()) << new_rules.status();
  auto broken = TagRules::Parse("buyer: purchases >\n", "v3", catalog_);
  EXPECT_FALSE(broken.ok());

  NamedSource profile(catalog_);
  profile.Set("purchases", 1.0);
  profile.Set("reviews", 1.0);
  EXPECT_NE(in_use.get(), new_rules->get());
  EXPECT_THAT(in_use->names(), ElementsAre("buyer"));
  EXPECT_EQ(in_use->Evaluate(profile), 0b1u);
  EXPECT_THAT((*new_rules)->names(), ElementsAre("reviewer", "buyer"));
  EXPECT_EQ((*new_rules)->Evaluate(profile), 0b11u);
}

TEST_F(TagRulesTest, VariablesAreTheUnionOverAllRules) {
  auto rules =
      TagRules::Parse("a: reviews > 1 and lifecycle = \"new\"\nb: reviews < 5\n", "x", catalog_);
  ASSERT_TRUE(rules.ok()) << rules.status();
  std::vector<uint32_t> expected = {catalog_.Id("reviews"), catalog_.Id("lifecycle")};
  std::sort(expected.begin(), expected.end());
  EXPECT_THAT((*rules)->variables(), ::testing::ElementsAreArray(expected));
}

TEST_F(TagRulesTest, LoadFileReadsAFileAndNamesItInErrors) {
  const std::string path =
      ::testing::TempDir() + "tag_rules_test_" + std::to_string(::getpid()) + ".rules";
  {
    std::ofstream out(path);
    out << "ok: reviews > 1\nbad: reviewz > 1\n";
  }
  auto rules = TagRules::LoadFile(path, catalog_);
  ASSERT_FALSE(rules.ok());
  EXPECT_EQ(std::string(rules.status().message()),
            path + ":2:6: unknown field 'reviewz' (did you mean 'reviews'?)");
  {
    std::ofstream out(path);
    out << "ok: reviews > 1\n";
  }
  rules = TagRules::LoadFile(path, catalog_);
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_EQ((*rules)->size(), 1u);
  std::filesystem::remove(path);
  rules = TagRules::LoadFile(path, catalog_);
  EXPECT_EQ(rules.status().code(), absl::StatusCode::kNotFound);
}

// config/tags.rules is the documented example: it must compile against the documented feature
// names and tag a typical profile as its comments say.
TEST_F(TagRulesTest, ExampleRulesFileCompilesAgainstTheDocumentedFeatures) {
  const std::filesystem::path path =
      std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "config" /
      "tags.rules";
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " is part of the repository";
  auto rules = TagRules::LoadFile(path.string(), catalog_);
  ASSERT_TRUE(rules.ok()) << rules.status();
  const TagRules& r = **rules;
  EXPECT_GE(r.size(), 8u);

  NamedSource big_spender(catalog_);
  big_spender.Set("monetary_30d", 2500.0);
  big_spender.Set("purchases_30d", 4.0);
  big_spender.Set("lifecycle", std::string("active"));
  big_spender.Set("rfm_f", 5.0);
  big_spender.Set("rfm_r", 4.0);
  const uint64_t bits = r.Evaluate(big_spender);
  EXPECT_TRUE(bits & (uint64_t{1} << *r.IndexOf("high_value")));
  EXPECT_TRUE(bits & (uint64_t{1} << *r.IndexOf("loyal")));
  EXPECT_FALSE(bits & (uint64_t{1} << *r.IndexOf("window_shopper")));
  EXPECT_FALSE(bits & (uint64_t{1} << *r.IndexOf("churn_risk")));

  NamedSource browser(catalog_);
  browser.Set("views_30d", 80.0);
  browser.Set("purchases_30d", 0.0);
  browser.Set("lifecycle", std::string("new"));
  const uint64_t browser_bits = r.Evaluate(browser);
  EXPECT_TRUE(browser_bits & (uint64_t{1} << *r.IndexOf("window_shopper")));
  EXPECT_TRUE(browser_bits & (uint64_t{1} << *r.IndexOf("new_user")));
  EXPECT_FALSE(browser_bits & (uint64_t{1} << *r.IndexOf("high_value")));
}

}  // namespace
}  // namespace persona
