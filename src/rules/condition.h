// A condition of the rule language shared by tag rules and audience conditions, compiled once and
// evaluated many times against a VariableSource. Grammar, loosest binding first:
//
//   expr  := or
//   or    := and (("or" | "||") and)*
//   and   := unary (("and" | "&&") unary)*
//   unary := ("not" | "!") unary | cmp
//   cmp   := sum (("<" | "<=" | ">" | ">=" | "=" | "==" | "!=" | "in" | "not in") sum)?
//   sum   := term (("+" | "-") term)*
//   term  := atom (("*" | "/") atom)*
//   atom  := number | "string" | true | false | name | name "(" "string" ")" | "(" expr ")"
//          | "[" list "]" | "-" atom
//
// Keywords (and, or, not, in, true, false) are case-insensitive. Names may contain dots and
// underscores ("rfm.monetary_30d") and are resolved through a VariableCatalog at compile time, so a
// compiled condition only holds variable ids. Expressions are typed: numbers support arithmetic and
// all comparisons; strings and booleans support only "=" and "!="; "and"/"or"/"not" need booleans;
// "in" tests a number or string against a literal list of the same type. Any comparison involving
// NaN is false (including "!="), and division by zero gives NaN, so a feature that is undefined for
// a user (e.g. an average with no data) never makes a rule fire by accident.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "rules/variables.h"

namespace persona {

class Condition {
 public:
  // Parses, resolves and type-checks `text`. The result must be a boolean expression (a bare
  // boolean variable or call is fine). On failure returns InvalidArgument whose message always
  // starts with "column N: " (1-based byte column in `text`) followed by what was expected and what
  // was found, e.g. "column 17: expected a number, a string, a name or '(' but found 'and'", or
  // "column 1: unknown field 'monetery_30d' (did you mean 'monetary_30d'?)".
  static absl::StatusOr<Condition> Compile(std::string_view text, const VariableCatalog& catalog);

  // Parses `text` as one variable of the language, a name or a call with a string argument
  // ("monetary", "attribute(\"city\")"), with Compile's lexer and name resolution, and returns its
  // id and type. Errors are Compile's, e.g. "column 1: unknown field 'monetery' (did you mean
  // 'monetary'?)"; anything but a single name or call is InvalidArgument too.
  static absl::StatusOr<VarInfo> ResolveVariable(std::string_view text,
                                                 const VariableCatalog& catalog);

  // Evaluates the condition. Never allocates; reads only the ids listed by variables(). Thread-safe
  // for concurrent callers (a Condition is immutable once compiled and ordered).
  bool Evaluate(const VariableSource& source) const;

  // Reorders the operands of every "and" (the top-level conjunction and any nested one) so that
  // the cheapest is evaluated first, its cost being the sum of `variable_cost(id)` over the
  // distinct variables it reads; equal costs keep their written order. Operands have no side
  // effects and every value is defined (NaN at worst), so the order changes how soon Evaluate
  // can stop, never its result. Call it before the condition is shared between threads.
  void OrderConjunctsByCost(absl::FunctionRef<uint64_t(uint32_t id)> variable_cost);

  // The source text as given to Compile.
  const std::string& text() const { return text_; }
  // The distinct variable and call ids the condition reads, ascending, so that callers can compute
  // only those.
  std::span<const uint32_t> variables() const { return variables_; }

 private:
  friend class ConditionCompiler;

  enum class Op : uint8_t {
    kBoolConst,    // a: 0 or 1
    kNumberConst,  // number
    kStringConst,  // a: index in strings_
    kBoolVar,      // a: variable id
    kNumberVar,    // a: variable id
    kStringVar,    // a: variable id
    kNegate,       // a: operand node
    kAdd,          // a, b: operand nodes (also kSubtract, kMultiply, kDivide)
    kSubtract,
    kMultiply,
    kDivide,
    kCompareNumbers,      // cmp; a, b: operand nodes
    kCompareVarToNumber,  // cmp; a: variable id; number: constant (the common rule shape)
    kCompareStrings,      // cmp (= or !=); a, b: operand nodes
    kCompareVarToString,  // cmp (= or !=); a: variable id; b: index in strings_
    kCompareBools,        // cmp (= or !=); a, b: operand nodes
    kInNumbers,           // a: operand node; [b, c): sorted range in numbers_
    kInStrings,           // a: operand node; [b, c): sorted range in strings_
    kNot,                 // a: operand node
    kAnd,                 // [b, c): range in children_
    kOr,                  // [b, c): range in children_
  };
  enum class Cmp : uint8_t { kLess, kLessEqual, kGreater, kGreaterEqual, kEqual, kNotEqual };

  // One operation; operands refer to earlier nodes by index, so the program is a flat vector
  // evaluated by a switch, with no virtual call per node.
  struct Node {
    Op op;
    Cmp cmp = Cmp::kEqual;
    uint32_t a = 0;
    uint32_t b = 0;
    uint32_t c = 0;
    double number = 0;
  };

  Condition() = default;

  bool EvaluateBool(uint32_t node, const VariableSource& source) const;
  double EvaluateNumber(uint32_t node, const VariableSource& source) const;
  std::string_view EvaluateString(uint32_t node, const VariableSource& source) const;
  // Appends the variable ids `node` and its operands read (with repeats).
  void CollectVariables(uint32_t node, std::vector<uint32_t>* ids) const;

  std::string text_;
  std::vector<Node> nodes_;
  uint32_t root_ = 0;
  std::vector<uint32_t> children_;    // operands of n-ary and/or
  std::vector<double> numbers_;       // elements of number lists
  std::vector<std::string> strings_;  // string constants and elements of string lists
  std::vector<uint32_t> variables_;
};

}  // namespace persona
