#include "rules/condition.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"

namespace persona {
namespace {

// Bounds that keep compilation and the recursive evaluator's stack use small whatever the input:
// rule files are edited by people, and a runaway line must fail cleanly rather than overflow.
constexpr int kMaxDepth = 64;
constexpr size_t kMaxNodes = 4096;
// Lists up to this size are scanned; longer ones are sorted and binary-searched.
constexpr size_t kLinearSearchLimit = 8;

#define PERSONA_RETURN_IF_ERROR(expr)                                 \
  do {                                                                \
    if (absl::Status status_ = (expr); !status_.ok()) return status_; \
  } while (0)

// String concatenation that takes std::string_view (Debian's Abseil has its own string_view type,
// so absl::StrCat does not accept ours).
void AppendPiece(std::string& out, std::string_view piece) { out.append(piece); }
template <typename Integer, typename = std::enable_if_t<std::is_integral_v<Integer>>>
void AppendPiece(std::string& out, Integer piece) {
  out.append(std::to_string(piece));
}
template <typename... Pieces>
std::string Cat(const Pieces&... pieces) {
  std::string out;
  (AppendPiece(out, pieces), ...);
  return out;
}

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> previous(b.size() + 1), current(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t substitute = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitute});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}

// " (did you mean 'x'?)" for the closest candidate within a distance that grows with the length of
// the name, or "" when nothing is close enough to be a plausible typo.
std::string Suggestion(std::string_view name, const std::vector<std::string>& candidates) {
  size_t limit = name.size() <= 4 ? 1 : name.size() <= 8 ? 2 : 3;
  const std::string* best = nullptr;
  size_t best_distance = limit + 1;
  for (const std::string& candidate : candidates) {
    if (candidate == name) continue;
    size_t d = EditDistance(name, candidate);
    if (d < best_distance || (d == best_distance && best != nullptr && candidate < *best)) {
      best = &candidate;
      best_distance = d;
    }
  }
  return best == nullptr ? "" : Cat(" (did you mean '", *best, "'?)");
}

}  // namespace

class ConditionCompiler {
 public:
  ConditionCompiler(std::string_view text, const VariableCatalog& catalog)
      : text_(text), catalog_(catalog) {}

  absl::StatusOr<Condition> Compile();
  absl::StatusOr<VarInfo> ResolveVariable();

 private:
  using Node = Condition::Node;
  using Op = Condition::Op;
  using Cmp = Condition::Cmp;

  // kLess..kNotEqual are contiguous and in Condition::Cmp's order: BuildCompare maps by offset.
  enum class Tok : uint8_t {
    kEnd,
    kNumber,
    kString,
    kName,
    kAnd,
    kOr,
    kNot,
    kIn,
    kTrue,
    kFalse,
    kLess,
    kLessEqual,
    kGreater,
    kGreaterEqual,
    kEqual,
    kNotEqual,
    kPlus,
    kMinus,
    kStar,
    kSlash,
    kLeftParen,
    kRightParen,
    kLeftBracket,
    kRightBracket,
    kComma,
  };
  struct Token {
    Tok kind = Tok::kEnd;
    uint32_t column = 1;
    std::string_view spelling;  // as written, for messages
    double number = 0;
    std::string value;  // unescaped string literal
  };
  enum class Type : uint8_t { kBool, kNumber, kString, kNumberList, kStringList, kEmptyList };
  // A parsed subexpression: its node (or, for a list, its element range) and where it starts.
  struct Operand {
    uint32_t node = 0;
    Type type = Type::kBool;
    uint32_t column = 1;
    uint32_t list_begin = 0;
    uint32_t list_end = 0;
  };

  static std::string_view TypeName(Type t);
  static std::string Describe(const Token& t);
  static absl::Status Error(uint32_t column, std::string_view message);
  static Type TypeOf(VarType t) {
    return t == VarType::kNumber   ? Type::kNumber
           : t == VarType::kString ? Type::kString
                                   : Type::kBool;
  }
  static bool IsList(Type t) {
    return t == Type::kNumberList || t == Type::kStringList || t == Type::kEmptyList;
  }

  absl::Status Lex();
  const Token& Peek() const { return tokens_[position_]; }
  const Token& PeekNext() const { return tokens_[std::min(position_ + 1, tokens_.size() - 1)]; }
  const Token& Take() {
    const Token& t = tokens_[position_];
    if (position_ + 1 < tokens_.size()) ++position_;
    return t;
  }

  absl::Status ParseOr(Operand* out);
  absl::Status ParseAnd(Operand* out);
  absl::Status ParseLogical(Tok op_kind, Op op, Operand* out);
  absl::Status ParseUnary(Operand* out);
  absl::Status ParseCompare(Operand* out);
  absl::Status ParseArithmetic(bool sum, Operand* out);
  absl::Status ParseAtom(Operand* out);
  absl::Status ParseList(Operand* out);
  absl::Status ParseName(Operand* out);
  // Consumes a name, or a call name("argument"), and resolves it against the catalog.
  absl::Status ResolveName(VarInfo* info);
  absl::Status BuildCompare(const Token& op, bool negated_in, const Operand& left,
                            const Operand& right, Operand* out);
  absl::Status Expect(const Operand& x, Type type, std::string_view where) const;
  absl::Status EnterNesting(uint32_t column);

