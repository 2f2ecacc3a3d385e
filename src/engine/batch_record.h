// The log record a partition writes for one group-committed batch of accepted events
// (format in docs/log_format.md, "Batch record"). Each event carries the log position of the
// same user's previous event, so a user's timeline is a backward chain through the log that costs
// the profile 8 bytes (Profile::timeline_head) and the log a varint per event.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "event/event.h"

namespace persona {

// A log position: (batch seq, index within the batch). 0 means "none".
inline uint64_t MakeLogPosition(uint64_t seq, uint32_t index) { return (seq << 16) | index; }
inline uint64_t PositionSeq(uint64_t pos) { return pos >> 16; }
inline uint32_t PositionIndex(uint64_t pos) { return static_cast<uint32_t>(pos & 0xffff); }
inline constexpr uint32_t kMaxBatchEvents = 65535;

class BatchRecordWriter {
 public:
  void Clear();
  void Add(const Event& e, uint64_t prev_position);
  uint32_t count() const { return count_; }
  // The finished record (header + events).
  std::string_view Finish();

 private:
  std::string body_;
  std::string out_;
  uint32_t count_ = 0;
};

struct RecordedEvent {
  Event event;             // views into the record bytes
  uint64_t prev_position;  // previous event of the same user, 0 if none
};

// Erasure replaces a user's events in the log by redacted slots: an event with an empty user id
// and no content, keeping its `prev` position so the record's layout (and every other user's
// timeline positions) stay valid. Replay and timelines skip redacted slots.
inline bool IsRedacted(const Event& e) { return e.user_id.empty(); }

// Re-encodes `record` with the events at `indexes` redacted. False when the record is corrupt.
bool RedactBatchRecord(std::string_view record, const std::vector<uint32_t>& indexes,
                       std::string* out);

// Decodes a batch record; false when it is truncated or corrupt (never crashes on garbage).
bool DecodeBatchRecord(std::string_view record, std::vector<RecordedEvent>* out);

}  // namespace persona
