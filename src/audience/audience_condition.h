// The audience language: the tag-rule condition language (rules/condition.h: grammar, types,
// NaN semantics, "column N: expected ... but found ..." errors) over a larger catalog of names,
// evaluated against live profiles. docs/audiences.md documents every name and function.
//
// Everything ProfileFeatureCatalog() has (docs/profile.md), plus:
//   rfm.r rfm.f rfm.m rfm.recency_days rfm.orders rfm.monetary rfm.monetary_1d rfm.monetary_7d
//   rfm.monetary_30d rfm.aov
//                   aliases of rfm_r, ..., aov
//   segment         number: the user's segment (-1 none; see CurrentSegment)
//   satisfaction    number: mean review sentiment (NaN none)
//   anomalous       bool: any anomaly flag
//   predictions.propensity predictions.churn
//                   numbers in [0, 1]; NaN without a model or predictor
//   predictions.segment
//                   number: the loaded segment model's segment now (-1 none)
//   tag("x")        bool: tag rule x fired, or x is an anomaly flag set on the profile
//                   ("high_rate", "regular_timing", "view_burst", "cart_churn"), or x == "bot"
//                   and the profile is anomalous. An unknown tag name is false, not an error:
//                   rules reload.
//   attribute("x")  string: the user's attribute x (strings as is, other JSON values as minified
//                   JSON text, "" when absent)
//
//   auto c = AudienceCondition::Compile("rfm.monetary_30d >= 500 and not tag(\"bot\")");
//   if (c.ok() && c->Matches(profile, ctx, now_ms, env)) ...
#pragma once

#include <array>
#include <cstdint>
#include <forward_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "common/json_writer.h"
#include "profile/profile.h"
#include "profile/profile_context.h"
#include "rules/condition.h"
#include "rules/profile_features.h"
#include "rules/tag_rules.h"
#include "rules/variables.h"

namespace persona {

class Predictor;

// The user's segment as audiences see it: the loaded segment model's assignment computed now
// (~1 us) when `predictor` has a segment model, else the segment stored at the profile's latest
// update (-1 when none). Profiles imported before a model was trained, or untouched since a model
// swap, still report the current model's segment, as /v1/segments and the profile do.
int CurrentSegment(const Profile& profile, const ProfileContext& ctx, int64_t now_ms,
                   const Predictor* predictor);

// The catalog of audience names and functions; a process-wide singleton. Call arguments are
// registered thread-safely as conditions compile and are never removed (ids stay valid).
const VariableCatalog& AudienceCatalog();

// One name of the language, for GET /v1/audiences:fields and the dashboard's condition builder.
struct AudienceFieldInfo {
  std::string name;
  VarType type;
  std::string group;        // "counts", "money", "time", "rfm", "predictions", ...
  std::string description;  // one sentence
};
// Every plain name of the catalog (aliases included), grouped and in documentation order.
const std::vector<AudienceFieldInfo>& AudienceFieldList();
// The functions: name, argument description, type and description.
struct AudienceFunctionInfo {
  std::string name;
  std::string argument;
  VarType type;
  std::string description;
};
const std::vector<AudienceFunctionInfo>& AudienceFunctionList();
// "number", "string" or "bool".
std::string_view VarTypeName(VarType type);

// What a condition may consult beyond the profile.
struct AudienceEnv {
  const Predictor* predictor = nullptr;  // null: predictions.* are NaN (-1 for the segment)
  std::shared_ptr<const TagRules> tags;  // null: tag("x") only sees anomaly flags
};

// Per-thread caches that make repeated evaluation cheaper: the bit of each tag("x") under the
// env's tag rules, and the pool code of each interest.*("x") argument per partition context
// (learnt from the first profile that holds the key; codes never change within a pool). Valid
// only while the contexts it saw live: keep one per scan thread, never across engines.
class AudienceEvalCache {
 public:
  AudienceEvalCache() = default;
  AudienceEvalCache(const AudienceEvalCache&) = delete;
  AudienceEvalCache& operator=(const AudienceEvalCache&) = delete;

 private:
  friend class AudienceSource;
  static constexpr int16_t kUnresolved = -2;
  // The rules tag_bits_ was resolved against (held, so that a reload cannot reuse the address).
  std::shared_ptr<const TagRules> tags_;
  std::vector<int16_t> tag_bits_;  // by call index: rule bit, -1 none, kUnresolved
  struct PoolCodes {
    const ProfileContext* ctx;
    std::vector<uint32_t> codes;  // by call index: pool code, StringPool::kNone = not yet known
  };
  std::vector<PoolCodes> pools_;
};

// Answers AudienceCatalog ids for one profile at one `now`. Every value is computed at most once
// (a small memo), predictions once for propensity and churn together, attributes parsed once.
// Holds references: profile, ctx, env (and cache) must outlive it. Usable on reader threads.
class AudienceSource final : public VariableSource {
 public:
  AudienceSource(const Profile& profile, const ProfileContext& ctx, int64_t now_ms,
                 const AudienceEnv& env, AudienceEvalCache* cache = nullptr);
  AudienceSource(const AudienceSource&) = delete;
  AudienceSource& operator=(const AudienceSource&) = delete;