  uint32_t Emit(const Node& node);
  uint32_t EmitVariable(const VarInfo& info);
  // Copies the reachable part of the program into `condition_` in evaluation order, dropping nodes
  // that constant folding and fusion left behind.
  uint32_t CopyReachable(uint32_t node);

  std::string_view text_;
  const VariableCatalog& catalog_;
  std::vector<Token> tokens_;
  size_t position_ = 0;
  int depth_ = 0;
  std::vector<Node> nodes_;
  std::vector<uint32_t> children_;
  Condition condition_;
};

std::string_view ConditionCompiler::TypeName(Type t) {
  switch (t) {
    case Type::kBool:
      return "true/false";
    case Type::kNumber:
      return "a number";
    case Type::kString:
      return "a string";
    case Type::kNumberList:
      return "a list of numbers";
    case Type::kStringList:
      return "a list of strings";
    case Type::kEmptyList:
      return "an empty list";
  }
  return "?";
}

std::string ConditionCompiler::Describe(const Token& t) {
  if (t.kind == Tok::kEnd) return "end of input";
  return Cat("'", t.spelling, "'");
}

absl::Status ConditionCompiler::Error(uint32_t column, std::string_view message) {
  return absl::InvalidArgumentError(Cat("column ", column, ": ", message));
}

