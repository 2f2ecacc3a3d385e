// A dead letter: input Persona refused, kept so that an operator can see what was sent and why it
// was rejected, export it, fix the producer and replay. Stored by the Store (store/store.h) in its
// `deadletter` column family; encoded by store/dead_letter_codec.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace persona {

// Longer `raw` inputs are cut to this many bytes when stored (at a UTF-8 character boundary):
// enough to see what went wrong, bounded so a flood of huge bad requests cannot fill the disk.
inline constexpr size_t kMaxDeadLetterRawBytes = 4096;

struct DeadLetter {
  int64_t received_ms = 0;  // wall clock when rejected
  std::string source;       // "import:/path/file.csv", "http", "partition"
  uint64_t position = 0;    // line number (files) or index in the request body
  std::string user_id;      // when known (for erasure), else empty
  std::string field, rule;  // the reason
  std::string raw;          // the offending input (truncated to 4 KiB)
};

// A dead letter as listed back: `id` is its key in hex, ordered like the letters (by time), and
// is what ListDeadLetters takes to page.
struct StoredDeadLetter {
  std::string id;
  DeadLetter letter;
};

}  // namespace persona
