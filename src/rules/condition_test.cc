#include "rules/condition.h"

#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace persona {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A catalog of a few profile-like features plus interest.category("x") / interest.brand("x")
// calls whose ids are assigned from a fixed table.
class FakeCatalog : public VariableCatalog {
 public:
  FakeCatalog() {
    Add("monetary_30d", VarType::kNumber);   // 0
    Add("purchases_30d", VarType::kNumber);  // 1
    Add("views_30d", VarType::kNumber);      // 2
    Add("lifecycle", VarType::kString);      // 3
    Add("price_tier", VarType::kString);     // 4
    Add("is_bot", VarType::kBool);           // 5
    Add("rfm.monetary", VarType::kNumber);   // 6
    Add("avg_rating", VarType::kNumber);     // 7
    Add("top_category", VarType::kString);   // 8
    calls_[{"interest.category", "shoes"}] = {20, VarType::kNumber};
    calls_[{"interest.category", "books"}] = {21, VarType::kNumber};
    calls_[{"tag", "bot"}] = {22, VarType::kBool};
  }
  std::optional<VarInfo> Lookup(std::string_view name) const override {
    auto it = fields_.find(std::string(name));
    if (it == fields_.end()) return std::nullopt;
    return it->second;
  }
  std::optional<VarInfo> LookupCall(std::string_view function,
                                    std::string_view arg) const override {
    auto it = calls_.find({std::string(function), std::string(arg)});
    if (it == calls_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<std::string> Names() const override {
    std::vector<std::string> names;
    for (const auto& [name, info] : fields_) names.push_back(name);
    names.push_back("interest.category");
    names.push_back("tag");
    return names;
  }

 private:
  void Add(std::string name, VarType type) {
    const auto id = static_cast<uint32_t>(fields_.size());
    fields_.emplace(std::move(name), VarInfo{id, type});
  }
  std::map<std::string, VarInfo> fields_;
  std::map<std::pair<std::string, std::string>, VarInfo> calls_;
};

// Values by id; unset numbers are NaN, unset strings empty, unset booleans false. Counts and logs
// reads so that tests can prove short-circuiting and evaluation order.
class FakeSource : public VariableSource {
 public:
  double Number(uint32_t id) const override {
    ++reads;
    read_ids.push_back(id);
    auto it = numbers.find(id);
    return it == numbers.end() ? kNaN : it->second;
  }
  std::string_view String(uint32_t id) const override {
    ++reads;
    read_ids.push_back(id);
    auto it = strings.find(id);
    return it == strings.end() ? std::string_view() : std::string_view(it->second);
  }
  bool Bool(uint32_t id) const override {
    ++reads;
    read_ids.push_back(id);
    auto it = bools.find(id);
    return it != bools.end() && it->second;
  }
  std::map<uint32_t, double> numbers;
  std::map<uint32_t, std::string> strings;
  std::map<uint32_t, bool> bools;
  mutable int reads = 0;
  mutable std::vector<uint32_t> read_ids;
};

class ConditionTest : public ::testing::Test {
 protected:
  ConditionTest() {
    source_.numbers = {{0, 1500}, {1, 3}, {2, 60}, {6, 42}, {20, 0.8}, {21, 0.1}};
    source_.strings = {{3, "active"}, {4, "budget"}, {8, "electronics.audio"}};
    source_.bools = {{5, false}, {22, true}};
  }
  // Compiles `text` (failing the test on error) and evaluates it against source_.
  bool Eval(std::string_view text) {
    absl::StatusOr<Condition> c = Condition::Compile(text, catalog_);
    EXPECT_TRUE(c.ok()) << text << ": " << c.status();
    return c.ok() && c->Evaluate(source_);
  }
  // The error message of compiling `text`, or "OK" when it compiles.
  std::string ErrorOf(std::string_view text) {
    absl::StatusOr<Condition> c = Condition::Compile(text, catalog_);
    if (c.ok()) return "OK";
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(c.status().message());
  }
  FakeCatalog catalog_;
  FakeSource source_;
};

TEST_F(ConditionTest, ComparesNumberFieldsWithEveryOperator) {
  EXPECT_TRUE(Eval("monetary_30d > 1000"));
  EXPECT_FALSE(Eval("monetary_30d > 1500"));
  EXPECT_TRUE(Eval("monetary_30d >= 1500"));
  EXPECT_TRUE(Eval("purchases_30d < 4"));
  EXPECT_TRUE(Eval("purchases_30d <= 3"));
  EXPECT_TRUE(Eval("purchases_30d = 3"));
  EXPECT_TRUE(Eval("purchases_30d == 3"));
  EXPECT_FALSE(Eval("purchases_30d != 3"));
  // Constant on the left is mirrored, not misread.
  EXPECT_TRUE(Eval("1000 < monetary_30d"));
  EXPECT_FALSE(Eval("2000 <= monetary_30d"));
  EXPECT_TRUE(Eval("monetary_30d > purchases_30d"));
}

TEST_F(ConditionTest, ComparesStringsAndBooleansForEquality) {
  EXPECT_TRUE(Eval("lifecycle = \"active\""));
  EXPECT_TRUE(Eval("\"active\" == lifecycle"));
  EXPECT_FALSE(Eval("lifecycle != \"active\""));
  EXPECT_TRUE(Eval("lifecycle != price_tier"));
  EXPECT_TRUE(Eval("\"a\" = \"a\""));
  EXPECT_TRUE(Eval("is_bot = false"));
  EXPECT_FALSE(Eval("is_bot != false"));
  EXPECT_TRUE(Eval("lifecycle = \"say \\\"hi\\\"\" or true"));
}

TEST_F(ConditionTest, NamesMayContainDotsAndUnderscores) {
  EXPECT_TRUE(Eval("rfm.monetary = 42"));
  EXPECT_TRUE(Eval("top_category = \"electronics.audio\""));
}

TEST_F(ConditionTest, CallsResolveThroughTheCatalog) {
  EXPECT_TRUE(Eval("interest.category(\"shoes\") > 0.5"));
  EXPECT_FALSE(Eval("interest.category(\"books\") > 0.5"));
  EXPECT_TRUE(Eval("tag(\"bot\")"));
}

TEST_F(ConditionTest, BareBooleanVariableIsACondition) {
  EXPECT_FALSE(Eval("is_bot"));
  EXPECT_TRUE(Eval("not is_bot"));
  EXPECT_TRUE(Eval("true"));
  EXPECT_FALSE(Eval("FALSE"));
}

TEST_F(ConditionTest, AndBindsTighterThanOr) {
  EXPECT_TRUE(Eval("true or false and false"));  // true or (false and false)
  EXPECT_FALSE(Eval("(true or false) and false"));
  EXPECT_TRUE(Eval("false and false or true"));
}

TEST_F(ConditionTest, NotBindsTighterThanAndButLooserThanComparison) {
  EXPECT_FALSE(Eval("not true and true"));     // (not true) and true
  EXPECT_TRUE(Eval("not purchases_30d > 5"));  // not (purchases_30d > 5)
  EXPECT_TRUE(Eval("not not true"));
  EXPECT_TRUE(Eval("! is_bot && !false"));
}

TEST_F(ConditionTest, ArithmeticFollowsUsualPrecedenceAndAssociativity) {
  EXPECT_TRUE(Eval("1 + 2 * 3 = 7"));
  EXPECT_TRUE(Eval("(1 + 2) * 3 = 9"));
  EXPECT_TRUE(Eval("10 - 4 - 3 = 3"));
  EXPECT_TRUE(Eval("24 / 4 / 2 = 3"));
  EXPECT_TRUE(Eval("-2 * 3 = -6"));
  EXPECT_TRUE(Eval("- -2 = 2"));
  EXPECT_TRUE(Eval("monetary_30d / purchases_30d = 500"));
  EXPECT_TRUE(Eval("monetary_30d - 2 * purchases_30d * 100 = 900"));
  EXPECT_TRUE(Eval("-monetary_30d < 0"));
  EXPECT_TRUE(Eval("1.5e3 = monetary_30d and .5 = 0.5"));
}

TEST_F(ConditionTest, KeywordsAreCaseInsensitiveAndHaveSymbolicForms) {
  EXPECT_TRUE(Eval("true AND true"));
  EXPECT_TRUE(Eval("false Or true"));
  EXPECT_TRUE(Eval("NOT false"));
  EXPECT_TRUE(Eval("true && true || false"));
  EXPECT_TRUE(Eval("lifecycle IN [\"active\"]"));
}

TEST_F(ConditionTest, InTestsMembershipOfStringsAndNumbers) {
  EXPECT_TRUE(Eval("lifecycle in [\"new\", \"active\"]"));
  EXPECT_FALSE(Eval("lifecycle in [\"dormant\", \"churned\"]"));
  EXPECT_TRUE(Eval("lifecycle not in [\"dormant\", \"churned\"]"));
  EXPECT_TRUE(Eval("purchases_30d in [1, 2, 3]"));
  EXPECT_TRUE(Eval("-purchases_30d in [-3, 7]"));
  EXPECT_FALSE(Eval("purchases_30d in []"));
  EXPECT_TRUE(Eval("lifecycle not in []"));
  EXPECT_TRUE(Eval("purchases_30d in [3, 3, 3,]"));  // duplicates and a trailing comma
}

TEST_F(ConditionTest, InWorksOnListsLongEnoughToBeBinarySearched) {
  EXPECT_TRUE(Eval("purchases_30d in [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 11, 12]"));
  EXPECT_FALSE(Eval("purchases_30d in [9, 8, 7, 6, 5, 4, 2, 1, 0, 11, 12]"));
  EXPECT_TRUE(Eval(
      "lifecycle in [\"k\", \"j\", \"i\", \"h\", \"g\", \"f\", \"e\", \"d\", \"active\", \"b\"]"));
  EXPECT_FALSE(
      Eval("lifecycle in [\"k\", \"j\", \"i\", \"h\", \"g\", \"f\", \"e\", \"d\", \"c\", \"b\"]"));
}

TEST_F(ConditionTest, NaNComparesFalseEvenForNotEqual) {
  // avg_rating (id 7) is unset, so it is NaN.
  EXPECT_FALSE(Eval("avg_rating > 0"));
  EXPECT_FALSE(Eval("avg_rating <= 0"));
  EXPECT_FALSE(Eval("avg_rating = avg_rating"));
  EXPECT_FALSE(Eval("avg_rating != 3"));
  EXPECT_FALSE(Eval("avg_rating in [1, 2, 3]"));
  EXPECT_FALSE(Eval("avg_rating in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]"));
  EXPECT_TRUE(Eval("not avg_rating > 0"));
}

TEST_F(ConditionTest, DivisionByZeroIsNaN) {
  EXPECT_FALSE(Eval("monetary_30d / 0 > 0"));
  EXPECT_FALSE(Eval("monetary_30d / 0 != 1"));
  EXPECT_FALSE(Eval("1 / 0 > 0"));  // folded at compile time, same semantics
  EXPECT_FALSE(Eval("monetary_30d / (purchases_30d - 3) < 1e300"));
}

TEST_F(ConditionTest, AndAndOrStopAtTheFirstDecidingOperand) {
  absl::StatusOr<Condition> c =
      Condition::Compile("purchases_30d > 100 and monetary_30d > 0 and views_30d > 0", catalog_);
  ASSERT_TRUE(c.ok()) << c.status();
  source_.reads = 0;
  EXPECT_FALSE(c->Evaluate(source_));
  EXPECT_EQ(source_.reads, 1);
  c = Condition::Compile("purchases_30d > 0 or monetary_30d > 0", catalog_);
  ASSERT_TRUE(c.ok()) << c.status();
  source_.reads = 0;
  EXPECT_TRUE(c->Evaluate(source_));
  EXPECT_EQ(source_.reads, 1);
}

TEST_F(ConditionTest, VariablesListsEachIdReadOnceInOrder) {
  absl::StatusOr<Condition> c = Condition::Compile(
      "lifecycle = \"new\" and monetary_30d > 1 and monetary_30d < 5 or "
      "interest.category(\"shoes\") > 0 or 3 > 2",
      catalog_);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->variables(), ElementsAre(0, 3, 20));
  EXPECT_EQ(c->text(),
            "lifecycle = \"new\" and monetary_30d > 1 and monetary_30d < 5 or "
            "interest.category(\"shoes\") > 0 or 3 > 2");
}

TEST_F(ConditionTest, CopiesOutliveTheOriginal) {
  auto original = std::make_unique<Condition>(*Condition::Compile(
      "lifecycle in [\"new\", \"active\"] and price_tier = \"budget\"", catalog_));
  Condition copy = *original;
  original.reset();
  EXPECT_TRUE(copy.Evaluate(source_));
}

// Costs for OrderConjunctsByCost: interest shares dear, strings middling, the rest cheap.
uint64_t TestCost(uint32_t id) { return id == 20 || id == 21 ? 100 : id == 3 ? 10 : 1; }

TEST_F(ConditionTest, OrderConjunctsByCostEvaluatesTheCheapestOperandFirst) {
  // A string literal holding " and " and " or " is one operand of the compiled tree, whatever a
  // scan of the text would make of it.
  const std::string text =
      "interest.category(\"shoes\") > 0.5 and lifecycle = \"x and y or z\" && "
      "purchases_30d > 100";
  absl::StatusOr<Condition> c = Condition::Compile(text, catalog_);
  ASSERT_TRUE(c.ok()) << c.status();
  source_.read_ids.clear();
  EXPECT_FALSE(c->Evaluate(source_));
  EXPECT_THAT(source_.read_ids, ElementsAre(20, 3));  // as written: the share, then the string

  c->OrderConjunctsByCost(TestCost);
  source_.read_ids.clear();
  EXPECT_FALSE(c->Evaluate(source_));
  EXPECT_THAT(source_.read_ids, ElementsAre(1));  // the cheap count alone decides
  EXPECT_EQ(c->text(), text);
  EXPECT_THAT(c->variables(), ElementsAre(1, 3, 20));

  // When every operand holds, all are read, cheapest first, and the result is unchanged.
  c = Condition::Compile(
      "interest.category(\"shoes\") > 0.5 and lifecycle = \"active\" and purchases_30d = 3",
      catalog_);
  ASSERT_TRUE(c.ok()) << c.status();
  c->OrderConjunctsByCost(TestCost);
  source_.read_ids.clear();
  EXPECT_TRUE(c->Evaluate(source_));
  EXPECT_THAT(source_.read_ids, ElementsAre(1, 3, 20));
}

TEST_F(ConditionTest, OrderConjunctsByCostReachesNestedConjunctionsAndKeepsTies) {
  absl::StatusOr<Condition> c = Condition::Compile(
      "is_bot or not (interest.category(\"books\") < 1 and (views_30d > 100 and "
      "monetary_30d > 1e9))",
      catalog_);
  ASSERT_TRUE(c.ok()) << c.status();
  c->OrderConjunctsByCost(TestCost);
  source_.read_ids.clear();
  EXPECT_TRUE(c->Evaluate(source_));
  // The inner "and" (cost 2) goes before the share (cost 100); inside it, equal costs keep their
  // written order, so views_30d decides alone.
  EXPECT_THAT(source_.read_ids, ElementsAre(5, 2));
  // An operand's cost counts each variable once: the parenthesised pair reads monetary_30d twice
  // yet costs 1, not 2, so it keeps its place before views_30d.
  c = Condition::Compile(
      "(monetary_30d > 1 and monetary_30d < 2) and lifecycle = \"new\" and views_30d > 100",
      catalog_);
  ASSERT_TRUE(c.ok()) << c.status();
  c->OrderConjunctsByCost(TestCost);
  source_.read_ids.clear();
  EXPECT_FALSE(c->Evaluate(source_));
  EXPECT_THAT(source_.read_ids, ElementsAre(0, 0));
}

TEST_F(ConditionTest, ResolveVariableReadsOneNameOrCallWithTheConditionLexer) {
  absl::StatusOr<VarInfo> v = Condition::ResolveVariable("monetary_30d", catalog_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->id, 0u);
  EXPECT_EQ(v->type, VarType::kNumber);
  v = Condition::ResolveVariable(" interest.category ( \"sh\\oes\" )\t", catalog_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->id, 20u);
  v = Condition::ResolveVariable("tag(\"bot\")", catalog_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->type, VarType::kBool);

  auto error = [&](std::string_view text) {
    absl::StatusOr<VarInfo> r = Condition::ResolveVariable(text, catalog_);
    return r.ok() ? std::string("OK") : std::string(r.status().message());
  };
  EXPECT_EQ(error("monetery_30d"),
            "column 1: unknown field 'monetery_30d' (did you mean 'monetary_30d'?)");
  EXPECT_EQ(error("tag"), "column 1: 'tag' is a function; call it with a string, e.g. tag(\"x\")");
  EXPECT_EQ(error("lifecycle(\"x\")"),
            "column 1: 'lifecycle' is a field, not a function; remove the (...)");
  EXPECT_EQ(error("interest.category(shoes)"),
            "column 19: expected a string argument for 'interest.category' but found 'shoes'");
  EXPECT_EQ(error("monetary_30d > 1"), "column 14: expected the end after a name but found '>'");
  EXPECT_EQ(error(""), "column 1: expected a name but found end of input");
  EXPECT_EQ(error("and"), "column 1: expected a name but found 'and'");
}

TEST_F(ConditionTest, ReportsUnexpectedTokenWithColumnAndExpectation) {
  EXPECT_EQ(ErrorOf("monetary_30d > and purchases_30d > 1"),
            "column 16: expected a number, a string, a name or '(' but found 'and'");
  EXPECT_EQ(ErrorOf(""),
            "column 1: expected a number, a string, a name or '(' but found end of "
            "input");
  EXPECT_EQ(ErrorOf("monetary_30d >"),
            "column 15: expected a number, a string, a name or '(' but found end of input");
  EXPECT_EQ(ErrorOf("(monetary_30d > 1"),
            "column 18: expected ')' to close the '(' at column 1 but found end of input");
  EXPECT_EQ(ErrorOf("monetary_30d > 1 purchases_30d"),
            "column 18: expected an operator or the end of the condition but found "
            "'purchases_30d'");
  EXPECT_EQ(ErrorOf("true)"),
            "column 5: expected an operator or the end of the condition but found ')'");
  EXPECT_EQ(ErrorOf("1 < monetary_30d < 5"),
            "column 18: comparisons cannot be chained; join them with 'and' (found '<' after a "
            "comparison)");
}

TEST_F(ConditionTest, ReportsLexicalErrorsWithColumn) {
  EXPECT_EQ(ErrorOf("lifecycle = \"new"),
            "column 13: unterminated string (expected a closing '\"')");
  EXPECT_EQ(ErrorOf("lifecycle = 'new'"),
            "column 13: strings are written in double quotes, e.g. \"new\"");
  EXPECT_EQ(ErrorOf("views_30d > 5 $"), "column 15: unexpected character '$'");
  EXPECT_EQ(ErrorOf("views_30d > 30d"), "column 13: invalid number '30d'");
  EXPECT_EQ(ErrorOf("views_30d > 1.2.3"), "column 13: invalid number '1.2.3'");
  EXPECT_EQ(ErrorOf("true & false"), "column 6: expected '&&' but found '&'");
  EXPECT_EQ(ErrorOf("true | false"), "column 6: expected '||' but found '|'");
}

TEST_F(ConditionTest, ReportsUnknownNamesWithSuggestions) {
  EXPECT_EQ(ErrorOf("monetery_30d > 1"),
            "column 1: unknown field 'monetery_30d' (did you mean 'monetary_30d'?)");
  EXPECT_EQ(ErrorOf("true and lifecylce = \"new\""),
            "column 10: unknown field 'lifecylce' (did you mean 'lifecycle'?)");
  EXPECT_EQ(ErrorOf("completely_unrelated > 1"), "column 1: unknown field 'completely_unrelated'");
  EXPECT_EQ(ErrorOf("interest.catgory(\"shoes\") > 0"),
            "column 1: unknown function 'interest.catgory' (did you mean 'interest.category'?)");
  EXPECT_EQ(ErrorOf("interest.category(\"cars\") > 0"),
            "column 1: 'interest.category' does not accept the argument \"cars\"");
  EXPECT_EQ(ErrorOf("views_30d(\"x\") > 0"),
            "column 1: 'views_30d' is a field, not a function; remove the (...)");
  EXPECT_EQ(ErrorOf("interest.category > 0"),
            "column 1: 'interest.category' is a function; call it with a string, e.g. "
            "interest.category(\"x\")");
  EXPECT_EQ(ErrorOf("interest.category(shoes) > 0"),
            "column 19: expected a string argument for 'interest.category' but found 'shoes'");
  EXPECT_EQ(ErrorOf("interest.category(\"shoes\" > 0"),
            "column 27: expected ')' after the argument of 'interest.category' but found '>'");
}

TEST_F(ConditionTest, ReportsTypeErrorsAtTheOffendingOperand) {
  EXPECT_EQ(ErrorOf("lifecycle > 3"), "column 1: expected a number before '>' but found a string");
  EXPECT_EQ(ErrorOf("lifecycle = 3"), "column 13: expected a string after '=' but found a number");
  EXPECT_EQ(ErrorOf("views_30d = \"3\""),
            "column 13: expected a number after '=' but found a string");
  EXPECT_EQ(ErrorOf("views_30d and true"),
            "column 1: expected true/false before 'and' but found a number");
  EXPECT_EQ(ErrorOf("true OR views_30d"),
            "column 9: expected true/false after 'OR' but found a number");
  EXPECT_EQ(ErrorOf("not views_30d"),
            "column 5: expected true/false after 'not' but found a number");
  EXPECT_EQ(ErrorOf("lifecycle + 1 > 0"),
            "column 1: expected a number before '+' but found a string");
  EXPECT_EQ(ErrorOf("1 * is_bot > 0"),
            "column 5: expected a number after '*' but found true/false");
  EXPECT_EQ(ErrorOf("-lifecycle = 1"), "column 2: expected a number after '-' but found a string");
  EXPECT_EQ(ErrorOf("views_30d"),
            "column 1: expected a condition that is true or false but found a number");
  EXPECT_EQ(ErrorOf("(lifecycle)"),
            "column 1: expected a condition that is true or false but found a string");
  EXPECT_EQ(ErrorOf("is_bot > false"),
            "column 1: expected a number before '>' but found true/false");
}

TEST_F(ConditionTest, ReportsMisusedLists) {
  EXPECT_EQ(ErrorOf("lifecycle in \"new\""),
            "column 14: expected a list such as [\"a\", \"b\"] after 'in' but found a string");
  EXPECT_EQ(ErrorOf("lifecycle in [1, 2]"),
            "column 14: expected a list of strings after 'in' but found a list of numbers");
  EXPECT_EQ(ErrorOf("views_30d not in [\"a\"]"),
            "column 18: expected a list of numbers after 'not in' but found a list of strings");
  EXPECT_EQ(ErrorOf("is_bot in [1]"),
            "column 1: expected a number or a string before 'in' but found true/false");
  EXPECT_EQ(ErrorOf("views_30d in [1, \"a\"]"),
            "column 18: expected a number like the list's first element but found a string");
  EXPECT_EQ(ErrorOf("views_30d in [1 2]"),
            "column 17: expected ',' or ']' in the list but found '2'");
  EXPECT_EQ(ErrorOf("views_30d in [views_30d]"),
            "column 15: expected a number or a string in the list but found 'views_30d'");
  EXPECT_EQ(ErrorOf("[1] = [1]"),
            "column 1: expected a number, a string or true/false before '=' but found a list of "
            "numbers (lists go after 'in')");
  EXPECT_EQ(ErrorOf("[\"a\"]"),
            "column 1: expected a condition that is true or false but found a list of strings");
}

TEST_F(ConditionTest, RejectsRunawayNestingAndLength) {
  std::string deep(100, '(');
  deep += "true" + std::string(100, ')');
  EXPECT_THAT(ErrorOf(deep), HasSubstr("column 65: condition nested too deeply"));
  std::string nots;
  for (int i = 0; i < 100; ++i) nots += "not ";
  EXPECT_THAT(ErrorOf(nots + "true"), HasSubstr("nested too deeply"));
  std::string long_chain = "views_30d > 0";
  for (int i = 0; i < 5000; ++i) long_chain += " and views_30d > 0";
  EXPECT_THAT(ErrorOf(long_chain), HasSubstr("condition too long"));
  // Moderately long chains are fine and need no recursion per operand.
  std::string chain = "views_30d > 0";
  for (int i = 0; i < 1000; ++i) chain += " and views_30d > 0";
  EXPECT_TRUE(Eval(chain));
}

}  // namespace
}  // namespace persona
