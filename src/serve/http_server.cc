#include "serve/http_server.h"

#include <openssl/ssl.h>
#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "common/json_writer.h"

namespace persona::serve {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using TcpStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using RequestParser = http::request_parser<http::string_body>;

// Small reads while waiting for headers keep an idle connection's buffer at a few KiB (10k
// keep-alive connections must not cost 10k large buffers); bodies are read in larger steps.
constexpr std::size_t kHeaderReadChunk = 4 * 1024;
constexpr std::size_t kBodyReadChunk = 64 * 1024;
constexpr std::size_t kShrinkBufferAbove = 128 * 1024;
// After the last response, unread request bytes are discarded for at most this long before the
// socket is closed: closing with unread data makes the kernel send RST, which can destroy the
// response (a 413, say) before the client has read it.
constexpr std::chrono::milliseconds kLingerLimit{1000};
constexpr std::chrono::milliseconds kAcceptRetry{50};
// Stop: how long I/O threads get to run out of work before their io_context is stopped outright.
constexpr std::chrono::milliseconds kThreadExitGrace{2000};

std::string ErrorBody(std::string_view code, std::string_view detail) {
  JsonWriter w;
  w.BeginObject();
  w.Key("error").String(code);
  w.Key("detail").String(detail);
  w.EndObject();
  return w.Take();
}

void AppendUint(std::string& out, uint64_t v) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), v);
  (void)ec;
  out.append(digits, end);
}

bool IsHeaderTextSafe(std::string_view s) {
  return s.find_first_of("\r\n") == std::string_view::npos;
}

std::string FormatEndpoint(const tcp::endpoint& ep) {
  std::string out;
  if (ep.address().is_v6()) {
    absl::StrAppend(&out, "[", ep.address().to_string(), "]:", ep.port());
  } else {
    absl::StrAppend(&out, ep.address().to_string(), ":", ep.port());
  }
  return out;
}

void DebugLog([[maybe_unused]] std::string_view what, [[maybe_unused]] std::string_view remote) {
#ifndef NDEBUG
  std::fprintf(stderr, "http_server: %.*s (%.*s)\n", static_cast<int>(what.size()), what.data(),
               static_cast<int>(remote.size()), remote.data());
#endif
}

// What every session shares: configuration, the handler, the connection gauge.
struct ServerCore {
  HttpServerOptions options;
  HttpHandler handler;
  ExchangeObserver observer;
  std::atomic<uint64_t> connections{0};
  std::chrono::milliseconds linger{0};
  // Set by Stop before anything else: from then on every response says Connection: close and no
  // further request is read. Read once per response (relaxed load, no lock).
  std::atomic<bool> draining{false};
};

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // All three run on the session's I/O thread.
  virtual void Start() = 0;
  // Stop has begun: close now if no request is in progress.
  virtual void BeginDrain() = 0;
  // The drain deadline has passed: close whatever the state.
  virtual void ForceClose() = 0;

  std::size_t registry_index = 0;  // position in Worker::sessions
};

// One I/O thread with its own io_context, and the sessions living on it. `sessions` is touched
// only on that thread, so no lock guards it. Sessions hold a shared_ptr
// to their worker: a Responder that outlives the server keeps the (stopped) io_context alive
// instead of touching a destroyed one.
struct Worker {
  Worker() : ioc(1), guard(std::in_place, ioc.get_executor()) {}

  void Register(std::shared_ptr<SessionBase> session) {
    session->registry_index = sessions.size();
    sessions.push_back(std::move(session));
  }
  void Unregister(SessionBase* session) {
    const std::size_t i = session->registry_index;
    if (i >= sessions.size() || sessions[i].get() != session) return;
    if (i + 1 != sessions.size()) {
      sessions[i] = std::move(sessions.back());
      sessions[i]->registry_index = i;
    }
    sessions.pop_back();
  }

  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::vector<std::shared_ptr<SessionBase>> sessions;
  // Set by Stop once no response may be posted any more; responders then drop their response.
  std::atomic<bool> stopped{false};
  // Responders between their `stopped` check and their post (Stop waits for zero).
  std::atomic<int> responders_posting{0};
  std::atomic<bool> running{false};
  std::thread thread;
};

