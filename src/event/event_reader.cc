#include "event/event_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

namespace persona {
namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

bool IsBlank(std::string_view line) {
  for (char c : line) {
    if (c != ' ' && c != '\t') return false;
  }
  return true;
}

absl::Status ErrnoStatus(int err, const std::string& what) {
  const std::string message = what + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InvalidArgumentError(message);
  }
}

EventReaderOptions WithSaneSizes(EventReaderOptions options) {
  if (options.chunk_bytes == 0) options.chunk_bytes = 1;  // a 0-byte read would look like EOF
  if (options.max_line_bytes < options.chunk_bytes) options.max_line_bytes = options.chunk_bytes;
  return options;
}

}  // namespace

EventReader::EventReader(ConstructionKey, InputFormat format, const ValidationLimits& limits,
                         const EventReaderOptions& options)
    : decoder_(format, limits), options_(WithSaneSizes(options)) {}

EventReader::~EventReader() {
  if (owns_fd_) ::close(fd_);
}

absl::StatusOr<std::unique_ptr<EventReader>> EventReader::Open(const std::string& path,
                                                               InputFormat format,
                                                               const ValidationLimits& limits,
                                                               const EventReaderOptions& options) {
  int fd = STDIN_FILENO;
  if (path != "-") {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "cannot open '" + path + "'");
  }
  uint64_t file_size = 0;
  bool regular_file = false;
  struct stat st;
  if (::fstat(fd, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      if (fd != STDIN_FILENO) ::close(fd);
      return absl::InvalidArgumentError("'" + path + "' is a directory");
    }
    if (S_ISREG(st.st_mode)) {
      regular_file = true;
      file_size = static_cast<uint64_t>(st.st_size);
      ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    }
  }
  EventReaderOptions sized = options;
  // A small file needs no 4 MiB block (one more byte lets the first read see end of file).
  if (file_size != 0) sized.chunk_bytes = std::min<uint64_t>(sized.chunk_bytes, file_size + 1);
  auto reader = std::make_unique<EventReader>(ConstructionKey(), format, limits, sized);
  reader->fd_ = fd;
  reader->owns_fd_ = fd != STDIN_FILENO;
  reader->path_ = path;
  reader->file_size_ = file_size;
  reader->regular_file_ = regular_file;
  if (absl::Status s = reader->ReadHeaderLine(); !s.ok()) return s;
  return reader;
}

absl::StatusOr<std::unique_ptr<EventReader>> EventReader::OpenText(
    std::string text, InputFormat format, const ValidationLimits& limits,
    const EventReaderOptions& options) {
  EventReaderOptions sized = options;
  sized.chunk_bytes = std::min(sized.chunk_bytes, text.size() + 1);
  auto reader = std::make_unique<EventReader>(ConstructionKey(), format, limits, sized);
  reader->path_ = "<text>";
  reader->file_size_ = text.size();
  reader->text_ = std::move(text);
  if (absl::Status s = reader->ReadHeaderLine(); !s.ok()) return s;
  return reader;
}

absl::Status EventReader::ReadHeaderLine() {
  if (!decoder_.has_header()) return absl::OkStatus();
  std::vector<EventIssue> long_line;
  std::string_view header;
  if (!Refill(&long_line) || !TakeLine(&header)) {
    if (!status_.ok()) return status_;
    return absl::InvalidArgumentError("empty input: expected a " +
                                      std::string(InputFormatName(decoder_.format())) +
                                      " header row");
  }
  if (!long_line.empty()) return absl::InvalidArgumentError("header line is too long");
  if (header.empty()) {
    return absl::InvalidArgumentError("line 1 is empty: expected a " +
                                      std::string(InputFormatName(decoder_.format())) +
                                      " header row");
  }
  return decoder_.ReadHeader(header);
}

ssize_t EventReader::ReadSource(char* dst, size_t n) {
  if (fd_ < 0) {
    const size_t take = std::min(n, text_.size() - text_pos_);
    std::memcpy(dst, text_.data() + text_pos_, take);
    text_pos_ += take;
    return static_cast<ssize_t>(take);
  }
  while (true) {
    const ssize_t got = ::read(fd_, dst, n);
    if (got >= 0) return got;
    if (errno == EINTR) continue;
    status_ = ErrnoStatus(errno, "cannot read '" + path_ + "'");
    return -1;
  }
}

