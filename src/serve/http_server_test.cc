#include "serve/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/scoped_temp_dir.h"

namespace persona::serve {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using ::testing::HasSubstr;
using ::testing::StartsWith;

struct RawResponse {
  std::string version;  // "HTTP/1.1"
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;

  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

// Frees OpenSSL objects.
struct SslCtxFree {
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
struct SslFree {
  void operator()(SSL* p) const { SSL_free(p); }
};

// A blocking HTTP/1.1 client over a raw socket (optionally TLS), just enough to see what the
// server sends byte for byte: no retries, no connection reuse logic of its own.
class TestClient {
 public:
  explicit TestClient(uint16_t port, milliseconds timeout = milliseconds(5000)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{};
    tv.tv_sec = timeout.count() / 1000;
    tv.tv_usec = (timeout.count() % 1000) * 1000;
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~TestClient() {
    ssl_.reset();
    if (fd_ >= 0) close(fd_);
  }
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  bool connected() const { return connected_; }

  // Client side of a TLS handshake over the connected socket (any certificate accepted).
  bool StartTls() {
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_NONE, nullptr);
    ssl_.reset(SSL_new(ctx_.get()));
    SSL_set_fd(ssl_.get(), fd_);
    SSL_set_tlsext_host_name(ssl_.get(), "localhost");
    return SSL_connect(ssl_.get()) == 1;
  }

  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ssl_ ? SSL_write(ssl_.get(), bytes.data(), static_cast<int>(bytes.size()))
                       : send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // The next response (a 100 Continue counts as one). nullopt when the connection closed or the
  // receive timeout passed before a whole response arrived.
  std::optional<RawResponse> ReadResponse(bool expect_body = true) {
    size_t head_end;
    while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    RawResponse r;
    std::string head = buf_.substr(0, head_end);
    buf_.erase(0, head_end + 4);
    size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    r.version = status_line.substr(0, status_line.find(' '));
    r.status = std::atoi(status_line.c_str() + r.version.size() + 1);
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t end = head.find("\r\n", pos);
      if (end == std::string::npos) end = head.size();
      std::string line = head.substr(pos, end - pos);
      size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[name] = value;
      pos = end + 2;
    }
    if (r.status >= 200 && expect_body) {
      const size_t length = std::stoul(
          r.Header("content-length").empty() ? std::string("0") : r.Header("content-length"));
      while (buf_.size() < length) {
        if (!Fill()) return std::nullopt;
      }
      r.body = buf_.substr(0, length);
      buf_.erase(0, length);
    }
    return r;
  }

  // True when the server closes the connection (EOF or reset) before the receive timeout;
  // anything else it sends is discarded.
  bool WaitForClose() {
    buf_.clear();
    for (;;) {
      char tmp[4096];
      ssize_t n = ssl_ ? SSL_read(ssl_.get(), tmp, sizeof(tmp)) : recv(fd_, tmp, sizeof(tmp), 0);
      if (n > 0) continue;
      if (ssl_) return SSL_get_error(ssl_.get(), static_cast<int>(n)) != SSL_ERROR_WANT_READ;
      if (n == 0) return true;
      return errno == ECONNRESET;
    }
  }

 private:
  bool Fill() {
    char tmp[16384];
    ssize_t n = ssl_ ? SSL_read(ssl_.get(), tmp, sizeof(tmp)) : recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx_;
  std::unique_ptr<SSL, SslFree> ssl_;
  std::string buf_;
};

// Threads a handler spawns to answer later; joined when the object goes out of scope.
class LaterAnswers {
 public:
  ~LaterAnswers() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& t : threads_) t.join();
  }
  void Run(milliseconds delay, std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    threads_.emplace_back([delay, fn = std::move(fn)] {
      std::this_thread::sleep_for(delay);
      fn();
    });
  }

