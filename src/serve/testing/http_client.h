// HttpClient: a small blocking HTTP/1.1 client over a POSIX TCP socket, for tests that talk to a
// real `persona serve`. One connection, reused across requests (keep-alive) and re-opened when the
// server closed it; every call has a deadline, so a server that stops answering fails the test
// instead of hanging it. Raw mode sends arbitrary bytes (half requests, malformed HTTP) and reads
// whatever comes back.
//
// It deliberately never retries a request: a test must see a dropped connection, not hide it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace persona::serve::testing_util {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct Response {
  int status = 0;
  std::string reason;
  HeaderList headers;  // in the order received, names as sent
  std::string body;

  // The first header named `name` (case-insensitive), "" when absent.
  std::string Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
  // "HTTP 404 {body}" for assertion messages; the body is cut to 2000 bytes.
  std::string Describe() const;
};

class HttpClient {
 public:
  HttpClient() = default;
  // Connects at once; a failure surfaces as an error of the first Request.
  HttpClient(std::string host, uint16_t port);
  ~HttpClient();
  HttpClient(HttpClient&& other) noexcept;
  HttpClient& operator=(HttpClient&& other) noexcept;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Opens a new connection (closing any open one). Unavailable when nothing listens there.
  absl::Status Connect(std::string_view host, uint16_t port);
  void Close();
  bool connected() const { return fd_ >= 0; }

  // Deadline of each Request / raw read, from its start (default 10 s).
  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }
  std::chrono::milliseconds timeout() const { return timeout_; }

  // Sends one request and reads its response. Adds Host, and Content-Length whenever there is a
  // body or the method is POST/PUT/PATCH; adds Content-Type: application/json for a non-empty body
  // unless `headers` names one. A header given with an empty value is not sent (to test a missing
  // Content-Type). Reconnects first when the server closed the connection after the previous
  // response. DeadlineExceeded on timeout, Unavailable when the connection drops before a whole
  // response arrived.
  absl::StatusOr<Response> Request(std::string_view method, std::string_view target,
                                   std::string_view body = {}, const HeaderList& headers = {});
  absl::StatusOr<Response> Get(std::string_view target, const HeaderList& headers = {}) {
    return Request("GET", target, {}, headers);
  }
  absl::StatusOr<Response> Post(std::string_view target, std::string_view body,
                                const HeaderList& headers = {}) {
    return Request("POST", target, body, headers);
  }

  // Raw mode. SendRaw writes the bytes as they are (connecting first if needed).
  absl::Status SendRaw(std::string_view bytes);
  // Reads one response (status line, headers, body by Content-Length or chunked) off the
  // connection, e.g. the answer to a request sent with SendRaw.
  absl::StatusOr<Response> ReadResponse();
  // Reads until the server closes the connection or `timeout` passes; returns everything read
  // (including bytes left over from earlier reads). `*closed` tells which of the two happened.
  std::string ReadUntilClose(std::chrono::milliseconds timeout, bool* closed);

 private:
  // Reads at least one more byte into buffer_ before `deadline`; Unavailable on EOF.
  absl::Status Fill(std::chrono::steady_clock::time_point deadline);
  absl::StatusOr<Response> ReadResponseUntil(std::chrono::steady_clock::time_point deadline,
                                             bool head_request);
  // True when the server has closed the connection (EOF pending) without us having sent anything.
  bool PeerClosed() const;
  absl::Status EnsureConnected();

  std::string host_;
  uint16_t port_ = 0;
  int fd_ = -1;
  std::string buffer_;  // bytes received but not consumed yet
  bool server_will_close_ = false;
  std::chrono::milliseconds timeout_{10000};
};

}  // namespace persona::serve::testing_util