bool EventReader::Refill(std::vector<EventIssue>* issues) {
  if (eof_) return false;  // at end of input the last block's lines all counted as complete
  auto next = std::make_shared<std::string>();
  if (block_ && lines_end_ < block_->size()) {
    next->reserve(block_->size() - lines_end_ + options_.chunk_bytes);
    next->append(*block_, lines_end_);
  }
  // Read until the block holds a complete line and either chunk_bytes of fresh input or all the
  // input that is ready now (so a slow live pipe is not held back waiting for a full block), or
  // until the input ends.
  size_t fresh = 0;
  bool has_line = false;
  while (true) {
    const size_t want =
        fresh < options_.chunk_bytes ? options_.chunk_bytes - fresh : options_.chunk_bytes;
    const size_t old_size = next->size();
    next->resize(old_size + want);
    const ssize_t got = ReadSource(next->data() + old_size, want);
    next->resize(old_size + (got > 0 ? got : 0));
    if (got <= 0) {
      eof_ = true;
      break;
    }
    fresh += got;
    if (!has_line) has_line = std::memchr(next->data() + old_size, '\n', got) != nullptr;
    if (has_line) {
      if (fresh >= options_.chunk_bytes || !InputReady()) break;
      continue;
    }
    if (next->size() <= options_.max_line_bytes) continue;

    // An over-long line: report it once, then drop bytes up to its newline.
    issues->push_back(MakeEventIssue(
        line_number_ + 1,
        Rejection{"", "line longer than " + std::to_string(options_.max_line_bytes) + " bytes"},
        *next));
    ++line_number_;
    consumed_bytes_ += next->size();
    next->clear();
    std::string skip(options_.chunk_bytes, '\0');
    while (true) {
      const ssize_t n = ReadSource(skip.data(), skip.size());
      if (n <= 0) {
        eof_ = true;
        break;
      }
      const char* nl = static_cast<const char*>(std::memchr(skip.data(), '\n', n));
      if (nl == nullptr) {
        consumed_bytes_ += n;
        continue;
      }
      const size_t after = nl + 1 - skip.data();
      consumed_bytes_ += after;
      next->append(skip.data() + after, n - after);
      break;
    }
    if (eof_) break;
    fresh = next->size();
    has_line = std::memchr(next->data(), '\n', next->size()) != nullptr;
    if (has_line && (fresh >= options_.chunk_bytes || !InputReady())) break;
  }
  block_ = std::move(next);
  pos_ = 0;
  if (eof_) {
    lines_end_ = block_->size();
  } else {
    const char* last_nl = static_cast<const char*>(::memrchr(block_->data(), '\n', block_->size()));
    lines_end_ = last_nl + 1 - block_->data();
  }
  return lines_end_ > 0;
}

bool EventReader::InputReady() {
  if (fd_ < 0) return text_pos_ < text_.size();
  if (regular_file_) return true;  // reads of a file never wait
  pollfd ready{fd_, POLLIN, 0};
  return ::poll(&ready, 1, 0) > 0;
}

bool EventReader::TakeLine(std::string_view* line) {
  if (pos_ >= lines_end_) return false;
  const char* base = block_->data();
  const char* nl = static_cast<const char*>(std::memchr(base + pos_, '\n', lines_end_ - pos_));
  const size_t end = nl ? static_cast<size_t>(nl - base) : lines_end_;
  *line = std::string_view(base + pos_, end - pos_);
  const size_t next_pos = nl ? end + 1 : end;
  consumed_bytes_ += next_pos - pos_;
  pos_ = next_pos;
  ++line_number_;
  if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
  if (line_number_ == 1 && line->substr(0, kUtf8Bom.size()) == kUtf8Bom) {
    line->remove_prefix(kUtf8Bom.size());
  }
  return true;
}

bool EventReader::Next(size_t max_events, EventBatch* out, std::vector<EventIssue>* issues) {
  *out = EventBatch();
  out->price_optional = InputFormatLacksPrice(decoder_.format());
  if (max_events == 0) max_events = 1;
  // Growing the vector event by event cost ~1% of an import in reallocation copies.
  out->events.reserve(std::min<size_t>(max_events, 65536));
  out->source_index.reserve(std::min<size_t>(max_events, 65536));
  const uint64_t first_line = line_number_;
  size_t work = 0;  // events plus issues produced by this call
  std::string_view line;
  while (work < max_events) {
    if (!TakeLine(&line)) {
      // A batch keeps one block alive, so it never spans two: hand over what we have.
      if (!out->events.empty()) break;
      const size_t issues_before = issues->size();
      const bool more = Refill(issues);
      work += issues->size() - issues_before;
      if (!more) break;
      continue;
    }
    if (IsBlank(line)) continue;
    const size_t issues_before = issues->size();
    work += decoder_.DecodeLine(line, line_number_, out, issues);
    work += issues->size() - issues_before;
  }
  if (!out->events.empty()) out->input = block_;
  return line_number_ != first_line;
}

}  // namespace persona