 private:
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

bool WaitUntil(const std::function<bool()>& condition, milliseconds timeout = milliseconds(3000)) {
  const auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

HttpServerOptions TestOptions() {
  HttpServerOptions options;
  options.port = 0;
  options.threads = 2;
  options.read_timeout = milliseconds(3000);
  options.write_timeout = milliseconds(3000);
  options.idle_timeout = milliseconds(5000);
  return options;
}

HttpResponse Ok(std::string body, std::string route = "/test") {
  HttpResponse r;
  r.body = std::move(body);
  r.route = std::move(route);
  return r;
}

// Answers with what it saw: method|path|query|body|X-Test header|tls.
void EchoHandler(const HttpRequest& req, Responder respond) {
  HttpResponse r;
  r.content_type = "text/plain";
  r.body = std::string(req.method) + "|" + std::string(req.path) + "|" + std::string(req.query) +
           "|" + std::string(req.body) + "|" + std::string(req.header("x-test")) + "|" +
           (req.tls ? "tls" : "plain");
  r.headers.emplace_back("X-Remote", std::string(req.remote));
  r.route = "/echo";
  respond(std::move(r));
}

std::unique_ptr<HttpServer> StartServer(const HttpServerOptions& options, HttpHandler handler,
                                        ExchangeObserver observer = {}) {
  auto server = HttpServer::Start(options, std::move(handler), std::move(observer));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(*server) : nullptr;
}

std::string Get(std::string_view target, std::string_view extra_headers = "") {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: t\r\n" + std::string(extra_headers) +
         "\r\n";
}

TEST(HttpServerTest, HandlerSeesMethodPathQueryBodyAndCaseInsensitiveHeaders) {
  auto server = StartServer(TestOptions(), EchoHandler);
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(
      client.Send("POST /v1/users/u%201/x?a=1&b=2 HTTP/1.1\r\nHost: t\r\nx-TEST: hello\r\n"
                  "Content-Length: 5\r\n\r\nworld"));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST|/v1/users/u%201/x|a=1&b=2|world|hello|plain");
  EXPECT_EQ(r->Header("content-type"), "text/plain");
  EXPECT_EQ(r->Header("content-length"), std::to_string(r->body.size()));
  EXPECT_EQ(r->Header("server"), "persona");
  EXPECT_THAT(r->Header("x-remote"), StartsWith("127.0.0.1:"));
  EXPECT_EQ(r->Header("connection"), "");  // HTTP/1.1 keep-alive is the default
}

TEST(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  std::atomic<int> calls{0};
  auto server = StartServer(TestOptions(), [&](const HttpRequest& req, Responder respond) {
    ++calls;
    respond(Ok(std::string(req.path)));
  });
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(client.Send(Get("/r" + std::to_string(i))));
    auto r = client.ReadResponse();
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(r->body, "/r" + std::to_string(i));
  }
  EXPECT_EQ(calls.load(), 5);
  EXPECT_EQ(server->connections(), 1u);
}

TEST(HttpServerTest, PipelinedRequestsAreAnsweredInOrderOneAtATime) {
  LaterAnswers later;
  std::atomic<int> in_flight{0};
  std::atomic<int> max_in_flight{0};
  auto server = StartServer(TestOptions(), [&](const HttpRequest& req, Responder respond) {
    int now = ++in_flight;
    max_in_flight = std::max(max_in_flight.load(), now);
    // Earlier requests answer more slowly: order must still be request order.
    const int n = req.path.back() - '0';
    later.Run(milliseconds((4 - n) * 20), [&in_flight, respond, path = std::string(req.path)] {
      --in_flight;
      respond(Ok(path));
    });
  });
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  ASSERT_TRUE(client.Send(Get("/p1") + Get("/p2") + Get("/p3")));
  for (int i = 1; i <= 3; ++i) {
    auto r = client.ReadResponse();
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(r->body, "/p" + std::to_string(i));
  }
  EXPECT_EQ(max_in_flight.load(), 1);
}

TEST(HttpServerTest, ResponderCalledLaterFromAnotherThreadIsWritten) {
  LaterAnswers later;
  auto server = StartServer(TestOptions(), [&](const HttpRequest& req, Responder respond) {
    later.Run(milliseconds(50),
              [respond, body = std::string(req.body)] { respond(Ok("late:" + body)); });
  });
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  ASSERT_TRUE(client.Send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "late:abc");
  ASSERT_TRUE(client.Send(Get("/again")));
  EXPECT_TRUE(client.ReadResponse().has_value());
}

TEST(HttpServerTest, SecondResponderCallIsIgnored) {
  auto server = StartServer(TestOptions(), [](const HttpRequest&, Responder respond) {
    respond(Ok("first"));
    HttpResponse second = Ok("second");
    second.status = 500;
    respond(std::move(second));
  });
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  ASSERT_TRUE(client.Send(Get("/a") + Get("/b")));
  for (int i = 0; i < 2; ++i) {
    auto r = client.ReadResponse();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "first");
  }
}

TEST(HttpServerTest, ExpectContinueGets100BeforeTheBodyIsSent) {
  auto server = StartServer(TestOptions(), EchoHandler);
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  ASSERT_TRUE(client.Send(
      "PUT /c HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  auto cont = client.ReadResponse();
  ASSERT_TRUE(cont.has_value());
  EXPECT_EQ(cont->status, 100);
  ASSERT_TRUE(client.Send("data"));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "PUT|/c||data||plain");
}

TEST(HttpServerTest, OversizedContentLengthGets413WithoutReadingTheBody) {
  auto options = TestOptions();
  options.max_body_bytes = 100;
  std::atomic<int> calls{0};
  auto server = StartServer(options, [&](const HttpRequest&, Responder respond) {
    ++calls;
    respond(Ok("no"));
  });
  ASSERT_NE(server, nullptr);
  {
    // The client waits for 100 Continue and gets the 413 instead; the body is never sent.
    TestClient client(server->port());
    ASSERT_TRUE(client.Send(
        "POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n"));
    auto r = client.ReadResponse();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 413);
    EXPECT_THAT(r->body, HasSubstr("\"error\":\"payload_too_large\""));
    EXPECT_THAT(r->body, HasSubstr("\"detail\":"));
    EXPECT_EQ(r->Header("content-type"), "application/json");
    EXPECT_EQ(r->Header("connection"), "close");
    EXPECT_TRUE(client.WaitForClose());
  }
  {
    TestClient client(server->port());
    ASSERT_TRUE(client.Send("POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" +
                            std::string(1000, 'x')));
    auto r = client.ReadResponse();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 413);
    EXPECT_TRUE(client.WaitForClose());
  }
  EXPECT_EQ(calls.load(), 0);
}