absl::Status ConditionCompiler::Lex() {
  size_t i = 0;
  const size_t n = text_.size();
  while (true) {
    while (i < n && (text_[i] == ' ' || text_[i] == '\t' || text_[i] == '\r' || text_[i] == '\n')) {
      ++i;
    }
    Token t;
    t.column = static_cast<uint32_t>(i + 1);
    if (i == n) {
      tokens_.push_back(std::move(t));
      return absl::OkStatus();
    }
    const size_t start = i;
    const char c = text_[i];
    auto next_is = [&](char want) { return i + 1 < n && text_[i + 1] == want; };
    if (IsDigit(c) || (c == '.' && i + 1 < n && IsDigit(text_[i + 1]))) {
      while (i < n && IsDigit(text_[i])) ++i;
      if (i < n && text_[i] == '.') {
        ++i;
        while (i < n && IsDigit(text_[i])) ++i;
      }
      if (i < n && (text_[i] == 'e' || text_[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (text_[j] == '+' || text_[j] == '-')) ++j;
        if (j < n && IsDigit(text_[j])) {
          i = j;
          while (i < n && IsDigit(text_[i])) ++i;
        }
      }
      const size_t end = i;
      while (i < n && IsNameChar(text_[i])) ++i;
      t.spelling = text_.substr(start, i - start);
      auto r = std::from_chars(text_.data() + start, text_.data() + end, t.number);
      if (i != end || r.ec != std::errc() || r.ptr != text_.data() + end) {
        return Error(t.column, Cat("invalid number '", t.spelling, "'"));
      }
      t.kind = Tok::kNumber;
    } else if (c == '"') {
      ++i;
      bool closed = false;
      while (i < n) {
        char ch = text_[i++];
        if (ch == '"') {
          closed = true;
          break;
        }
        if (ch == '\\' && i < n) {
          char escaped = text_[i++];
          // \n and \t; \" and \\ (and any other escaped character) stand for themselves.
          t.value.push_back(escaped == 'n' ? '\n' : escaped == 't' ? '\t' : escaped);
        } else {
          t.value.push_back(ch);
        }
      }
      if (!closed) return Error(t.column, "unterminated string (expected a closing '\"')");
      t.kind = Tok::kString;
      t.spelling = text_.substr(start, i - start);
    } else if (IsNameStart(c)) {
      while (i < n && IsNameChar(text_[i])) ++i;
      t.spelling = text_.substr(start, i - start);
      std::string lower = AsciiLower(t.spelling);
      static constexpr std::pair<std::string_view, Tok> kKeywords[] = {
          {"and", Tok::kAnd}, {"or", Tok::kOr},     {"not", Tok::kNot},
          {"in", Tok::kIn},   {"true", Tok::kTrue}, {"false", Tok::kFalse}};
      t.kind = Tok::kName;
      for (const auto& [keyword, kind] : kKeywords) {
        if (lower == keyword) t.kind = kind;
      }
    } else {
      size_t length = 1;
      switch (c) {
        case '<':
          if (next_is('=')) length = 2;
          t.kind = length == 2 ? Tok::kLessEqual : Tok::kLess;
          break;
        case '>':
          if (next_is('=')) length = 2;
          t.kind = length == 2 ? Tok::kGreaterEqual : Tok::kGreater;
          break;
        case '=':
          if (next_is('=')) length = 2;
          t.kind = Tok::kEqual;
          break;
        case '!':
          if (next_is('=')) length = 2;
          t.kind = length == 2 ? Tok::kNotEqual : Tok::kNot;
          break;
        case '&':
          if (!next_is('&')) return Error(t.column, "expected '&&' but found '&'");
          length = 2;
          t.kind = Tok::kAnd;
          break;
        case '|':
          if (!next_is('|')) return Error(t.column, "expected '||' but found '|'");
          length = 2;
          t.kind = Tok::kOr;
          break;
        case '+':
          t.kind = Tok::kPlus;
          break;
        case '-':
          t.kind = Tok::kMinus;
          break;
        case '*':
          t.kind = Tok::kStar;
          break;
        case '/':
          t.kind = Tok::kSlash;
          break;
        case '(':
          t.kind = Tok::kLeftParen;
          break;
        case ')':
          t.kind = Tok::kRightParen;
          break;
        case '[':
          t.kind = Tok::kLeftBracket;
          break;
        case ']':
          t.kind = Tok::kRightBracket;
          break;
        case ',':
          t.kind = Tok::kComma;
          break;
        case '\'':
          return Error(t.column, "strings are written in double quotes, e.g. \"new\"");
        default:
          return Error(t.column, Cat("unexpected character '", text_.substr(i, 1), "'"));
      }
      i += length;
      t.spelling = text_.substr(start, length);
    }
    tokens_.push_back(std::move(t));
  }
}

uint32_t ConditionCompiler::Emit(const Node& node) {
  nodes_.push_back(node);
  return static_cast<uint32_t>(nodes_.size() - 1);
}

uint32_t ConditionCompiler::EmitVariable(const VarInfo& info) {
  Node n;
  n.op = info.type == VarType::kNumber   ? Op::kNumberVar
         : info.type == VarType::kString ? Op::kStringVar
                                         : Op::kBoolVar;
  n.a = info.id;
  return Emit(n);
}

absl::Status ConditionCompiler::Expect(const Operand& x, Type type, std::string_view where) const {
  if (x.type == type) return absl::OkStatus();
  return Error(x.column,
               Cat("expected ", TypeName(type), " ", where, " but found ", TypeName(x.type)));
}

absl::Status ConditionCompiler::EnterNesting(uint32_t column) {
  if (++depth_ > kMaxDepth) {
    return Error(column, Cat("condition nested too deeply (more than ", kMaxDepth, " levels)"));
  }
  return absl::OkStatus();
}

absl::Status ConditionCompiler::ParseOr(Operand* out) {
  return ParseLogical(Tok::kOr, Op::kOr, out);
}

absl::Status ConditionCompiler::ParseAnd(Operand* out) {
  return ParseLogical(Tok::kAnd, Op::kAnd, out);
}

// "or" over "and" operands, or "and" over unary operands: an n-ary node whose operands are
// evaluated left to right and short-circuit, so that a long chain costs no recursion depth.
absl::Status ConditionCompiler::ParseLogical(Tok op_kind, Op op, Operand* out) {
  Operand first;
  PERSONA_RETURN_IF_ERROR(op_kind == Tok::kOr ? ParseAnd(&first) : ParseUnary(&first));
  if (Peek().kind != op_kind) {
    *out = first;
    return absl::OkStatus();
  }
  PERSONA_RETURN_IF_ERROR(Expect(first, Type::kBool, Cat("before '", Peek().spelling, "'")));
  std::vector<uint32_t> operands = {first.node};
  while (Peek().kind == op_kind) {
    const Token& op_token = Take();
    Operand next;
    PERSONA_RETURN_IF_ERROR(op_kind == Tok::kOr ? ParseAnd(&next) : ParseUnary(&next));
    PERSONA_RETURN_IF_ERROR(Expect(next, Type::kBool, Cat("after '", op_token.spelling, "'")));
    operands.push_back(next.node);
  }
  Node n;
  n.op = op;
  n.b = static_cast<uint32_t>(children_.size());
  children_.insert(children_.end(), operands.begin(), operands.end());
  n.c = static_cast<uint32_t>(children_.size());
  *out = Operand{Emit(n), Type::kBool, first.column};
  return absl::OkStatus();
}

absl::Status ConditionCompiler::ParseUnary(Operand* out) {
  if (Peek().kind != Tok::kNot) return ParseCompare(out);
  const Token& not_token = Take();
  PERSONA_RETURN_IF_ERROR(EnterNesting(not_token.column));
  Operand x;
  PERSONA_RETURN_IF_ERROR(ParseUnary(&x));
  --depth_;
  PERSONA_RETURN_IF_ERROR(Expect(x, Type::kBool, Cat("after '", not_token.spelling, "'")));
  Node n;
  n.op = Op::kNot;
  n.a = x.node;
  *out = Operand{Emit(n), Type::kBool, not_token.column};
  return absl::OkStatus();
}

absl::Status ConditionCompiler::ParseCompare(Operand* out) {
  Operand left;
  PERSONA_RETURN_IF_ERROR(ParseArithmetic(/*sum=*/true, &left));
  auto is_operator = [](const Token& t) {
    return (t.kind >= Tok::kLess && t.kind <= Tok::kNotEqual) || t.kind == Tok::kIn;
  };
  bool negated_in = Peek().kind == Tok::kNot && PeekNext().kind == Tok::kIn;
  if (!negated_in && !is_operator(Peek())) {
    *out = left;
    return absl::OkStatus();
  }
  if (negated_in) Take();
  const Token& op = Take();
  Operand right;
  PERSONA_RETURN_IF_ERROR(ParseArithmetic(/*sum=*/true, &right));
  PERSONA_RETURN_IF_ERROR(BuildCompare(op, negated_in, left, right, out));
  if (is_operator(Peek()) || (Peek().kind == Tok::kNot && PeekNext().kind == Tok::kIn)) {
    return Error(Peek().column, Cat("comparisons cannot be chained; join them with 'and' "
                                    "(found '",
                                    Peek().spelling, "' after a comparison)"));
  }
  return absl::OkStatus();
}

absl::Status ConditionCompiler::BuildCompare(const Token& op, bool negated_in, const Operand& left,
                                             const Operand& right, Operand* out) {
  const std::string quoted = Cat("'", negated_in ? "not " : "", op.spelling, "'");
  Node n;
  if (op.kind == Tok::kIn) {
    if (left.type != Type::kNumber && left.type != Type::kString) {
      return Error(left.column, Cat("expected a number or a string before ", quoted, " but found ",
                                    TypeName(left.type)));
    }
    if (!IsList(right.type)) {
      return Error(right.column, Cat("expected a list such as [\"a\", \"b\"] after ", quoted,
                                     " but found ", TypeName(right.type)));
    }
    if (right.type == Type::kEmptyList) {
      n.op = Op::kBoolConst;
      n.a = 0;
    } else {
      Type wanted = left.type == Type::kNumber ? Type::kNumberList : Type::kStringList;
      PERSONA_RETURN_IF_ERROR(Expect(right, wanted, Cat("after ", quoted)));
      n.op = left.type == Type::kNumber ? Op::kInNumbers : Op::kInStrings;
      n.a = left.node;
      n.b = right.list_begin;
      n.c = right.list_end;
    }
    uint32_t node = Emit(n);
    if (negated_in) {
      Node negation;
      negation.op = Op::kNot;
      negation.a = node;
      node = Emit(negation);
    }
    *out = Operand{node, Type::kBool, left.column};
    return absl::OkStatus();
  }

  static constexpr Cmp kCmpOf[] = {Cmp::kLess,         Cmp::kLessEqual, Cmp::kGreater,
                                   Cmp::kGreaterEqual, Cmp::kEqual,     Cmp::kNotEqual};
  // The comparison seen from the other side, for "1000 < monetary" -> "monetary > 1000".
  static constexpr Cmp kMirrored[] = {Cmp::kGreater,   Cmp::kGreaterEqual, Cmp::kLess,
                                      Cmp::kLessEqual, Cmp::kEqual,        Cmp::kNotEqual};
  const Cmp cmp = kCmpOf[static_cast<int>(op.kind) - static_cast<int>(Tok::kLess)];
  const bool ordering = cmp != Cmp::kEqual && cmp != Cmp::kNotEqual;
  if (ordering) {
    PERSONA_RETURN_IF_ERROR(Expect(left, Type::kNumber, Cat("before ", quoted)));
  } else if (IsList(left.type)) {
    return Error(left.column, Cat("expected a number, a string or true/false before ", quoted,
                                  " but found ", TypeName(left.type), " (lists go after 'in')"));
  }
  PERSONA_RETURN_IF_ERROR(Expect(right, left.type, Cat("after ", quoted)));

  n.cmp = cmp;
  const Node& l = nodes_[left.node];
  const Node& r = nodes_[right.node];
  if (left.type == Type::kNumber) {
    if (l.op == Op::kNumberVar && r.op == Op::kNumberConst) {
      n.op = Op::kCompareVarToNumber;
      n.a = l.a;
      n.number = r.number;
    } else if (l.op == Op::kNumberConst && r.op == Op::kNumberVar) {
      n.op = Op::kCompareVarToNumber;
      n.cmp = kMirrored[static_cast<int>(cmp)];
      n.a = r.a;
      n.number = l.number;
    } else {
      n.op = Op::kCompareNumbers;
      n.a = left.node;
      n.b = right.node;
    }
  } else if (left.type == Type::kString) {
    if (l.op == Op::kStringVar && r.op == Op::kStringConst) {
      n.op = Op::kCompareVarToString;
      n.a = l.a;
      n.b = r.a;
    } else if (l.op == Op::kStringConst && r.op == Op::kStringVar) {
      n.op = Op::kCompareVarToString;
      n.a = r.a;
      n.b = l.a;
    } else {
      n.op = Op::kCompareStrings;
      n.a = left.node;
      n.b = right.node;
    }
  } else {
    n.op = Op::kCompareBools;
    n.a = left.node;
    n.b = right.node;
  }
  *out = Operand{Emit(n), Type::kBool, left.column};
  return absl::OkStatus();
}

// sum := term (("+"|"-") term)* when `sum`, else term := atom (("*"|"/") atom)*.
absl::Status ConditionCompiler::ParseArithmetic(bool sum, Operand* out) {
  Operand left;
  PERSONA_RETURN_IF_ERROR(sum ? ParseArithmetic(false, &left) : ParseAtom(&left));
  const Tok first_op = sum ? Tok::kPlus : Tok::kStar;
  const Tok second_op = sum ? Tok::kMinus : Tok::kSlash;
  while (Peek().kind == first_op || Peek().kind == second_op) {
    const Token& op = Take();
    Operand right;
    PERSONA_RETURN_IF_ERROR(sum ? ParseArithmetic(false, &right) : ParseAtom(&right));
    const std::string quoted = Cat("'", op.spelling, "'");
    PERSONA_RETURN_IF_ERROR(Expect(left, Type::kNumber, Cat("before ", quoted)));
    PERSONA_RETURN_IF_ERROR(Expect(right, Type::kNumber, Cat("after ", quoted)));
    Node n;
    n.op = op.kind == Tok::kPlus    ? Op::kAdd
           : op.kind == Tok::kMinus ? Op::kSubtract
           : op.kind == Tok::kStar  ? Op::kMultiply
                                    : Op::kDivide;
    n.a = left.node;
    n.b = right.node;
    const Node& l = nodes_[left.node];
    const Node& r = nodes_[right.node];
    if (l.op == Op::kNumberConst && r.op == Op::kNumberConst) {
      // Constant folding, with the evaluator's semantics (x / 0 is NaN).
      double x = l.number, y = r.number;
      Node folded;
      folded.op = Op::kNumberConst;
      folded.number = n.op == Op::kAdd        ? x + y
                      : n.op == Op::kSubtract ? x - y
                      : n.op == Op::kMultiply ? x * y
                      : y == 0                ? std::numeric_limits<double>::quiet_NaN()
                                              : x / y;
      n = folded;
    }
    left = Operand{Emit(n), Type::kNumber, left.column};
  }
  *out = left;
  return absl::OkStatus();
}

absl::Status ConditionCompiler::ParseAtom(Operand* out) {
  const Token& t = Peek();
  if (nodes_.size() >= kMaxNodes) {
    return Error(t.column, Cat("condition too long (more than ", kMaxNodes, " terms)"));
  }
  Node n;
  switch (t.kind) {
    case Tok::kNumber:
      n.op = Op::kNumberConst;
      n.number = t.number;
      *out = Operand{Emit(n), Type::kNumber, t.column};
      Take();
      return absl::OkStatus();
    case Tok::kString:
      n.op = Op::kStringConst;
      n.a = static_cast<uint32_t>(condition_.strings_.size());
      condition_.strings_.push_back(t.value);
      *out = Operand{Emit(n), Type::kString, t.column};
      Take();
      return absl::OkStatus();
    case Tok::kTrue:
    case Tok::kFalse:
      n.op = Op::kBoolConst;
      n.a = t.kind == Tok::kTrue ? 1 : 0;
      *out = Operand{Emit(n), Type::kBool, t.column};
      Take();
      return absl::OkStatus();
    case Tok::kName:
      return ParseName(out);
    case Tok::kLeftBracket:
      return ParseList(out);
    case Tok::kLeftParen: {
      const uint32_t column = Take().column;
      PERSONA_RETURN_IF_ERROR(EnterNesting(column));
      Operand inner;
      PERSONA_RETURN_IF_ERROR(ParseOr(&inner));
      --depth_;
      if (Peek().kind != Tok::kRightParen) {
        return Error(Peek().column, Cat("expected ')' to close the '(' at column ", column,
                                        " but found ", Describe(Peek())));
      }
      Take();
      inner.column = column;
      *out = inner;
      return absl::OkStatus();
    }
    case Tok::kMinus: {
      const uint32_t column = Take().column;
      PERSONA_RETURN_IF_ERROR(EnterNesting(column));
      Operand x;
      PERSONA_RETURN_IF_ERROR(ParseAtom(&x));
      --depth_;
      PERSONA_RETURN_IF_ERROR(Expect(x, Type::kNumber, "after '-'"));
      if (nodes_[x.node].op == Op::kNumberConst) {
        n.op = Op::kNumberConst;
        n.number = -nodes_[x.node].number;
      } else {
        n.op = Op::kNegate;
        n.a = x.node;
      }
      *out = Operand{Emit(n), Type::kNumber, column};
      return absl::OkStatus();
    }
    default:
      return Error(t.column,
                   Cat("expected a number, a string, a name or '(' but found ", Describe(t)));
  }
}

absl::Status ConditionCompiler::ParseList(Operand* out) {
  const uint32_t column = Take().column;
  Operand list{0, Type::kEmptyList, column};
  std::vector<double>& numbers = condition_.numbers_;
  std::vector<std::string>& strings = condition_.strings_;
  const size_t number_start = numbers.size();
  const size_t string_start = strings.size();
  while (Peek().kind != Tok::kRightBracket) {
    const uint32_t element_column = Peek().column;
    bool negative = false;
    if (Peek().kind == Tok::kMinus && PeekNext().kind == Tok::kNumber) {
      Take();
      negative = true;
    }
    const Token& element = Peek();
    Type element_type;
    if (element.kind == Tok::kNumber) {
      element_type = Type::kNumberList;
    } else if (element.kind == Tok::kString) {
      element_type = Type::kStringList;
    } else {
      return Error(element.column, Cat("expected a number or a string in the list but "
                                       "found ",
                                       Describe(element)));
    }
    if (list.type == Type::kEmptyList) list.type = element_type;
    if (list.type != element_type) {
      return Error(element_column,
                   Cat("expected ", element_type == Type::kNumberList ? "a string" : "a number",
                       " like the list's first element but found ",
                       element_type == Type::kNumberList ? "a number" : "a string"));
    }
    if (element.kind == Tok::kNumber) {
      numbers.push_back(negative ? -element.number : element.number);
    } else {
      strings.push_back(element.value);
    }
    Take();
    if (Peek().kind == Tok::kComma) {
      Take();
    } else if (Peek().kind != Tok::kRightBracket) {
      return Error(Peek().column,
                   Cat("expected ',' or ']' in the list but found ", Describe(Peek())));
    }
  }
  Take();
  // Sorted and de-duplicated so that long lists can be binary-searched. Nothing else is appended
  // between the list's first element and here, so the range is the tail of the vector.
  if (list.type == Type::kNumberList) {
    std::sort(numbers.begin() + number_start, numbers.end());
    numbers.erase(std::unique(numbers.begin() + number_start, numbers.end()), numbers.end());
    list.list_begin = static_cast<uint32_t>(number_start);
    list.list_end = static_cast<uint32_t>(numbers.size());
  } else if (list.type == Type::kStringList) {
    std::sort(strings.begin() + string_start, strings.end());
    strings.erase(std::unique(strings.begin() + string_start, strings.end()), strings.end());
    list.list_begin = static_cast<uint32_t>(string_start);
    list.list_end = static_cast<uint32_t>(strings.size());
  }
  *out = list;
  return absl::OkStatus();
}

absl::Status ConditionCompiler::ResolveName(VarInfo* out) {
  const Token& name_token = Take();
  const std::string_view name = name_token.spelling;
  if (Peek().kind == Tok::kLeftParen) {
    Take();
    if (Peek().kind != Tok::kString) {
      return Error(Peek().column,
                   Cat("expected a string argument for '", name, "' but found ", Describe(Peek())));
    }
    const Token& argument = Take();
    if (Peek().kind != Tok::kRightParen) {
      return Error(Peek().column, Cat("expected ')' after the argument of '", name, "' but found ",
                                      Describe(Peek())));
    }
    Take();
    std::optional<VarInfo> info = catalog_.LookupCall(name, argument.value);
    if (!info) {
      if (catalog_.Lookup(name)) {
        return Error(name_token.column,
                     Cat("'", name, "' is a field, not a function; remove the (...)"));
      }
      const std::vector<std::string> names = catalog_.Names();
      if (std::find(names.begin(), names.end(), name) != names.end()) {
        return Error(name_token.column,
                     Cat("'", name, "' does not accept the argument ", argument.spelling));
      }
      return Error(name_token.column,
                   Cat("unknown function '", name, "'", Suggestion(name, names)));
    }
    *out = *info;
  } else {
    std::optional<VarInfo> info = catalog_.Lookup(name);
    if (!info) {
      const std::vector<std::string> names = catalog_.Names();
      if (std::find(names.begin(), names.end(), name) != names.end()) {
        return Error(
            name_token.column,
            Cat("'", name, "' is a function; call it with a string, e.g. ", name, "(\"x\")"));
      }
      return Error(name_token.column, Cat("unknown field '", name, "'", Suggestion(name, names)));
    }
    *out = *info;
  }
  return absl::OkStatus();
}

absl::Status ConditionCompiler::ParseName(Operand* out) {
  const uint32_t column = Peek().column;
  VarInfo info;
  PERSONA_RETURN_IF_ERROR(ResolveName(&info));
  *out = Operand{EmitVariable(info), TypeOf(info.type), column};
  return absl::OkStatus();
}

uint32_t ConditionCompiler::CopyReachable(uint32_t index) {
  Node n = nodes_[index];
  switch (n.op) {
    case Op::kNegate:
    case Op::kNot:
    case Op::kInNumbers:
    case Op::kInStrings:
      n.a = CopyReachable(n.a);
      break;
    case Op::kAdd:
    case Op::kSubtract:
    case Op::kMultiply:
    case Op::kDivide:
    case Op::kCompareNumbers:
    case Op::kCompareStrings:
    case Op::kCompareBools:
      n.a = CopyReachable(n.a);
      n.b = CopyReachable(n.b);
      break;
    case Op::kAnd:
    case Op::kOr: {
      std::vector<uint32_t> operands;
      for (uint32_t k = n.b; k < n.c; ++k) operands.push_back(CopyReachable(children_[k]));
      std::vector<uint32_t>& out = condition_.children_;
      n.b = static_cast<uint32_t>(out.size());
      out.insert(out.end(), operands.begin(), operands.end());
      n.c = static_cast<uint32_t>(out.size());
      break;
    }
    default:
      break;
  }
  condition_.nodes_.push_back(n);
  return static_cast<uint32_t>(condition_.nodes_.size() - 1);
}

absl::StatusOr<Condition> ConditionCompiler::Compile() {
  PERSONA_RETURN_IF_ERROR(Lex());
  Operand root;
  PERSONA_RETURN_IF_ERROR(ParseOr(&root));
  if (Peek().kind != Tok::kEnd) {
    return Error(Peek().column, Cat("expected an operator or the end of the condition but found ",
                                    Describe(Peek())));
  }
  if (root.type != Type::kBool) {
    return Error(root.column,
                 Cat("expected a condition that is true or false but found ", TypeName(root.type)));
  }
  condition_.text_ = std::string(text_);
  condition_.root_ = CopyReachable(root.node);
  std::vector<uint32_t>& ids = condition_.variables_;
  for (const Node& n : condition_.nodes_) {
    switch (n.op) {
      case Op::kBoolVar:
      case Op::kNumberVar:
      case Op::kStringVar:
      case Op::kCompareVarToNumber:
      case Op::kCompareVarToString:
        ids.push_back(n.a);
        break;
      default:
        break;
    }
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return std::move(condition_);
}

absl::StatusOr<VarInfo> ConditionCompiler::ResolveVariable() {
  PERSONA_RETURN_IF_ERROR(Lex());
  if (Peek().kind != Tok::kName) {
    return Error(Peek().column, Cat("expected a name but found ", Describe(Peek())));
  }
  VarInfo info;
  PERSONA_RETURN_IF_ERROR(ResolveName(&info));
  if (Peek().kind != Tok::kEnd) {
    return Error(Peek().column, Cat("expected the end after a name but found ", Describe(Peek())));
  }
  return info;
}

absl::StatusOr<Condition> Condition::Compile(std::string_view text,
                                             const VariableCatalog& catalog) {
  return ConditionCompiler(text, catalog).Compile();
}

absl::StatusOr<VarInfo> Condition::ResolveVariable(std::string_view text,
                                                   const VariableCatalog& catalog) {
  return ConditionCompiler(text, catalog).ResolveVariable();
}

void Condition::CollectVariables(uint32_t index, std::vector<uint32_t>* ids) const {
  const Node& n = nodes_[index];
  switch (n.op) {
    case Op::kBoolVar:
    case Op::kNumberVar:
    case Op::kStringVar:
    case Op::kCompareVarToNumber:
    case Op::kCompareVarToString:
      ids->push_back(n.a);
      break;
    case Op::kNegate:
    case Op::kNot:
    case Op::kInNumbers:
    case Op::kInStrings:
      CollectVariables(n.a, ids);
      break;
    case Op::kAdd:
    case Op::kSubtract:
    case Op::kMultiply:
    case Op::kDivide:
    case Op::kCompareNumbers:
    case Op::kCompareStrings:
    case Op::kCompareBools:
      CollectVariables(n.a, ids);
      CollectVariables(n.b, ids);
      break;
    case Op::kAnd:
    case Op::kOr:
      for (uint32_t k = n.b; k < n.c; ++k) CollectVariables(children_[k], ids);
      break;
    default:
      break;
  }
}

void Condition::OrderConjunctsByCost(absl::FunctionRef<uint64_t(uint32_t id)> variable_cost) {
  // Every n-ary node owns its own range of children_ (CopyReachable gives each one), so sorting
  // a range in place reorders that node's operands only.
  std::vector<std::pair<uint64_t, uint32_t>> ranked;
  std::vector<uint32_t> ids;
  for (const Node& n : nodes_) {
    if (n.op != Op::kAnd) continue;
    ranked.clear();
    for (uint32_t k = n.b; k < n.c; ++k) {
      ids.clear();
      CollectVariables(children_[k], &ids);
      std::sort(ids.begin(), ids.end());
      ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
      uint64_t cost = 0;
      for (uint32_t id : ids) cost += variable_cost(id);
      ranked.emplace_back(cost, children_[k]);
    }
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const auto& x, const auto& y) { return x.first < y.first; });
    for (uint32_t k = n.b; k < n.c; ++k) children_[k] = ranked[k - n.b].second;
  }
}

