#include "serve/testing/http_client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace persona::serve::testing_util {
namespace {

using Clock = std::chrono::steady_clock;

int MillisLeft(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Debian's Abseil has its own string_view (not std::string_view), so the absl::strings helpers
// are avoided for views here.
bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(a[i])) !=
        absl::ascii_tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

bool HasHeaderIn(const HeaderList& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return true;
  }
  return false;
}

}  // namespace

std::string Response::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

bool Response::HasHeader(std::string_view name) const { return HasHeaderIn(headers, name); }

std::string Response::Describe() const {
  std::string_view b = body;
  const bool cut = b.size() > 2000;
  if (cut) b = b.substr(0, 2000);
  return absl::StrCat("HTTP ", status, " ", std::string(b), cut ? "..." : "");
}

HttpClient::HttpClient(std::string host, uint16_t port) : host_(std::move(host)), port_(port) {
  (void)Connect(host_, port_);
}

HttpClient::~HttpClient() { Close(); }

HttpClient::HttpClient(HttpClient&& other) noexcept
    : host_(std::move(other.host_)),
      port_(other.port_),
      fd_(std::exchange(other.fd_, -1)),
      buffer_(std::move(other.buffer_)),
      server_will_close_(other.server_will_close_),
      timeout_(other.timeout_) {}

HttpClient& HttpClient::operator=(HttpClient&& other) noexcept {
  if (this != &other) {
    Close();
    host_ = std::move(other.host_);
    port_ = other.port_;
    fd_ = std::exchange(other.fd_, -1);
    buffer_ = std::move(other.buffer_);
    server_will_close_ = other.server_will_close_;
    timeout_ = other.timeout_;
  }
  return *this;
}

absl::Status HttpClient::Connect(std::string_view host, uint16_t port) {
  Close();
  host_ = std::string(host);
  port_ = port;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port_text = std::to_string(port);
  if (int rc = getaddrinfo(host_.c_str(), port_text.c_str(), &hints, &found); rc != 0) {
    return absl::UnavailableError(absl::StrCat("resolve ", host_, ": ", gai_strerror(rc)));
  }
  std::string error = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      fd_ = fd;
      break;
    }
    error = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(found);
  if (fd_ < 0) {
    return absl::UnavailableError(absl::StrCat("connect ", host_, ":", port_, ": ", error));
  }
  return absl::OkStatus();
}

void HttpClient::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  buffer_.clear();
  server_will_close_ = false;
}

bool HttpClient::PeerClosed() const {
  if (fd_ < 0) return true;
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLERR | POLLHUP)) return true;
  char c;
  const ssize_t n = recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

absl::Status HttpClient::EnsureConnected() {
  // Bytes pending before a request was sent mean the server said something unasked (e.g. a 408
  // before closing an idle connection); that connection is finished too.
  if (fd_ < 0 || server_will_close_ || PeerClosed() || !buffer_.empty()) {
    if (host_.empty()) return absl::FailedPreconditionError("HttpClient: Connect first");
    return Connect(host_, port_);
  }
  return absl::OkStatus();
}

absl::Status HttpClient::SendRaw(std::string_view bytes) {
  if (fd_ < 0) {
    if (auto s = EnsureConnected(); !s.ok()) return s;
  }
  const auto deadline = Clock::now() + timeout_;
  while (!bytes.empty()) {
    pollfd p{fd_, POLLOUT, 0};
    const int ready = poll(&p, 1, MillisLeft(deadline));
    if (ready == 0) return absl::DeadlineExceededError("send timed out");
    if (ready < 0 && errno == EINTR) continue;
    const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return absl::UnavailableError(absl::StrCat("send: ", std::strerror(errno)));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status HttpClient::Fill(Clock::time_point deadline) {
  if (fd_ < 0) return absl::UnavailableError("not connected");
  while (true) {
    pollfd p{fd_, POLLIN, 0};
    const int ready = poll(&p, 1, MillisLeft(deadline));
    if (ready == 0) return absl::DeadlineExceededError("no response before the deadline");
    if (ready < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("poll: ", std::strerror(errno)));
    }
    char chunk[16384];
    const ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      return absl::OkStatus();
    }
    if (n == 0) return absl::UnavailableError("connection closed by the server");
    if (errno == EINTR || errno == EAGAIN) continue;
    return absl::UnavailableError(absl::StrCat("recv: ", std::strerror(errno)));
  }
}

absl::StatusOr<Response> HttpClient::ReadResponse() {
  return ReadResponseUntil(Clock::now() + timeout_, false);
}