// One connection. Written once for both stream types (plain TCP and TLS over TCP). Every member
// is touched only on the worker's thread except Respond, which may be called from anywhere and
// only posts. Exactly one operation chain is active at a time (read, handler, write, close), so
// the state machine needs no lock.
template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  template <class... StreamArgs>
  Session(ServerCore& core, std::shared_ptr<Worker> worker, bool counted, std::string remote,
          StreamArgs&&... stream_args)
      : core_(core),
        worker_(std::move(worker)),
        counted_(counted),
        remote_(std::move(remote)),
        stream_(std::forward<StreamArgs>(stream_args)...),
        request_timer_(worker_->ioc) {
    request_.remote = remote_;
    request_.tls = kTls;
    // Captures only `this` (trivially copyable, fits std::function's inline storage): no
    // allocation per request. Beast's field lookup is case-insensitive.
    request_.header = [this](std::string_view name) -> std::string_view {
      if (!parser_) return {};
      return parser_->get()[name];
    };
  }

  void Start() override {
    started_at_ = Clock::now();
    worker_->Register(this->shared_from_this());
    if (Draining()) {
      Finish();
      return;
    }
    if constexpr (kTls) {
      state_ = State::kHandshake;
      Lowest().expires_after(core_.options.read_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (self->finished_) return;
                                if (ec) {
                                  self->Finish();
                                  return;
                                }
                                self->AfterHandshake();
                              });
    } else {
      AfterHandshake();
    }
  }

  void BeginDrain() override {
    if (state_ == State::kStarting || state_ == State::kHandshake || state_ == State::kIdle) {
      Finish();
    }
  }

  void ForceClose() override { Finish(); }

  // The Responder's body; any thread.
  void Respond(uint64_t seq, HttpResponse response) {
    Worker& w = *worker_;
    w.responders_posting.fetch_add(1);
    if (!w.stopped.load()) {
      // Inline when the handler answers on the I/O thread (the common read path), else posted.
      asio::dispatch(w.ioc.get_executor(),
                     [self = this->shared_from_this(), seq, r = std::move(response)]() mutable {
                       self->OnResponse(seq, std::move(r));
                     });
    }
    w.responders_posting.fetch_sub(1);
  }

 private:
  enum class State {
    kStarting,
    kHandshake,
    kIdle,
    kReading,
    kHandling,
    kWriting,
    kClosing,
    kClosed
  };

  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }
  bool Draining() const { return core_.draining.load(std::memory_order_relaxed); }

  void AfterHandshake() {
    if (!counted_) {
      SendServerError(503, "unavailable", "too many connections");
      return;
    }
    ReadNext();
  }

  // Prepares for the next request; parses bytes already buffered (pipelining) before reading.
  void ReadNext() {
    parser_.emplace();
    parser_->body_limit(core_.options.max_body_bytes);
    parser_->header_limit(core_.options.max_header_bytes);
    parser_->eager(true);
    expect_checked_ = false;
    timed_out_ = false;
    if (buffer_.size() != 0) {
      BeginRequest();
      Parse();
      return;
    }
    if (Draining()) {
      Finish();
      return;
    }
    if (buffer_.capacity() > kShrinkBufferAbove) buffer_.shrink_to_fit();
    state_ = State::kIdle;
    Lowest().expires_after(core_.options.idle_timeout);
    ReadSome();
  }

  void BeginRequest() {
    state_ = State::kReading;
    started_at_ = Clock::now();
    ++request_seq_;
  }

  void ReadSome() {
    const bool in_body = parser_ && parser_->is_header_done();
    const std::size_t chunk = in_body ? kBodyReadChunk : kHeaderReadChunk;
    // The parser consumes bodies as they arrive, so only an unfinished header or chunk-size line
    // accumulates here; the header limit normally trips first, this bounds the rest.
    if (buffer_.size() > core_.options.max_header_bytes + kBodyReadChunk) {
      if (in_body) {
        SendServerError(400, "bad_request", "chunk header too long");
      } else {
        SendServerError(431, "header_too_large", HeaderLimitDetail());
      }
      return;
    }
    stream_.async_read_some(buffer_.prepare(chunk),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->OnRead(ec, n);
                            });
  }

  void OnRead(beast::error_code ec, std::size_t n) {
    if (finished_) return;
    if (ec) {
      if (timed_out_) {
        SendRequestTimeout();
      } else {
        // EOF, reset, idle timeout (tcp_stream closed the socket), TLS truncation: nobody to
        // answer.
        Finish();
      }
      return;
    }
    buffer_.commit(n);
    if (state_ == State::kIdle) BeginRequest();
    Parse();
  }

  void Parse() {
    while (buffer_.size() != 0 && !parser_->is_done()) {
      beast::error_code ec;
      const std::size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more) break;
      if (ec) {
        RejectMalformed(ec);
        return;
      }
      if (used == 0) break;
    }
    if (parser_->is_done()) {
      DispatchRequest();
      return;
    }
    if (parser_->is_header_done() && !expect_checked_) {
      expect_checked_ = true;
      // A Content-Length over the limit was already rejected by the parser (body_limit) at this
      // point, so a client waiting for 100 Continue gets its 413 without sending the body.
      const auto& msg = parser_->get();
      if (msg.version() >= 11 && beast::iequals(msg[http::field::expect], "100-continue")) {
        SendContinue();
        return;
      }
    }
    ContinueRead();
  }

  void ContinueRead() {
    if (timed_out_) {
      SendRequestTimeout();
      return;
    }
    ArmRequestTimer();
    ReadSome();
  }

  void SendContinue() {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    ArmRequestTimer();
    asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        if (self->finished_) return;
                        if (ec) {
                          if (self->timed_out_) {
                            self->SendRequestTimeout();
                          } else {
                            self->Finish();
                          }
                          return;
                        }
                        self->ContinueRead();
                      });
  }

  // The read deadline runs on its own timer rather than tcp_stream's expiry: tcp_stream closes
  // the socket when its deadline passes, and then no 408 can be sent. This timer only cancels the
  // pending read. Armed once per request, and only for requests that need more than one read.
  void ArmRequestTimer() {
    if (timer_armed_) return;
    timer_armed_ = true;
    Lowest().expires_never();
    request_timer_.expires_at(started_at_ + core_.options.read_timeout);
    request_timer_.async_wait([self = this->shared_from_this(),
                               seq = request_seq_](beast::error_code ec) {
      if (ec || self->finished_ || seq != self->request_seq_ || self->state_ != State::kReading) {
        return;
      }
      self->timed_out_ = true;
      self->Lowest().cancel();
    });
  }

  void DisarmRequestTimer() {
    if (!timer_armed_) return;
    timer_armed_ = false;
    request_timer_.cancel();
  }

  void SendRequestTimeout() {
    SendServerError(
        408, "request_timeout",
        absl::StrCat("request not received within ", core_.options.read_timeout.count(), " ms"));
  }

  std::string HeaderLimitDetail() const {
    return absl::StrCat("request header exceeds ", core_.options.max_header_bytes, " bytes");
  }

  void RejectMalformed(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      SendServerError(
          413, "payload_too_large",
          absl::StrCat("request body exceeds ", core_.options.max_body_bytes, " bytes"));
    } else if (ec == http::error::header_limit) {
      SendServerError(431, "header_too_large", HeaderLimitDetail());
    } else {
      SendServerError(400, "bad_request", ec.message());
    }
  }

  void DispatchRequest() {
    DisarmRequestTimer();
    state_ = State::kHandling;
    auto& msg = parser_->get();
    request_.method = msg.method_string();
    request_.target = msg.target();
    const std::size_t q = request_.target.find('?');
    if (q == std::string_view::npos) {
      request_.path = request_.target;
      request_.query = {};
    } else {
      request_.path = request_.target.substr(0, q);
      request_.query = request_.target.substr(q + 1);
    }
    request_.body = msg.body();
    // The handler may answer inline (then the write has already started when it returns) or
    // later from any thread; either way nothing below may touch the session's state.
    core_.handler(request_,
                  [self = this->shared_from_this(), seq = request_seq_](HttpResponse response) {
                    self->Respond(seq, std::move(response));
                  });
  }

  void OnResponse(uint64_t seq, HttpResponse response) {
    if (finished_ || seq != request_seq_ || state_ != State::kHandling) {
      DebugLog("responder called twice, or after the connection closed; response dropped", remote_);
      return;
    }
    SendResponse(std::move(response), /*from_server=*/false);
  }

  void SendServerError(int status, std::string_view code, std::string_view detail) {
    HttpResponse response;
    response.status = status;
    response.body = ErrorBody(code, detail);
    response.route = "-";
    response.close = true;
    SendResponse(std::move(response), /*from_server=*/true);
  }

  bool HaveRequestHeader() const { return parser_ && parser_->is_header_done(); }

  // Serializes the head by hand into a reused string and writes head + body with one gathered
  // write: no Beast response object, no per-field allocations.
  void SendResponse(HttpResponse&& response, bool from_server) {
    DisarmRequestTimer();
    state_ = State::kWriting;
    const bool have_request = HaveRequestHeader();
    const unsigned version = have_request ? parser_->get().version() : 11;
    close_after_ = from_server || response.close || Draining() || !have_request ||
                   !parser_->get().keep_alive();
    const bool head_only = have_request && parser_->get().method() == http::verb::head;
    // A 1xx here would leave the client waiting for a final response.
    status_ = (response.status >= 200 && response.status <= 599) ? response.status : 500;
    const bool bodyless = status_ == 204 || status_ == 304;

    head_.clear();
    head_ += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    AppendUint(head_, static_cast<uint64_t>(status_));
    head_ += ' ';
    head_ += http::obsolete_reason(static_cast<http::status>(status_));
    head_ += "\r\nServer: persona\r\n";
    if (!bodyless) {
      if (!response.content_type.empty() && IsHeaderTextSafe(response.content_type)) {
        head_ += "Content-Type: ";
        head_ += response.content_type;
        head_ += "\r\n";
      }
      head_ += "Content-Length: ";
      AppendUint(head_, response.body.size());
      head_ += "\r\n";
    }
    if (close_after_) {
      head_ += "Connection: close\r\n";
    } else if (version == 10) {
      head_ += "Connection: keep-alive\r\n";
    }
    for (const auto& [name, value] : response.headers) {
      if (name.empty() || !IsHeaderTextSafe(name) || !IsHeaderTextSafe(value)) {
        DebugLog("response header with CR/LF dropped", remote_);
        continue;
      }
      head_ += name;
      head_ += ": ";
      head_ += value;
      head_ += "\r\n";
    }
    head_ += "\r\n";

    body_ = std::move(response.body);
    if (bodyless) body_.clear();
    route_ = std::move(response.route);
    principal_ = std::move(response.principal);
    response_bytes_ = body_.size();

    const std::array<asio::const_buffer, 2> buffers{
        asio::buffer(head_), head_only ? asio::const_buffer() : asio::buffer(body_)};
    Lowest().expires_after(core_.options.write_timeout);
    asio::async_write(stream_, buffers,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        self->OnWritten(ec);
                      });
  }

  void OnWritten(beast::error_code ec) {
    NotifyObserver();  // also when Stop cut the write short: the status was still decided
    if (finished_) return;
    if (ec) {
      Finish();
      return;
    }
    if (close_after_) {
      CloseGracefully();
      return;
    }
    ReadNext();
  }

  void NotifyObserver() {
    if (!core_.observer) return;
    HttpExchange exchange;
    if (HaveRequestHeader()) {
      const auto& msg = parser_->get();
      exchange.method = msg.method_string();
      exchange.target = msg.target();
      exchange.request_bytes = msg.body().size();
    }
    exchange.route = route_;
    exchange.principal = principal_;
    exchange.remote = remote_;
    exchange.status = status_;
    exchange.response_bytes = response_bytes_;
    exchange.duration = Clock::now() - started_at_;
    core_.observer(exchange);
  }

  void CloseGracefully() {
    state_ = State::kClosing;
    Lowest().expires_after(core_.linger);
    if constexpr (kTls) {
      // close_notify, then wait (bounded by the expiry) for the peer's.
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->Finish(); });
    } else {
      beast::error_code ignored;
      Lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      buffer_.clear();
      DiscardUntilEof();
    }
  }

  void DiscardUntilEof() {
    stream_.async_read_some(buffer_.prepare(kHeaderReadChunk),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              if (self->finished_) return;
                              if (ec) {
                                self->Finish();
                                return;
                              }
                              self->DiscardUntilEof();
                            });
  }

  // Idempotent. Closing the socket makes any pending operation complete with an error; those
  // completions see finished_ and return, releasing the session.
  void Finish() {
    if (finished_) return;
    auto keep_alive = this->shared_from_this();  // Unregister may drop the registry's reference
    finished_ = true;
    state_ = State::kClosed;
    DisarmRequestTimer();
    Lowest().close();
    if (counted_) core_.connections.fetch_sub(1, std::memory_order_relaxed);
    worker_->Unregister(this);
  }

  ServerCore& core_;
  std::shared_ptr<Worker> worker_;  // declared before the stream and timer: outlives them
  const bool counted_;              // false: over the connection cap, answered 503
  const std::string remote_;
  Stream stream_;
  asio::steady_timer request_timer_;
  beast::flat_buffer buffer_;
  std::optional<RequestParser> parser_;
  HttpRequest request_;
  std::string head_;
  std::string body_;
  std::string route_;
  std::string principal_;
  State state_ = State::kStarting;
  bool finished_ = false;
  bool timer_armed_ = false;
  bool timed_out_ = false;
  bool expect_checked_ = false;
  bool close_after_ = false;
  int status_ = 0;
  uint64_t request_seq_ = 0;
  uint64_t response_bytes_ = 0;
  Clock::time_point started_at_{};
};

}  // namespace