  double Number(uint32_t id) const override;
  std::string_view String(uint32_t id) const override;
  bool Bool(uint32_t id) const override;

 private:
  static constexpr uint32_t kMemoSlots = 64;
  static constexpr uint32_t kMemoLimit = 48;  // beyond this many ids, values are not memoised
  static constexpr uint32_t kEmpty = 0xffffffffu;
  // The slot holding `id` or the empty slot where it belongs; nullptr when the memo is full.
  uint32_t* Slot(uint32_t id) const;
  double ComputeNumber(uint32_t id) const;
  std::string_view ComputeString(uint32_t id) const;
  bool ComputeBool(uint32_t id) const;
  double InterestShare(uint32_t call_index, int kind, std::string_view key) const;
  bool Tag(uint32_t call_index, uint8_t anomaly_mask, bool bot, std::string_view name) const;
  std::string_view Attribute(std::string_view key) const;
  void EnsureScores() const;
  // Sums over the 1, 7 and 30 UTC days ending at now (index 0, 1, 2), computed once.
  const ActivityTotals& Window(int index) const;

  ProfileFeatures features_;
  const Profile& profile_;
  const ProfileContext& ctx_;
  int64_t now_ms_;
  const AudienceEnv& env_;
  AudienceEvalCache* cache_;
  mutable uint32_t memo_used_ = 0;
  mutable uint32_t memo_ids_[kMemoSlots];
  mutable union Value {
    double number;
    bool flag;
    std::string_view text;
    Value() {}  // left uninitialised: a slot is read only after it was written
  } memo_values_[kMemoSlots];
  mutable std::optional<std::array<ActivityTotals, 3>> windows_;
  mutable bool scored_ = false;
  mutable double propensity_ = 0;
  mutable double churn_ = 0;
  mutable uint64_t attribute_serial_ = 0;         // see ThreadAttributeParser in the .cc
  mutable std::forward_list<std::string> texts_;  // owns attribute values handed out
};

class AudienceCondition {
 public:
  // Parses, resolves and type-checks `text` against AudienceCatalog(). On failure returns
  // InvalidArgument "column N: ..." exactly as Condition::Compile (position + expectation).
  static absl::StatusOr<AudienceCondition> Compile(std::string_view text);

  // Whether the profile belongs to the audience at `now_ms`. Thread-safe (immutable).
  bool Matches(const Profile& profile, const ProfileContext& ctx, int64_t now_ms,
               const AudienceEnv& env) const;
  // The same against a source the caller built (scans reuse its memo for export fields).
  bool Evaluate(const VariableSource& source) const;

  const std::string& text() const { return condition_.text(); }
  // Reads predictions.* (costs ~2 us per profile).
  bool uses_predictions() const { return uses_predictions_; }
  // Reads anything that changes with `now` or the population alone (windows, recency,
  // days_since_*, lifecycle, rfm scores, predictions): saved audiences must be reconciled
  // periodically.
  bool uses_time() const { return uses_time_; }
  std::span<const uint32_t> variables() const { return condition_.variables(); }

 private:
  explicit AudienceCondition(Condition condition);

  Condition condition_;  // the operands of each "and" ordered cheapest first
  bool uses_predictions_ = false;
  bool uses_time_ = false;
};

// Evaluates many conditions on one profile sharing one memo of variable values (each variable
// computed once per profile however many conditions read it). Bit i of the result is
// conditions[i] (at most 64; null entries are 0).
uint64_t MatchAll(std::span<const AudienceCondition* const> conditions, const Profile& profile,
                  const ProfileContext& ctx, int64_t now_ms, const AudienceEnv& env,
                  AudienceEvalCache* cache = nullptr);

// A value of one field for export and sample rows.
using AudienceValue = std::variant<double, std::string, bool>;

// A column of an export or sample: any catalog name or a call such as attribute("city") or
// interest.category("x").
class AudienceField {
 public:
  // InvalidArgument naming an unknown field, e.g. "unknown field 'monetery' (did you mean
  // 'monetary'?)".
  static absl::StatusOr<AudienceField> Parse(std::string_view field);
  // Parses each of `fields` (errors name the field).
  static absl::StatusOr<std::vector<AudienceField>> ParseAll(std::span<const std::string> fields);

  const std::string& name() const { return name_; }
  VarType type() const { return info_.type; }
  AudienceValue Value(const VariableSource& source) const;

  // `value` as JSON (NaN/inf as null) and as a CSV cell (RFC 4180 quoted when needed, NaN empty,
  // booleans true/false).
  static void Write(JsonWriter& w, const AudienceValue& value);
  static void AppendCsv(std::string& out, const AudienceValue& value);

 private:
  AudienceField(std::string name, VarInfo info) : name_(std::move(name)), info_(info) {}
  std::string name_;
  VarInfo info_;
};

// Appends `cell` to `out` as one RFC 4180 field: quoted (with doubled quotes) when it contains a
// comma, a quote, CR or LF, or starts/ends with a space.
void AppendCsvCell(std::string& out, std::string_view cell);

}  // namespace persona
