#include "serve/http_forwarder.h"

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <thread>

#include "serve/json_response.h"

namespace persona::serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr size_t kIdlePerPeer = 16;
constexpr uint64_t kMaxResponseBytes = 256ull << 20;

struct Peer {
  std::string host, port;
};

bool ParseUrl(const std::string& url, Peer* peer) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) return false;
  std::string rest = url.substr(kScheme.size());
  if (const size_t slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  if (rest.empty()) return false;
  const size_t colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']') == std::string::npos) {
    peer->host = rest.substr(0, colon);
    peer->port = rest.substr(colon + 1);
  } else {
    peer->host = rest;
    peer->port = "80";
  }
  if (peer->host.size() > 2 && peer->host.front() == '[' && peer->host.back() == ']') {
    peer->host = peer->host.substr(1, peer->host.size() - 2);
  }
  return !peer->host.empty() && !peer->port.empty();
}

}  // namespace

struct HttpForwarder::Impl {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard = asio::make_work_guard(io);
  std::thread thread;
  // Idle keep-alive connections by "host:port"; touched on the I/O thread only.
  std::map<std::string, std::vector<std::unique_ptr<beast::tcp_stream>>> idle;
  std::atomic<uint64_t> forwarded{0}, failed{0};

  struct Call : std::enable_shared_from_this<Call> {
    Impl* impl;
    std::string url, key;
    Peer peer;
    http::request<http::string_body> request;
    std::chrono::milliseconds timeout;
    std::function<void(HttpResponse)> done;
    std::unique_ptr<beast::tcp_stream> stream;
    tcp::resolver resolver;
    beast::flat_buffer buffer;
    std::optional<http::response_parser<http::string_body>> parser;
    bool reused = false;

    Call(Impl* i, asio::io_context& io) : impl(i), resolver(io) {}

    void Start() {
      auto& pool = impl->idle[key];
      if (!pool.empty()) {
        stream = std::move(pool.back());
        pool.pop_back();
        reused = true;
        Send();
        return;
      }
      Connect();
    }

    void Connect() {
      reused = false;
      stream = std::make_unique<beast::tcp_stream>(impl->io);
      stream->expires_after(timeout);
      resolver.async_resolve(
          peer.host, peer.port,
          [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type results) {
            if (ec) return self->Fail(502, "resolving " + self->url + ": " + ec.message());
            self->stream->async_connect(
                results, [self](beast::error_code ec2, const tcp::endpoint&) {
                  if (ec2)
                    return self->Fail(502, "connecting to " + self->url + ": " + ec2.message());
                  self->Send();
                });
          });
    }

    void Send() {
      stream->expires_after(timeout);
      buffer.clear();
      parser.emplace();
      parser->body_limit(kMaxResponseBytes);
      http::async_write(*stream, request,
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          if (ec) return self->Retry(ec);
                          http::async_read(*self->stream, self->buffer, *self->parser,
                                           [self](beast::error_code ec2, size_t) {
                                             if (ec2) return self->Retry(ec2);
                                             self->Finish();
                                           });
                        });
    }

    // A pooled connection the peer closed while idle fails at once: try a new one, once.
    void Retry(beast::error_code ec) {
      if (reused && ec != beast::error::timeout) {
        Connect();
        return;
      }
      Fail(ec == beast::error::timeout ? 504 : 502, "forwarding to " + url + ": " + ec.message());
    }

    void Finish() {
      http::response<http::string_body> res = parser->release();
      HttpResponse out;
      out.status = static_cast<int>(res.result_int());
      out.content_type = std::string(res[http::field::content_type]);
      out.body = std::move(res.body());
      if (auto it = res.find(http::field::retry_after); it != res.end()) {
        out.headers.emplace_back("Retry-After", std::string(it->value()));
      }
      for (const char* name : {"Content-Disposition", "X-Persona-Next-Cursor"}) {
        if (auto it = res.find(name); it != res.end()) {
          out.headers.emplace_back(name, std::string(it->value()));
        }
      }
      out.headers.emplace_back("X-Persona-Served-By", url);
      if (res.keep_alive()) {
        auto& pool = impl->idle[key];
        if (pool.size() < kIdlePerPeer) {
          stream->expires_never();
          pool.push_back(std::move(stream));
        }
      }
      impl->forwarded.fetch_add(1, std::memory_order_relaxed);
      done(std::move(out));
    }

    void Fail(int status, const std::string& detail) {
      impl->failed.fetch_add(1, std::memory_order_relaxed);
      HttpResponse r = JsonError(status, status == 504 ? "owner_timeout" : "owner_unreachable",
                                 detail + " (the instance that owns this user's partition)");
      r.headers.emplace_back("Retry-After", "1");
      done(std::move(r));
    }
  };
};

HttpForwarder::HttpForwarder() : impl_(std::make_unique<Impl>()) {
  impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
}

HttpForwarder::~HttpForwarder() {
  impl_->guard.reset();
  asio::post(impl_->io, [impl = impl_.get()] { impl->idle.clear(); });
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

uint64_t HttpForwarder::forwarded() const { return impl_->forwarded.load(); }
uint64_t HttpForwarder::failed() const { return impl_->failed.load(); }

void HttpForwarder::Forward(const std::string& url, std::string method, std::string target,
                            std::vector<std::pair<std::string, std::string>> headers,
                            std::string body, std::chrono::milliseconds timeout,
                            std::function<void(HttpResponse)> done) {
  Peer peer;
  if (!ParseUrl(url, &peer)) {
    done(JsonError(502, "owner_unreachable", "the owner's address '" + url + "' is not http://"));
    return;
  }
  auto call = std::make_shared<Impl::Call>(impl_.get(), impl_->io);
  call->url = url;
  call->key = peer.host + ":" + peer.port;
  call->peer = std::move(peer);
  call->timeout = timeout;
  call->done = std::move(done);
  call->request.method_string(method);
  call->request.target(target);
  call->request.version(11);
  call->request.set(http::field::host, call->key);
  call->request.keep_alive(true);
  for (auto& [name, value] : headers) call->request.set(name, value);
  if (!body.empty() || method == "POST" || method == "PUT") {
    call->request.body() = std::move(body);
    call->request.prepare_payload();
  }
  asio::post(impl_->io, [call] { call->Start(); });
}

}  // namespace persona::serve