struct HttpServer::Impl {
  ServerCore core;
  std::optional<asio::ssl::context> tls;
  std::vector<std::shared_ptr<Worker>> workers;
  std::optional<tcp::acceptor> acceptor;  // on workers[0]; declared after workers: closed first
  std::optional<asio::steady_timer> accept_retry;
  std::size_t next_worker = 0;  // acceptor thread only
  uint16_t port = 0;
  std::mutex stop_mu;
  bool stopped = false;

  void Accept() {
    const std::size_t index = next_worker;
    next_worker = (next_worker + 1) % workers.size();
    acceptor->async_accept(workers[index]->ioc,
                           [this, index](beast::error_code ec, tcp::socket socket) {
                             OnAccept(ec, std::move(socket), index);
                           });
  }

  void OnAccept(beast::error_code ec, tcp::socket socket, std::size_t index) {
    if (!acceptor->is_open()) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      // Out of descriptors and the like: retrying at once would spin on the same error.
      accept_retry->expires_after(kAcceptRetry);
      accept_retry->async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec && acceptor->is_open()) Accept();
      });
      return;
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::string remote = FormatEndpoint(socket.remote_endpoint(ignored));
    // Only this thread increments, so the cap cannot be overshot by a race.
    const bool counted =
        core.connections.load(std::memory_order_relaxed) < core.options.max_connections;
    if (counted) core.connections.fetch_add(1, std::memory_order_relaxed);
    std::shared_ptr<SessionBase> session;
    if (tls) {
      session = std::make_shared<Session<TlsStream>>(core, workers[index], counted,
                                                     std::move(remote), std::move(socket), *tls);
    } else {
      session = std::make_shared<Session<TcpStream>>(core, workers[index], counted,
                                                     std::move(remote), std::move(socket));
    }
    asio::post(workers[index]->ioc, [session = std::move(session)] { session->Start(); });
    Accept();
  }

  void Stop(std::chrono::milliseconds drain) {
    std::lock_guard<std::mutex> lock(stop_mu);
    if (stopped) return;
    stopped = true;
    core.draining.store(true);

    asio::post(workers[0]->ioc, [this] {
      beast::error_code ignored;
      acceptor->close(ignored);
      accept_retry->cancel();
    });
    for (auto& w : workers) {
      asio::post(w->ioc, [w = w.get()] {
        const auto sessions = w->sessions;  // Finish edits the registry
        for (const auto& s : sessions) s->BeginDrain();
      });
    }
    const auto drain_deadline = Clock::now() + drain;
    while (core.connections.load() != 0 && Clock::now() < drain_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (auto& w : workers) {
      asio::post(w->ioc, [w = w.get()] {
        const auto sessions = w->sessions;
        for (const auto& s : sessions) s->ForceClose();
      });
    }
    // From here on responders drop their responses instead of posting to a context that is
    // about to stop; wait out any responder caught between its check and its post.
    for (auto& w : workers) {
      w->stopped.store(true);
      while (w->responders_posting.load() != 0) std::this_thread::yield();
    }
    // Every socket is closed and every timer cancelled once ForceClose ran, so run() returns
    // when the aborted completions have been delivered. The grace period guards against
    // anything missed.
    for (auto& w : workers) w->guard.reset();
    const auto exit_deadline = Clock::now() + kThreadExitGrace;
    for (auto& w : workers) {
      while (w->running.load() && Clock::now() < exit_deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      if (w->running.load()) w->ioc.stop();
      if (w->thread.joinable()) w->thread.join();
    }
    // Deliver whatever a forced ioc.stop() left queued, so sessions are released now rather than
    // with the io_context.
    for (auto& w : workers) {
      w->ioc.restart();
      w->ioc.poll();
    }
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  if (impl_) Stop(std::chrono::milliseconds(0));
}

uint16_t HttpServer::port() const { return impl_->port; }

uint64_t HttpServer::connections() const {
  return impl_->core.connections.load(std::memory_order_relaxed);
}

void HttpServer::Stop(std::chrono::milliseconds drain) { impl_->Stop(drain); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              HttpHandler handler,
                                                              ExchangeObserver observer) {
  if (!handler) return absl::InvalidArgumentError("HttpServer needs a handler");
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both a certificate and a key file");
  }
  auto impl = std::make_unique<Impl>();
  impl->core.options = options;
  impl->core.handler = std::move(handler);
  impl->core.observer = std::move(observer);
  impl->core.linger = std::min(kLingerLimit, options.read_timeout);

  if (!options.tls_cert_file.empty()) {
    auto& ctx = impl->tls.emplace(asio::ssl::context::tls_server);
    beast::error_code ec;
    ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1,
                    ec);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    ctx.use_certificate_chain_file(options.tls_cert_file, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot load TLS certificate ", options.tls_cert_file, ": ", ec.message()));
    }
    ctx.use_private_key_file(options.tls_key_file, asio::ssl::context::pem, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot load TLS key ", options.tls_key_file, ": ", ec.message()));
    }
    if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("TLS key ", options.tls_key_file, " does not match the certificate"));
    }
  }

  uint32_t threads = options.threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  for (uint32_t i = 0; i < threads; ++i) impl->workers.push_back(std::make_shared<Worker>());
  asio::io_context& accept_ioc = impl->workers[0]->ioc;

  beast::error_code ec;
  asio::ip::address address = asio::ip::make_address(options.bind_address, ec);
  if (ec) {
    tcp::resolver resolver(accept_ioc);
    auto results = resolver.resolve(options.bind_address, "", tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot resolve bind address '", options.bind_address, "'"));
    }
    address = results.begin()->endpoint().address();
  }
  const tcp::endpoint endpoint(address, options.port);
  const std::string where = absl::StrCat(options.bind_address, ":", options.port);
  auto& acceptor = impl->acceptor.emplace(accept_ioc);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", where, ": ", ec.message()));
  }
  impl->port = acceptor.local_endpoint(ec).port();
  impl->accept_retry.emplace(accept_ioc);
  impl->Accept();

  for (std::size_t i = 0; i < impl->workers.size(); ++i) {
    Worker* w = impl->workers[i].get();
    w->running.store(true);
    w->thread = std::thread([w] {
      w->ioc.run();
      w->running.store(false);
    });
    const std::string name = absl::StrCat("http-io-", i);
    pthread_setname_np(w->thread.native_handle(), name.c_str());
  }
  return absl::WrapUnique(new HttpServer(std::move(impl)));
}

}  // namespace persona::serve
