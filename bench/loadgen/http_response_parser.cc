#include "http_response_parser.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace persona::loadgen {
namespace {

constexpr size_t kMaxHeadBytes = 64 << 10;
constexpr size_t kMaxLineBytes = 4096;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool ContainsTokenIgnoreCase(std::string_view value, std::string_view token) {
  // Header values like "keep-alive, Upgrade": compare each comma-separated element.
  while (!value.empty()) {
    const size_t comma = value.find(',');
    std::string_view part = value.substr(0, comma);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    if (EqualsIgnoreCase(part, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

void HttpResponseParser::Reset(bool head_request, bool keep_body) {
  state_ = State::kIncomplete;
  phase_ = Phase::kHead;
  head_request_ = head_request;
  keep_body_ = keep_body;
  status_ = 0;
  keep_alive_ = true;
  remaining_ = 0;
  line_.clear();
  body_.clear();
  error_ = "";
}

bool HttpResponseParser::ParseHead(std::string_view head) {
  // Status line: HTTP/1.1 200 OK
  const size_t eol = head.find("\r\n");
  const std::string_view status_line = head.substr(0, eol);
  if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/") {
    Fail("malformed status line");
    return false;
  }
  const bool http10 = status_line.substr(5, 3) == "1.0";
  keep_alive_ = !http10;
  const std::string_view code = status_line.substr(9, 3);
  if (std::from_chars(code.data(), code.data() + 3, status_).ec != std::errc() || status_ < 100) {
    Fail("malformed status code");
    return false;
  }
  bool chunked = false;
  bool has_length = false;
  uint64_t length = 0;
  std::string_view rest = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
  while (!rest.empty()) {
    const size_t next = rest.find("\r\n");
    const std::string_view line = rest.substr(0, next);
    rest = next == std::string_view::npos ? std::string_view() : rest.substr(next + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = Trim(line.substr(colon + 1));
    if (EqualsIgnoreCase(name, "content-length")) {
      if (std::from_chars(value.data(), value.data() + value.size(), length).ec != std::errc()) {
        Fail("malformed Content-Length");
        return false;
      }
      has_length = true;
    } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
      chunked = ContainsTokenIgnoreCase(value, "chunked");
    } else if (EqualsIgnoreCase(name, "connection")) {
      if (ContainsTokenIgnoreCase(value, "close")) keep_alive_ = false;
      if (ContainsTokenIgnoreCase(value, "keep-alive")) keep_alive_ = true;
    }
  }
  const bool no_body = head_request_ || status_ == 204 || status_ == 304 || status_ < 200;
  if (no_body) {
    state_ = State::kComplete;
  } else if (chunked) {
    phase_ = Phase::kChunkSize;
  } else if (has_length) {
    remaining_ = length;
    phase_ = Phase::kBody;
    if (length == 0) state_ = State::kComplete;
  } else {
    phase_ = Phase::kUntilClose;
    keep_alive_ = false;
  }
  return true;
}

size_t HttpResponseParser::Feed(std::string_view data) {
  size_t used = 0;
  while (state_ == State::kIncomplete && used < data.size()) {
    const std::string_view in = data.substr(used);
    switch (phase_) {
      case Phase::kHead: {
        // Search only where the terminator can newly appear: the old tail plus the new bytes.
        const size_t old = line_.size();
        const size_t take = std::min(in.size(), kMaxHeadBytes + 4 - old);
        line_.append(in.substr(0, take));
        const size_t end = line_.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
        if (end == std::string::npos) {
          used += take;
          if (line_.size() > kMaxHeadBytes) Fail("response head too large");
          break;
        }
        used += end + 4 - old;
        const std::string head = line_.substr(0, end + 2);
        line_.clear();
        ParseHead(head);
        break;
      }
      case Phase::kBody:
      case Phase::kChunkData: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size()));
        if (keep_body_) body_.append(in.substr(0, n));
        used += n;
        remaining_ -= n;
        if (remaining_ == 0) {
          if (phase_ == Phase::kBody) {
            state_ = State::kComplete;
          } else {
            phase_ = Phase::kChunkDataEnd;
          }
        }
        break;
      }
      case Phase::kUntilClose:
        if (keep_body_) body_.append(in);
        used += in.size();
        break;
      case Phase::kChunkSize:
      case Phase::kChunkDataEnd:
      case Phase::kTrailers: {
        const size_t nl = in.find('\n');
        const size_t take = nl == std::string_view::npos ? in.size() : nl + 1;
        line_.append(in.substr(0, take));
        used += take;
        if (line_.size() > kMaxLineBytes) {
          Fail("chunk line too long");
          break;
        }
        if (nl == std::string_view::npos) break;
        const std::string_view line = Trim(std::string_view(line_).substr(0, line_.size() - 1));
        if (phase_ == Phase::kChunkDataEnd) {
          if (!line.empty()) Fail("missing CRLF after chunk");
          phase_ = Phase::kChunkSize;
        } else if (phase_ == Phase::kTrailers) {
          if (line.empty()) state_ = State::kComplete;
        } else {
          const std::string_view hex = line.substr(0, line.find(';'));
          uint64_t size = 0;
          const auto r = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
          if (hex.empty() || r.ec != std::errc() || r.ptr != hex.data() + hex.size()) {
            Fail("malformed chunk size");
          } else if (size == 0) {
            phase_ = Phase::kTrailers;
          } else {
            remaining_ = size;
            phase_ = Phase::kChunkData;
          }
        }
        line_.clear();
        break;
      }
    }
  }
  return used;
}

void HttpResponseParser::FeedEof() {
  if (state_ != State::kIncomplete) return;
  if (phase_ == Phase::kUntilClose) {
    state_ = State::kComplete;
  } else {
    Fail("connection closed mid-response");
  }
}

}  // namespace persona::loadgen
