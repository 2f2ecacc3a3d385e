// HttpServer: an HTTP/1.1 server (Boost.Beast on Asio) that hands each parsed request to one
// handler and writes the response the handler gives back, possibly later and from another thread
// (ingest answers from a partition thread once events are durable). Keep-alive, pipelining-safe
// (one request in flight per connection, answered in order), optional TLS (OpenSSL) when a
// certificate is configured.
//
// Protection it gives every route: a body limit (413 before the body is read), a header limit
// (431), a deadline for reading a whole request and for writing a response (slow clients are
// disconnected, not waited for), an idle keep-alive timeout, a connection cap (503 + close), and
// JSON error bodies {error, detail} for everything it rejects itself. Malformed HTTP gets 400 and
// the connection is closed; nothing a client sends can crash it.
//
// Threading: `threads` I/O threads, each running its own io_context (connections are spread over
// them round-robin by the acceptor), so a request's handler runs on the thread that read it and
// no lock is shared between connections.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace persona::serve {

struct HttpServerOptions {
  std::string bind_address = "127.0.0.1";
  uint16_t port = 8080;  // 0 = any free port (port() tells which)
  uint32_t threads = 0;  // 0 = number of cores
  uint64_t max_body_bytes = 16 << 20;
  uint32_t max_header_bytes = 16 << 10;
  uint32_t max_connections = 10000;
  // Whole request (headers + body) must arrive within this time once its first byte did.
  std::chrono::milliseconds read_timeout{10000};
  std::chrono::milliseconds write_timeout{10000};
  // A keep-alive connection with no request in progress is closed after this.
  std::chrono::milliseconds idle_timeout{60000};
  // TLS: both set = HTTPS only on this port. PEM files.
  std::string tls_cert_file;
  std::string tls_key_file;
};

// A request as the handler sees it. Every view stays valid until the handler's Responder is
// called (the connection keeps the request alive until then), so a handler that answers later
// must copy what it needs after that point, not before.
struct HttpRequest {
  std::string_view method;  // "GET", "POST", ... as sent
  std::string_view target;  // raw request-target: "/v1/users/u%201/profile?fields=stats"
  std::string_view path;    // target up to '?', still percent-encoded
  std::string_view query;   // after '?', "" if none
  std::string_view body;
  std::string_view remote;  // "ip:port" of the peer
  bool tls = false;
  // Case-insensitive header lookup; "" when absent.
  std::function<std::string_view(std::string_view)> header;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (Retry-After, ...)
  // Route template for logs and metrics ("/v1/users/{id}/profile"); set by the handler.
  std::string route;
  // Who made the request (the API key's name), for the access log; "" when anonymous.
  std::string principal;
  bool close = false;  // close the connection after writing
};

// Called exactly once per request, from any thread.
using Responder = std::function<void(HttpResponse)>;
using HttpHandler = std::function<void(const HttpRequest&, Responder)>;

// One finished exchange, for access logs and metrics. Called on an I/O thread after the response
// was written (or the connection failed while writing it: status is still what was sent).
struct HttpExchange {
  std::string_view method;
  std::string_view target;
  std::string_view route;  // HttpResponse::route, or "-" for errors the server answered itself
  std::string_view remote;
  std::string_view principal;  // HttpResponse::principal
  int status = 0;
  uint64_t request_bytes = 0;   // body bytes
  uint64_t response_bytes = 0;  // body bytes
  std::chrono::nanoseconds duration{0};  // from the request's first byte to the response written
};
using ExchangeObserver = std::function<void(const HttpExchange&)>;

class HttpServer {
 public:
  // Binds and listens (errors: port in use, bad address, unreadable certificate or key), then
  // starts the I/O threads. `observer` may be empty.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                           HttpHandler handler,
                                                           ExchangeObserver observer = {});
  ~HttpServer();  // Stop(0) if still running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;
  // Graceful stop: closes the listening socket at once, lets requests already being read or
  // handled finish and their responses be written (connections are closed after that response),
  // closes idle keep-alive connections, and after `drain` forcibly closes what is left. Returns
  // when every I/O thread has exited. Idempotent.
  void Stop(std::chrono::milliseconds drain);
  // Open connections right now (gauge for /metrics).
  uint64_t connections() const;

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace persona::serve
