// What happened to a submitted batch: how many events were accepted (durable and applied), how many
// were dropped as duplicates, and which were rejected, with their position in the submission and
// the reason.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace persona {

struct RejectedEvent {
  uint64_t position;  // EventBatch::source_index of the event
  std::string field;
  std::string rule;
};

struct IngestOutcome {
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
  std::vector<RejectedEvent> rejected;

  void Merge(IngestOutcome&& other) {
    accepted += other.accepted;
    duplicates += other.duplicates;
    for (auto& r : other.rejected) rejected.push_back(std::move(r));
  }
};

}  // namespace persona
