// HttpForwarder: sends a request on to another instance of the cluster and hands back its answer
// (a user's reads go to the instance that owns the user's partition; kafka/cluster_exchange.h
// finds it). A Boost.Beast HTTP/1.1 client on one I/O thread of its own, asynchronous end to end,
// so that a forwarded request never holds one of the server's I/O threads; connections to each
// instance are kept alive and reused (a reused connection the peer closed meanwhile is retried
// once on a new one).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "serve/http_server.h"

namespace persona::serve {

class HttpForwarder {
 public:
  HttpForwarder();
  ~HttpForwarder();  // answers requests still in flight with 502, then joins the thread
  HttpForwarder(const HttpForwarder&) = delete;
  HttpForwarder& operator=(const HttpForwarder&) = delete;

  // Sends `method target` with `headers` and `body` to `url` ("http://host:port") and calls
  // `done` (on the forwarder's thread) with the peer's response: its status, content type, body
  // and Retry-After, plus X-Persona-Served-By: url. A peer that cannot be reached or does not
  // answer within `timeout` gives 502 / 504 with a JSON reason.
  void Forward(const std::string& url, std::string method, std::string target,
               std::vector<std::pair<std::string, std::string>> headers, std::string body,
               std::chrono::milliseconds timeout, std::function<void(HttpResponse)> done);

  uint64_t forwarded() const;
  uint64_t failed() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace persona::serve
