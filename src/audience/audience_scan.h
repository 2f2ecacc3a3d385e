// Ad-hoc audience scans over every live profile: count, a uniform random sample with fields, one
// stable page of ids, CSV/NDJSON export and aggregate reports. Each is one parallel pass
// (Engine::ScanProfiles) with per-thread state merged at the end, so the scan loop takes no lock
// of its own.
//
//   AudienceScanner scanner(engine, predictor);
//   auto c = AudienceCondition::Compile("purchases >= 1 and lifecycle = \"dormant\"");
//   auto result = scanner.Query({.condition = &*c}, {.page_size = 50});
//   // ... result->ids, then Query again with .cursor = result->next_cursor
//
// Order of ids: ascending (Hash64(user_id), user_id). A hash order is stable (a user's position
// never changes), spreads new users uniformly, and needs no sorted index: a page is the
// page_size smallest keys greater than the cursor, selected with a bounded heap per thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "audience/audience_condition.h"
#include "audience/audience_report.h"
#include "common/json_writer.h"

namespace persona {

class Engine;
class Predictor;

// Which profiles: a condition, or a saved audience's membership bit.
struct AudienceSelector {
  const AudienceCondition* condition = nullptr;
  int saved_bit = -1;  // >= 0: membership bit of a saved audience (then `condition` is ignored)
};

struct AudienceQueryOptions {
  size_t sample = 10;               // at most kMaxSample
  size_t page_size = 100;           // at most kMaxPageSize; 0 = no ids
  std::string cursor;               // "" = first page; else a next_cursor of an earlier result
  std::vector<std::string> fields;  // columns of the sample rows
  uint64_t seed = 0;     // sample randomness, 0 = random; a seed gives the same sample every time
  uint32_t threads = 0;  // 0 = one per core
};

// One profile as a row: its id and the requested fields' values, in field order.
struct AudienceRow {
  std::string user_id;
  std::vector<AudienceValue> values;
};

struct AudienceQueryResult {
  uint64_t count = 0;    // matching profiles
  uint64_t scanned = 0;  // profiles evaluated
  std::vector<std::string> ids;
  std::string next_cursor;  // "" = this was the last page
  std::vector<std::string> fields;
  std::vector<AudienceRow> sample;  // in id order
  double took_ms = 0;
  int64_t as_of_ms = 0;

  // Writes "count", "scanned", "took_ms", "as_of", "as_of_ms", "ids", "next_cursor" (null on
  // the last page) and "sample" ([{"user_id", <field>: value, ...}]) into an open object.
  void WriteMembers(JsonWriter& w) const;
  // WriteMembers' parts: every member but "sample", and one sample row as an object.
  void WriteSummary(JsonWriter& w) const;
  void WriteRow(JsonWriter& w, const AudienceRow& row) const;
};

class AudienceScanner {
 public:
  static constexpr size_t kMaxSample = 1000;
  static constexpr size_t kMaxPageSize = 10000;

  // `engine` must outlive the scanner; `predictor` may be null (predictions.* are then NaN).
  AudienceScanner(Engine* engine, const Predictor* predictor);

  // One parallel pass: count, a uniform random sample of min(sample, count) members with the
  // requested fields (bottom-k by a seeded hash of the id: each thread keeps its k smallest,
  // merged), and the page of ids after `cursor` in the stable order. InvalidArgument for an empty
  // selector, a bad cursor, an unknown field or limits above kMaxSample / kMaxPageSize.
  absl::StatusOr<AudienceQueryResult> Query(const AudienceSelector& selector,
                                            const AudienceQueryOptions& options) const;

  // Rows (user_id + fields) after `cursor` in the same stable order as CSV (RFC 4180: header
  // line, CRLF-free "\n" line ends, quoting when needed, NaN as an empty cell) or NDJSON (one
  // object per line, NaN as null). `limit` 0 = every row (next_cursor is then ""); otherwise
  // *next_cursor is the cursor of the following page, "" when none. InvalidArgument for an
  // unknown format or field (naming it) or a bad cursor.
  absl::StatusOr<std::string> Export(const AudienceSelector& selector,
                                     std::span<const std::string> fields, std::string_view format,
                                     size_t limit, std::string_view cursor,
                                     std::string* next_cursor, uint32_t threads = 0) const;

  // The aggregate report of the audience (audience_report.h), noisy when options.epsilon is set.
  absl::StatusOr<AudienceReport> Report(const AudienceSelector& selector,
                                        const ReportOptions& options) const;
  // The exact sums a report is made of (MakeAudienceReport), with the profiles scanned and the
  // "now" they were evaluated at: what a cluster's instances combine.
  struct Aggregated {
    AudienceAggregates aggregates;
    uint64_t scanned = 0;
    int64_t as_of_ms = 0;
    double took_ms = 0;
  };
  absl::StatusOr<Aggregated> Aggregate(const AudienceSelector& selector,
                                       const ReportOptions& options) const;

 private:
  Engine* const engine_;
  const Predictor* const predictor_;
};

// The cursor of the page after the user `user_id` (exposed for tests): printable and URL-safe.
std::string AudienceCursor(std::string_view user_id);

// For combining several instances' answers to one query (a cluster's scatter-gather, where each
// instance scans the partitions it owns): the stable order of ids (pages, sample rows), a
// member's sample priority under `seed` (the sample is the `sample` smallest), and a random
// non-zero seed for the instances to share.
bool AudienceOrderLess(std::string_view a, std::string_view b);
uint64_t AudienceSamplePriority(std::string_view user_id, uint64_t seed);
uint64_t AudienceRandomSeed();

}  // namespace persona