TEST(HttpServerTest, OversizedChunkedBodyGets413) {
  auto options = TestOptions();
  options.max_body_bytes = 100;
  std::atomic<int> calls{0};
  auto server = StartServer(options, [&](const HttpRequest&, Responder respond) {
    ++calls;
    respond(Ok("no"));
  });
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  std::string request = "POST /e HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 4; ++i) request += "40\r\n" + std::string(64, 'y') + "\r\n";
  request += "0\r\n\r\n";
  ASSERT_TRUE(client.Send(request));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 413);
  EXPECT_THAT(r->body, HasSubstr("payload_too_large"));
  EXPECT_TRUE(client.WaitForClose());
  EXPECT_EQ(calls.load(), 0);
}

TEST(HttpServerTest, ChunkedBodyWithinTheLimitIsReassembled) {
  auto server = StartServer(TestOptions(), EchoHandler);
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  ASSERT_TRUE(client.Send(
      "POST /k HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n"
      "0\r\n\r\n"));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "POST|/k||abcde||plain");
}

TEST(HttpServerTest, HeaderOverLimitGets431) {
  auto options = TestOptions();
  options.max_header_bytes = 1024;
  auto server = StartServer(options, EchoHandler);
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  ASSERT_TRUE(client.Send(Get("/h", "X-Big: " + std::string(4000, 'z') + "\r\n")));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 431);
  EXPECT_THAT(r->body, HasSubstr("\"error\":\"header_too_large\""));
  EXPECT_TRUE(client.WaitForClose());
}

TEST(HttpServerTest, GarbageGets400AndTheConnectionIsClosed) {
  std::atomic<int> calls{0};
  auto server = StartServer(TestOptions(), [&](const HttpRequest&, Responder respond) {
    ++calls;
    respond(Ok("no"));
  });
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  ASSERT_TRUE(client.Send(std::string_view("\x16\x03\x01\x02\x00 not http at all\r\n\r\n", 25)));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("\"error\":\"bad_request\""));
  EXPECT_THAT(r->body, HasSubstr("\"detail\":\""));
  EXPECT_TRUE(client.WaitForClose());
  EXPECT_EQ(calls.load(), 0);
}

