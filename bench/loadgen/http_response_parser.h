// HttpResponseParser: an incremental parser of HTTP/1.x responses for the load generator. It only
// extracts what a benchmark needs (status, whether the server keeps the connection, the body when
// asked for) and frames the message: Content-Length, chunked transfer coding, or read-until-close.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace persona::loadgen {

class HttpResponseParser {
 public:
  enum class State { kIncomplete, kComplete, kError };

  // Starts a new response. `head_request` responses have no body whatever their headers say;
  // `keep_body` makes body() return the payload (chunk framing removed), else it is skipped.
  void Reset(bool head_request, bool keep_body);

  // Consumes bytes from `data` and returns how many were used; state() tells whether the response
  // is complete. Bytes after a complete response are not consumed (the caller keeps them for the
  // next one, although the load generator never pipelines).
  size_t Feed(std::string_view data);
  // The peer closed the connection: completes a read-until-close body, else an error.
  void FeedEof();

  State state() const { return state_; }
  int status() const { return status_; }
  // False when the server said "Connection: close", or HTTP/1.0 without keep-alive.
  bool keep_alive() const { return keep_alive_; }
  const std::string& body() const { return body_; }
  const char* error() const { return error_; }

 private:
  enum class Phase { kHead, kBody, kChunkSize, kChunkData, kChunkDataEnd, kTrailers, kUntilClose };
  bool ParseHead(std::string_view head);
  void Fail(const char* why) {
    state_ = State::kError;
    error_ = why;
  }

  State state_ = State::kIncomplete;
  Phase phase_ = Phase::kHead;
  bool head_request_ = false;
  bool keep_body_ = false;
  int status_ = 0;
  bool keep_alive_ = true;
  uint64_t remaining_ = 0;  // body or chunk bytes still expected
  std::string line_;        // partial head / chunk-size line across Feed calls
  std::string body_;
  const char* error_ = "";
};

}  // namespace persona::loadgen
