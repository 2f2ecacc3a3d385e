// Streaming reader of event files for `persona import`: reads large blocks, splits lines itself
// (LF or CRLF, a UTF-8 BOM on line 1, a last line without newline, blank lines skipped) and decodes
// them with the format's LineDecoder. Events of a batch point into the block they came from, which
// the batch keeps alive through EventBatch::input, so the hot path copies no strings.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "event/csv_formats.h"
#include "event/event.h"
#include "event/json_event.h"
#include "event/validate.h"

namespace persona {

struct EventReaderOptions {
  // Bytes per read(2); tests make it tiny to split lines across reads.
  size_t chunk_bytes = 4 << 20;
  // A line that grows past this without a newline is reported as one issue and skipped, so that a
  // binary or unterminated file cannot make the reader buffer it whole.
  size_t max_line_bytes = 64 << 20;
};

class EventReader {
 public:
  // Opens `path` ("-" = stdin) and, for formats with a header, reads and checks the header (see
  // LineDecoder::ReadHeader). Returns NotFound/PermissionDenied/InvalidArgument naming the path
  // or the header problem.
  static absl::StatusOr<std::unique_ptr<EventReader>> Open(
      const std::string& path, InputFormat format, const ValidationLimits& limits,
      const EventReaderOptions& options = EventReaderOptions());
  // Same, over text held in memory (tests, benchmarks, small uploads).
  static absl::StatusOr<std::unique_ptr<EventReader>> OpenText(
      std::string text, InputFormat format, const ValidationLimits& limits,
      const EventReaderOptions& options = EventReaderOptions());

  ~EventReader();
  EventReader(const EventReader&) = delete;
  EventReader& operator=(const EventReader&) = delete;

  // Replaces *out with the next batch: up to `max_events` events (a sequence line may add a few
  // more), with 1-based physical line numbers in out->source_index; bad lines are appended to
  // *issues, and they count toward max_events so that a file of garbage still returns in bounded
  // steps. A batch may be smaller at the end of a read block. Returns false, with *out empty,
  // once every line has been consumed; then status() tells a clean end from a read error.
  bool Next(size_t max_events, EventBatch* out, std::vector<EventIssue>* issues);

  // Bytes of the input consumed by Next so far (file_size() at the end), for a progress bar.
  uint64_t bytes_read() const { return consumed_bytes_; }
  // Size of the input when known (a regular file or text), else 0 (a pipe).
  uint64_t file_size() const { return file_size_; }
  // Physical lines consumed so far, header included.
  uint64_t lines_read() const { return line_number_; }
  // OK unless reading failed; reading stops at the first error.
  const absl::Status& status() const { return status_; }

 private:
  // Lets Open/OpenText use make_unique while keeping construction to them.
  struct ConstructionKey {
    explicit ConstructionKey() = default;
  };

 public:
  EventReader(ConstructionKey, InputFormat format, const ValidationLimits& limits,
              const EventReaderOptions& options);

 private:
  absl::Status ReadHeaderLine();
  // Takes the next line of the current block into *line (terminator, CR and line-1 BOM removed);
  // false when the block has no complete line left.
  bool TakeLine(std::string_view* line);
  // Starts a new block with the unfinished tail of the current one plus fresh input. Returns
  // false when the input is exhausted.
  bool Refill(std::vector<EventIssue>* issues);
  // Whether a read would return data without waiting (always for files and text).
  bool InputReady();
  // Reads up to n bytes from the source; 0 at end of input, -1 on error (status_ set).
  ssize_t ReadSource(char* dst, size_t n);

  LineDecoder decoder_;
  const EventReaderOptions options_;
  int fd_ = -1;
  bool owns_fd_ = false;
  bool regular_file_ = false;
  std::string text_;  // OpenText's input
  size_t text_pos_ = 0;
  std::string path_;

  std::shared_ptr<std::string> block_;
  size_t pos_ = 0;        // next unconsumed byte of block_
  size_t lines_end_ = 0;  // one past the last complete line in block_
  bool eof_ = false;
  uint64_t line_number_ = 0;
  uint64_t consumed_bytes_ = 0;
  uint64_t file_size_ = 0;
  absl::Status status_;
};

}  // namespace persona