TEST(HttpServerTest, RandomBytesNeverStopTheServerFromAnswering) {
  auto server = StartServer(TestOptions(), EchoHandler);
  ASSERT_NE(server, nullptr);
  std::mt19937 rng(42);
  const std::vector<std::string> prefixes = {
      "", "GET / HTTP/1.1\r\n", "POST /x HTTP/1.1\r\nContent-Length: 5\r\n",
      "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"};
  for (int i = 0; i < 60; ++i) {
    TestClient client(server->port(), milliseconds(100));
    std::string bytes = prefixes[rng() % prefixes.size()];
    const size_t n = 1 + rng() % 600;
    for (size_t j = 0; j < n; ++j) bytes += static_cast<char>(rng() % 256);
    client.Send(bytes);
    client.ReadResponse();  // whatever comes (or nothing); then hang up
  }
  TestClient client(server->port());
  ASSERT_TRUE(client.Send(Get("/alive")));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
}

TEST(HttpServerTest, HeadResponseHasLengthButNoBody) {
  auto server = StartServer(TestOptions(), EchoHandler);
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  ASSERT_TRUE(client.Send("HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n" + Get("/next")));
  auto head = client.ReadResponse(/*expect_body=*/false);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->Header("content-length"), "16");  // "HEAD|/h||||plain"
  auto next = client.ReadResponse();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->body, "GET|/next||||plain");  // would be garbage had the HEAD body been sent
}

TEST(HttpServerTest, ConnectionCloseAndHttp10CloseAfterTheResponse) {
  auto server = StartServer(TestOptions(), [](const HttpRequest& req, Responder respond) {
    HttpResponse r = Ok("bye");
    r.close = req.path == "/close-me";
    respond(std::move(r));
  });
  ASSERT_NE(server, nullptr);
  {
    TestClient client(server->port());
    ASSERT_TRUE(client.Send("GET / HTTP/1.0\r\n\r\n"));
    auto r = client.ReadResponse();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->version, "HTTP/1.0");
    EXPECT_EQ(r->Header("connection"), "close");
    EXPECT_TRUE(client.WaitForClose());
  }
  {
    TestClient client(server->port());
    ASSERT_TRUE(client.Send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    auto r = client.ReadResponse();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->Header("connection"), "keep-alive");
    ASSERT_TRUE(client.Send("GET / HTTP/1.0\r\n\r\n"));
    EXPECT_TRUE(client.ReadResponse().has_value());
  }
  {
    TestClient client(server->port());
    ASSERT_TRUE(client.Send(Get("/", "Connection: close\r\n")));
    auto r = client.ReadResponse();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->Header("connection"), "close");
    EXPECT_TRUE(client.WaitForClose());
  }
  {
    TestClient client(server->port());
    ASSERT_TRUE(client.Send(Get("/close-me")));
    auto r = client.ReadResponse();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->Header("connection"), "close");
    EXPECT_TRUE(client.WaitForClose());
  }
}

TEST(HttpServerTest, IdleKeepAliveConnectionIsClosedAfterIdleTimeout) {
  auto options = TestOptions();
  options.idle_timeout = milliseconds(200);
  auto server = StartServer(options, EchoHandler);
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  ASSERT_TRUE(client.Send(Get("/")));
  ASSERT_TRUE(client.ReadResponse().has_value());
  const auto start = Clock::now();
  EXPECT_TRUE(client.WaitForClose());
  EXPECT_GE(Clock::now() - start, milliseconds(150));

  TestClient silent(server->port());  // never sends a byte
  EXPECT_TRUE(silent.WaitForClose());
  EXPECT_TRUE(WaitUntil([&] { return server->connections() == 0; }));
}

TEST(HttpServerTest, RequestStalledMidBodyGets408) {
  auto options = TestOptions();
  options.read_timeout = milliseconds(300);
  std::atomic<int> calls{0};
  auto server = StartServer(options, [&](const HttpRequest&, Responder respond) {
    ++calls;
    respond(Ok("no"));
  });
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  const auto start = Clock::now();
  ASSERT_TRUE(client.Send("POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789"));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 408);
  EXPECT_THAT(r->body, HasSubstr("\"error\":\"request_timeout\""));
  EXPECT_GE(Clock::now() - start, milliseconds(250));
  EXPECT_TRUE(client.WaitForClose());
  EXPECT_EQ(calls.load(), 0);
}