absl::StatusOr<Response> HttpClient::ReadResponseUntil(Clock::time_point deadline,
                                                       bool head_request) {
  auto fail = [this](absl::Status s, std::string_view what) {
    // A half-read response leaves the stream unusable: drop the connection.
    const std::string partial = buffer_.substr(0, 300);
    Close();
    return absl::Status(s.code(), absl::StrCat(s.message(), " while reading ", std::string(what),
                                               partial.empty() ? "" : "; got: ", partial));
  };
  size_t header_end;
  while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (auto s = Fill(deadline); !s.ok()) return fail(s, "the response head");
  }
  Response r;
  std::string_view head(buffer_.data(), header_end);
  const size_t line_end = head.find("\r\n");
  std::string_view status_line = head.substr(0, line_end);
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12) {
    return fail(absl::DataLossError(absl::StrCat("bad status line: ", std::string(status_line))),
                "status");
  }
  {
    std::string_view code = status_line.substr(9, 3);
    if (std::from_chars(code.data(), code.data() + 3, r.status).ec != std::errc()) {
      return fail(absl::DataLossError(absl::StrCat("bad status line: ", std::string(status_line))),
                  "status");
    }
    r.reason = std::string(Trim(status_line.size() > 13 ? status_line.substr(13) : ""));
  }
  const bool http10 = status_line.starts_with("HTTP/1.0");
  std::string_view rest = line_end == std::string_view::npos ? "" : head.substr(line_end + 2);
  while (!rest.empty()) {
    size_t eol = rest.find("\r\n");
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? "" : rest.substr(eol + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      return fail(absl::DataLossError(absl::StrCat("bad header line: ", std::string(line))),
                  "headers");
    }
    r.headers.emplace_back(std::string(Trim(line.substr(0, colon))),
                           std::string(Trim(line.substr(colon + 1))));
  }
  buffer_.erase(0, header_end + 4);

  const std::string connection = absl::AsciiStrToLower(r.Header("Connection"));
  server_will_close_ = connection == "close" || (http10 && connection != "keep-alive");

  const bool no_body =
      head_request || r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200);
  const std::string transfer = absl::AsciiStrToLower(r.Header("Transfer-Encoding"));
  if (no_body) return r;
  if (transfer.find("chunked") != std::string::npos) {
    while (true) {
      size_t eol;
      while ((eol = buffer_.find("\r\n")) == std::string::npos) {
        if (auto s = Fill(deadline); !s.ok()) return fail(s, "a chunk size");
      }
      std::string_view size_text(buffer_.data(), eol);
      if (size_t semi = size_text.find(';'); semi != std::string_view::npos) {
        size_text = size_text.substr(0, semi);
      }
      size_text = Trim(size_text);
      uint64_t size = 0;
      auto [ptr, ec] =
          std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
      if (ec != std::errc() || ptr != size_text.data() + size_text.size()) {
        return fail(absl::DataLossError(absl::StrCat("bad chunk size: ", std::string(size_text))),
                    "chunks");
      }
      buffer_.erase(0, eol + 2);
      if (size == 0) {
        // Trailers (ignored) up to the empty line.
        while (true) {
          while ((eol = buffer_.find("\r\n")) == std::string::npos) {
            if (auto s = Fill(deadline); !s.ok()) return fail(s, "the trailers");
          }
          buffer_.erase(0, eol + 2);
          if (eol == 0) break;
        }
        return r;
      }
      while (buffer_.size() < size + 2) {
        if (auto s = Fill(deadline); !s.ok()) return fail(s, "a chunk");
      }
      r.body.append(buffer_, 0, size);
      buffer_.erase(0, size + 2);
    }
  }
  const std::string length_text = r.Header("Content-Length");
  if (!length_text.empty()) {
    uint64_t length = 0;
    auto [ptr, ec] =
        std::from_chars(length_text.data(), length_text.data() + length_text.size(), length);
    if (ec != std::errc() || ptr != length_text.data() + length_text.size()) {
      return fail(absl::DataLossError(absl::StrCat("bad Content-Length: ", length_text)), "body");
    }
    while (buffer_.size() < length) {
      if (auto s = Fill(deadline); !s.ok()) return fail(s, "the body");
    }
    r.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return r;
  }
  // Neither: the body runs to the end of the connection.
  while (true) {
    absl::Status s = Fill(deadline);
    if (absl::IsUnavailable(s)) break;
    if (!s.ok()) return fail(s, "a body delimited by close");
  }
  r.body = std::move(buffer_);
  Close();
  return r;
}

absl::StatusOr<Response> HttpClient::Request(std::string_view method, std::string_view target,
                                             std::string_view body, const HeaderList& headers) {
  if (auto s = EnsureConnected(); !s.ok()) return s;
  std::string req = absl::StrCat(std::string(method), " ", std::string(target), " HTTP/1.1\r\n");
  if (!HasHeaderIn(headers, "Host")) absl::StrAppend(&req, "Host: ", host_, ":", port_, "\r\n");
  const bool has_body_method = method == "POST" || method == "PUT" || method == "PATCH";
  if (!HasHeaderIn(headers, "Content-Length") && (!body.empty() || has_body_method)) {
    absl::StrAppend(&req, "Content-Length: ", body.size(), "\r\n");
  }
  if (!body.empty() && !HasHeaderIn(headers, "Content-Type")) {
    absl::StrAppend(&req, "Content-Type: application/json\r\n");
  }
  for (const auto& [k, v] : headers) {
    if (!v.empty()) absl::StrAppend(&req, k, ": ", v, "\r\n");
  }
  req += "\r\n";
  req += body;
  const auto deadline = Clock::now() + timeout_;
  if (auto s = SendRaw(req); !s.ok()) {
    // A server may answer early (413 on a declared length) and close before reading the whole
    // body; that answer is the response, if it arrived.
    if (fd_ >= 0) {
      auto early = ReadResponseUntil(Clock::now() + std::chrono::milliseconds(500), false);
      if (early.ok()) {
        Close();
        return early;
      }
    }
    Close();
    return s;
  }
  return ReadResponseUntil(deadline, method == "HEAD");
}

std::string HttpClient::ReadUntilClose(std::chrono::milliseconds timeout, bool* closed) {
  const auto deadline = Clock::now() + timeout;
  *closed = false;
  while (true) {
    absl::Status s = Fill(deadline);
    if (s.ok()) continue;
    *closed = absl::IsUnavailable(s);
    break;
  }
  std::string out = std::move(buffer_);
  buffer_.clear();
  if (*closed) Close();
  return out;
}

}  // namespace persona::serve::testing_util