namespace {

bool CompareNumbers(uint8_t cmp, double x, double y) {
  // Written so that every comparison with NaN is false, "!=" included.
  switch (cmp) {
    case 0:
      return x < y;
    case 1:
      return x <= y;
    case 2:
      return x > y;
    case 3:
      return x >= y;
    case 4:
      return x == y;
    default:
      return x < y || x > y;
  }
}

template <typename T, typename Value>
bool Contains(const std::vector<T>& values, uint32_t begin, uint32_t end, Value x) {
  auto first = values.begin() + begin;
  auto last = values.begin() + end;
  if (end - begin <= kLinearSearchLimit) {
    for (; first != last; ++first) {
      if (Value(*first) == x) return true;
    }
    return false;
  }
  auto it = std::lower_bound(first, last, x, [](const T& a, Value b) { return Value(a) < b; });
  return it != last && Value(*it) == x;
}

}  // namespace

bool Condition::Evaluate(const VariableSource& source) const { return EvaluateBool(root_, source); }

bool Condition::EvaluateBool(uint32_t index, const VariableSource& source) const {
  const Node& n = nodes_[index];
  switch (n.op) {
    case Op::kCompareVarToNumber:
      return CompareNumbers(static_cast<uint8_t>(n.cmp), source.Number(n.a), n.number);
    case Op::kCompareVarToString:
      return (source.String(n.a) == std::string_view(strings_[n.b])) == (n.cmp == Cmp::kEqual);
    case Op::kAnd:
      for (uint32_t k = n.b; k < n.c; ++k) {
        if (!EvaluateBool(children_[k], source)) return false;
      }
      return true;
    case Op::kOr:
      for (uint32_t k = n.b; k < n.c; ++k) {
        if (EvaluateBool(children_[k], source)) return true;
      }
      return false;
    case Op::kNot:
      return !EvaluateBool(n.a, source);
    case Op::kBoolVar:
      return source.Bool(n.a);
    case Op::kBoolConst:
      return n.a != 0;
    case Op::kCompareNumbers:
      return CompareNumbers(static_cast<uint8_t>(n.cmp), EvaluateNumber(n.a, source),
                            EvaluateNumber(n.b, source));
    case Op::kCompareStrings:
      return (EvaluateString(n.a, source) == EvaluateString(n.b, source)) == (n.cmp == Cmp::kEqual);
    case Op::kCompareBools:
      return (EvaluateBool(n.a, source) == EvaluateBool(n.b, source)) == (n.cmp == Cmp::kEqual);
    case Op::kInNumbers: {
      const double x = EvaluateNumber(n.a, source);
      // NaN is in no list; checked here because a binary search would not notice it.
      return !std::isnan(x) && Contains<double, double>(numbers_, n.b, n.c, x);
    }
    case Op::kInStrings:
      return Contains<std::string, std::string_view>(strings_, n.b, n.c,
                                                     EvaluateString(n.a, source));
    default:
      return false;  // not a boolean node; the compiler's type check rules this out
  }
}