TEST(HttpServerTest, ConnectionsBeyondTheCapGet503AndAreClosed) {
  auto options = TestOptions();
  options.max_connections = 2;
  auto server = StartServer(options, EchoHandler);
  ASSERT_NE(server, nullptr);
  auto a = std::make_unique<TestClient>(server->port());
  TestClient b(server->port());
  for (TestClient* c : {a.get(), &b}) {
    ASSERT_TRUE(c->Send(Get("/")));
    ASSERT_TRUE(c->ReadResponse().has_value());
  }
  EXPECT_EQ(server->connections(), 2u);

  TestClient over(server->port());
  auto r = over.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 503);
  EXPECT_THAT(r->body, HasSubstr("\"error\":\"unavailable\""));
  EXPECT_THAT(r->body, HasSubstr("too many connections"));
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(over.WaitForClose());
  EXPECT_EQ(server->connections(), 2u);

  a.reset();
  ASSERT_TRUE(WaitUntil([&] { return server->connections() == 1; }));
  TestClient again(server->port());
  ASSERT_TRUE(again.Send(Get("/")));
  auto ok = again.ReadResponse();
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->status, 200);
}

TEST(HttpServerTest, StopFinishesTheInFlightRequestAndClosesIdleConnectionsAtOnce) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Responder> parked;
  auto server = StartServer(TestOptions(), [&](const HttpRequest& req, Responder respond) {
    if (req.path != "/slow") {
      respond(Ok("fast"));
      return;
    }
    std::lock_guard<std::mutex> lock(mu);
    parked = std::move(respond);
    cv.notify_all();
  });
  ASSERT_NE(server, nullptr);
  TestClient idle(server->port());
  ASSERT_TRUE(idle.Send(Get("/")));
  ASSERT_TRUE(idle.ReadResponse().has_value());
  TestClient busy(server->port());
  ASSERT_TRUE(busy.Send(Get("/slow")));
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(3), [&] { return parked.has_value(); }));
  }

  const auto stop_start = Clock::now();
  std::thread stopper([&] { server->Stop(milliseconds(5000)); });
  // The idle connection goes while the slow request is still unanswered.
  EXPECT_TRUE(idle.WaitForClose());
  {
    std::lock_guard<std::mutex> lock(mu);
    (*parked)(Ok("slow done"));
  }
  auto r = busy.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "slow done");
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(busy.WaitForClose());
  stopper.join();
  EXPECT_LT(Clock::now() - stop_start, milliseconds(4000));  // did not wait for the deadline
  EXPECT_EQ(server->connections(), 0u);
  server->Stop(milliseconds(0));  // idempotent
}

TEST(HttpServerTest, StopClosesAConnectionWhoseHandlerNeverAnswersAfterTheDrainDeadline) {
  std::mutex mu;
  std::optional<Responder> parked;
  std::atomic<bool> handled{false};
  auto server = StartServer(TestOptions(), [&](const HttpRequest&, Responder respond) {
    std::lock_guard<std::mutex> lock(mu);
    parked = std::move(respond);
    handled = true;
  });
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  ASSERT_TRUE(client.Send(Get("/never")));
  ASSERT_TRUE(WaitUntil([&] { return handled.load(); }));
  const auto start = Clock::now();
  server->Stop(milliseconds(200));
  const auto took = Clock::now() - start;
  EXPECT_GE(took, milliseconds(150));
  EXPECT_LT(took, milliseconds(2500));
  EXPECT_TRUE(client.WaitForClose());
  server.reset();
  // A responder that outlives the server is harmless: the response is dropped.
  std::lock_guard<std::mutex> lock(mu);
  (*parked)(Ok("too late"));
  parked.reset();
}

