// `persona gen`: a synthetic behaviour stream of any length whose shape follows the real slices in
// ../shared/datasets (see gen/shape.h for the measurements), with planted ground truth — users
// whose interest shifts from category A to B at a known time, high spenders and bots — so tests
// can check that profiles follow reality.
//
// The stream is a pure function of the options: the same options give the same bytes. Memory is
// O(users + items) and does not grow with the number of events, so 100M+ events stream through.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "event/event.h"
#include "gen/catalog.h"
#include "gen/gen_options.h"
#include "gen/population.h"
#include "gen/random.h"
#include "gen/user_schedule.h"

namespace persona {

class EventGenerator {
 public:
  // Builds the catalog and the users. Options that ValidateGenOptions rejects are clamped into
  // range (at least 1 user, 2 top-level categories, as many items; fractions into [0, 1]).
  explicit EventGenerator(const GenOptions& options);
  ~EventGenerator();
  EventGenerator(const EventGenerator&) = delete;
  EventGenerator& operator=(const EventGenerator&) = delete;

  // Appends up to n events to *batch (strings in batch->arena; source_index = the event's position
  // in the stream, from 0). Returns false when the stream was already complete and nothing was
  // appended, so `while (gen.Next(n, &batch))` sees every event.
  bool Next(size_t n, EventBatch* batch);
  // Writes the next events as text lines in the options' format to `out` (header row for csv,
  // before the first event). Returns the number of events written (0 when done). The taobao
  // format carries views, carts, favs and purchases only; the other events are skipped, not
  // counted, and every format delivers options.events events.
  uint64_t WriteLines(size_t n, std::string* out);
  // Ground-truth records (JSON lines, see gen::SyntheticPopulation::AppendGroundTruth) for planted
  // users that appeared in the stream so far, in user order.
  void WriteGroundTruth(std::string* out) const;

  // Events delivered so far.
  uint64_t delivered() const { return delivered_; }
  const GenOptions& options() const { return options_; }
  const gen::SyntheticCatalog& catalog() const { return catalog_; }
  const gen::SyntheticPopulation& population() const { return population_; }
  // Heap bytes of all internal state. Constant while generating (plus the bounded buffer of late
  // events when late_fraction > 0); proves that nothing accumulates per event.
  size_t MemoryBytes() const;

 private:
  struct UserState;
  struct Draft;
  struct LateDraft;

  bool NextDraft(Draft* d);
  void Step(Draft* d);
  void StartSession(const gen::PlannedUser& p, UserState& s);
  void ChooseAction(const gen::PlannedUser& p, UserState& s, Draft* d);
  void EmitFollowUp(UserState& s, Draft* d);
  void ViewItem(const gen::PlannedUser& p, UserState& s, Draft* d);
  void ViewNewItem(const gen::PlannedUser& p, UserState& s, Draft* d);
  uint32_t PickLeaf(const gen::PlannedUser& p, const UserState& s);
  uint32_t PickItem(const gen::PlannedUser& p, uint32_t leaf);
  // Shifted users: whether one more off-target event would break the planted share, and the
  // leaf of the current phase (A before the shift time, B after).
  static bool ShiftTight(const UserState& s);
  static uint32_t ShiftTarget(const gen::PlannedUser& p, const UserState& s);
  int64_t InSessionGap(const gen::PlannedUser& p);
  int64_t NextSessionStart(const gen::PlannedUser& p, int64_t from_ms, double mean_wait_ms);
  // Renders the variable strings of `d` into scratch_ and returns the event viewing them.
  Event MakeEvent(const Draft& d);
  void AppendTaobaoLine(const Draft& d, std::string* out) const;

  const GenOptions options_;
  const gen::SyntheticCatalog catalog_;
  const gen::SyntheticPopulation population_;
  gen::Rng rng_;       // everything about the stream
  gen::Rng late_rng_;  // only which events arrive late, so late_fraction leaves the rest unchanged
  gen::QuantileSampler in_session_gap_ms_;
  std::vector<UserState> users_;
  gen::UserSchedule schedule_;
  std::vector<LateDraft> late_;  // min-heap on release time
  uint64_t generated_ = 0;       // drafts made (event_id sequence)
  uint64_t delivered_ = 0;
  bool header_written_ = false;
  std::string event_id_prefix_;
  char scratch_[1024];
};

// Runs the whole `persona gen` job: writes `out_path` ("-" = stdout) and, when non-empty,
// `truth_path`; prints a progress line to stderr every second when `progress` (events, events/s).
// InvalidArgument for bad options, Unavailable/Internal naming the path when a file cannot be
// opened or written.
absl::Status RunGen(const GenOptions& options, const std::string& out_path,
                    const std::string& truth_path, bool progress);

}  // namespace persona