double Condition::EvaluateNumber(uint32_t index, const VariableSource& source) const {
  const Node& n = nodes_[index];
  switch (n.op) {
    case Op::kNumberVar:
      return source.Number(n.a);
    case Op::kNumberConst:
      return n.number;
    case Op::kNegate:
      return -EvaluateNumber(n.a, source);
    case Op::kAdd:
      return EvaluateNumber(n.a, source) + EvaluateNumber(n.b, source);
    case Op::kSubtract:
      return EvaluateNumber(n.a, source) - EvaluateNumber(n.b, source);
    case Op::kMultiply:
      return EvaluateNumber(n.a, source) * EvaluateNumber(n.b, source);
    case Op::kDivide: {
      const double divisor = EvaluateNumber(n.b, source);
      if (divisor == 0) return std::numeric_limits<double>::quiet_NaN();
      return EvaluateNumber(n.a, source) / divisor;
    }
    default:
      return std::numeric_limits<double>::quiet_NaN();
  }
}

std::string_view Condition::EvaluateString(uint32_t index, const VariableSource& source) const {
  const Node& n = nodes_[index];
  if (n.op == Op::kStringVar) return source.String(n.a);
  if (n.op == Op::kStringConst) return strings_[n.a];
  return {};
}

}  // namespace persona