TEST(HttpServerTest, ObserverSeesStatusRouteSizesAndServerErrors) {
  std::mutex mu;
  std::vector<std::tuple<std::string, std::string, std::string, int, uint64_t, uint64_t>> seen;
  auto server = StartServer(
      TestOptions(),
      [](const HttpRequest&, Responder respond) {
        HttpResponse r = Ok("12345", "/v1/things/{id}");
        r.status = 201;
        respond(std::move(r));
      },
      [&](const HttpExchange& x) {
        EXPECT_GT(x.duration.count(), 0);
        std::lock_guard<std::mutex> lock(mu);
        seen.emplace_back(std::string(x.method), std::string(x.target), std::string(x.route),
                          x.status, x.request_bytes, x.response_bytes);
      });
  ASSERT_NE(server, nullptr);
  {
    TestClient client(server->port());
    ASSERT_TRUE(
        client.Send("POST /v1/things/7?q=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n"
                    "abc"));
    ASSERT_TRUE(client.ReadResponse().has_value());
  }
  {
    TestClient client(server->port());
    ASSERT_TRUE(client.Send("\x01\x02\r\n\r\n"));
    ASSERT_TRUE(client.ReadResponse().has_value());
  }
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(mu);
    return seen.size() == 2;
  }));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen[0],
            std::make_tuple(std::string("POST"), std::string("/v1/things/7?q=1"),
                            std::string("/v1/things/{id}"), 201, uint64_t{3}, uint64_t{5}));
  EXPECT_EQ(std::get<2>(seen[1]), "-");
  EXPECT_EQ(std::get<3>(seen[1]), 400);
}

TEST(HttpServerTest, PortInUseIsAnError) {
  auto first = StartServer(TestOptions(), EchoHandler);
  ASSERT_NE(first, nullptr);
  auto options = TestOptions();
  options.port = first->port();
  auto second = HttpServer::Start(options, EchoHandler);
  EXPECT_FALSE(second.ok());
}

// A self-signed certificate for "localhost" (EC P-256), written as PEM files.
struct PemPair {
  std::string cert_path;
  std::string key_path;
};

bool WriteSelfSignedCertificate(const std::string& dir, PemPair* out) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), &X509_free);
  if (!key || !cert) return false;
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return false;
  out->cert_path = dir + "/cert.pem";
  out->key_path = dir + "/key.pem";
  std::unique_ptr<FILE, decltype(&fclose)> cert_file(fopen(out->cert_path.c_str(), "w"), &fclose);
  std::unique_ptr<FILE, decltype(&fclose)> key_file(fopen(out->key_path.c_str(), "w"), &fclose);
  if (!cert_file || !key_file) return false;
  return PEM_write_X509(cert_file.get(), cert.get()) == 1 &&
         PEM_write_PrivateKey(key_file.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) ==
             1;
}

TEST(HttpServerTest, ServesHttpsWithTheConfiguredCertificate) {
  ScopedTempDir dir("http_tls");
  PemPair pem;
  ASSERT_TRUE(WriteSelfSignedCertificate(dir.path(), &pem));
  auto options = TestOptions();
  options.tls_cert_file = pem.cert_path;
  options.tls_key_file = pem.key_path;
  auto server = StartServer(options, EchoHandler);
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  ASSERT_TRUE(client.StartTls());
  for (int i = 0; i < 2; ++i) {  // keep-alive over TLS too
    ASSERT_TRUE(
        client.Send("POST /secure?x=1 HTTP/1.1\r\nHost: t\r\nX-Test: t\r\n"
                    "Content-Length: 2\r\n\r\nhi"));
    auto r = client.ReadResponse();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "POST|/secure|x=1|hi|t|tls");
  }

  TestClient plain(server->port());  // plain HTTP on a TLS port gets nowhere
  ASSERT_TRUE(plain.Send(Get("/")));
  EXPECT_FALSE(plain.ReadResponse().has_value());
}

TEST(HttpServerTest, UnreadableCertificateOrKeyIsInvalidArgument) {
  ScopedTempDir dir("http_tls_bad");
  PemPair pem;
  ASSERT_TRUE(WriteSelfSignedCertificate(dir.path(), &pem));
  auto options = TestOptions();
  options.tls_cert_file = dir.path() + "/missing.pem";
  options.tls_key_file = pem.key_path;
  auto missing = HttpServer::Start(options, EchoHandler);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);

  const std::string garbage = dir.path() + "/garbage.pem";
  std::ofstream(garbage) << "not a certificate\n";
  options.tls_cert_file = pem.cert_path;
  options.tls_key_file = garbage;
  auto bad_key = HttpServer::Start(options, EchoHandler);
  EXPECT_EQ(bad_key.status().code(), absl::StatusCode::kInvalidArgument);

  options.tls_key_file = "";
  EXPECT_EQ(HttpServer::Start(options, EchoHandler).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace persona::serve
