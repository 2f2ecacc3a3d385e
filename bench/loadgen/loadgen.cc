// persona_loadgen: an HTTP/1.1 load generator for loopback benchmarks of `persona serve`.
//
//   closed loop: N keep-alive connections, each sending its next request as soon as the previous
//                answer arrived (max throughput);
//   open loop:   --rate R requests/s in total, on a fixed schedule per connection; latency is
//                measured from the *scheduled* send time, so a stalled server shows up in the
//                tail instead of silently slowing the client down (coordinated omission, as wrk2).
//
//   persona_loadgen --port 8080 -c 16 -d 20 --rate 30000 --path '/v1/users/{user}/profile'
//   persona_loadgen --port 8080 -c 8 -d 20 --method POST --path /v1/events --gen-events 1000
//   persona_loadgen --port 8080 -c 16 -d 20 --mix read=90,write=10 --gen-events 100 --json
//
// Each of --threads threads runs its own epoll loop over its share of the connections, with a
// timerfd for sub-millisecond schedules, and its own histograms; they are merged at the end.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/json_writer.h"
#include "http_response_parser.h"
#include "latency_histogram.h"
#include "request_source.h"
#include "self_test.h"

namespace persona::loadgen {
namespace {

constexpr uint64_t kNsPerSec = 1000000000ULL;

uint64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNsPerSec + static_cast<uint64_t>(ts.tv_nsec);
}

struct Options {
  std::string host = "127.0.0.1";
  std::string port = "8080";
  uint32_t connections = 16;
  uint32_t threads = 1;
  double duration_s = 10;
  double warmup_s = 2;
  double rate = 0;  // 0 = closed loop
  double timeout_s = 10;
  std::string method = "GET";
  std::string path = "/";
  std::string body_file;
  std::string content_type;
  uint32_t gen_events = 0;
  std::string users_file;
  uint64_t user_count = 1000;
  std::vector<std::string> headers;
  std::string mix;  // "read=90,write=10"
  std::string read_path = "/v1/users/{user}/profile";
  std::string write_path = "/v1/events";
  std::string label;
  uint64_t seed = 0;
  bool json = false;
};

void Usage() {
  std::fputs(
      "usage: persona_loadgen [options]\n"
      "  --url http://HOST:PORT       or --host HOST (127.0.0.1) --port PORT (8080)\n"
      "  -c, --connections N          keep-alive connections (16)\n"
      "  -t, --threads N              event-loop threads (1)\n"
      "  -d, --duration S             measured seconds (10)\n"
      "  --warmup S                   seconds before measuring (2)\n"
      "  -R, --rate R                 open loop at R requests/s in total; 0 = closed loop (0)\n"
      "  --timeout S                  a request unanswered this long is an error (10)\n"
      "  --method M --path P          request template; {user} in P is replaced by a user id\n"
      "  --users FILE                 user ids, one per line (else u0..u{user-count - 1})\n"
      "  --user-count N               (1000)\n"
      "  --body-file FILE             body sent as is (events counted for events/s)\n"
      "  --gen-events N               a fresh JSON array of N events per request\n"
      "  --content-type T             (application/json, or application/x-ndjson for\n"
      "                               .ndjson/.jsonl body files)\n"
      "  -H, --header 'K: V'          extra header (repeatable)\n"
      "  --mix read=W,write=W         mixed: GET --read-path (/v1/users/{user}/profile) and\n"
      "                               POST --write-path (/v1/events) with --gen-events (100)\n"
      "                               or --body-file\n"
      "  --label NAME --seed N --json  (one machine-readable line on stdout)\n"
      "  --self-test                  check the histogram, response parser, request builder\n",
      stderr);
}

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "persona_loadgen: %s\n", message.c_str());
  std::exit(2);
}

template <typename T>
T ParseNumberFlag(std::string_view flag, std::string_view text) {
  T value{};
  const auto r = std::from_chars(text.data(), text.data() + text.size(), value);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size()) {
    Die("bad value for " + std::string(flag) + ": '" + std::string(text) + "'");
  }
  return value;
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      Usage();
      std::exit(0);
    }
    if (arg == "--self-test") std::exit(RunSelfTest());
    if (arg == "--json") {
      o.json = true;
      continue;
    }
    static constexpr std::string_view kValueFlags[] = {
        "--url",       "--host",         "--port",       "-c",          "--connections",
        "-t",          "--threads",      "-d",           "--duration",  "--warmup",
        "-R",          "--rate",         "--timeout",    "--method",    "--path",
        "--body-file", "--content-type", "--gen-events", "--users",     "--user-count",
        "-H",          "--header",       "--mix",        "--read-path", "--write-path",
        "--label",     "--seed"};
    if (std::find(std::begin(kValueFlags), std::end(kValueFlags), arg) == std::end(kValueFlags)) {
      Usage();
      Die("unknown option " + std::string(arg));
    }
    if (i + 1 >= argc) Die("missing value for " + std::string(arg));
    const std::string_view v = argv[++i];
    if (arg == "--url") {
      std::string_view u = v;
      if (u.substr(0, 7) == "http://") u.remove_prefix(7);
      u = u.substr(0, u.find('/'));
      const size_t colon = u.rfind(':');
      if (colon == std::string_view::npos) Die("--url needs a port: " + std::string(v));
      o.host = std::string(u.substr(0, colon));
      o.port = std::string(u.substr(colon + 1));
      if (o.host.size() > 2 && o.host.front() == '[') o.host = o.host.substr(1, o.host.size() - 2);
    } else if (arg == "--host") {
      o.host = v;
    } else if (arg == "--port") {
      o.port = v;
    } else if (arg == "-c" || arg == "--connections") {
      o.connections = ParseNumberFlag<uint32_t>(arg, v);
    } else if (arg == "-t" || arg == "--threads") {
      o.threads = ParseNumberFlag<uint32_t>(arg, v);
    } else if (arg == "-d" || arg == "--duration") {
      o.duration_s = ParseNumberFlag<double>(arg, v);
    } else if (arg == "--warmup") {
      o.warmup_s = ParseNumberFlag<double>(arg, v);
    } else if (arg == "-R" || arg == "--rate") {
      o.rate = ParseNumberFlag<double>(arg, v);
    } else if (arg == "--timeout") {
      o.timeout_s = ParseNumberFlag<double>(arg, v);
    } else if (arg == "--method") {
      o.method = v;
    } else if (arg == "--path") {
      o.path = v;
    } else if (arg == "--body-file") {
      o.body_file = v;
    } else if (arg == "--content-type") {
      o.content_type = v;
    } else if (arg == "--gen-events") {
      o.gen_events = ParseNumberFlag<uint32_t>(arg, v);
    } else if (arg == "--users") {
      o.users_file = v;
    } else if (arg == "--user-count") {
      o.user_count = ParseNumberFlag<uint64_t>(arg, v);
    } else if (arg == "-H" || arg == "--header") {
      if (v.find(':') == std::string_view::npos) Die("--header needs 'Name: value'");
      o.headers.emplace_back(v);
    } else if (arg == "--mix") {
      o.mix = v;
    } else if (arg == "--read-path") {
      o.read_path = v;
    } else if (arg == "--write-path") {
      o.write_path = v;
    } else if (arg == "--label") {
      o.label = v;
    } else if (arg == "--seed") {
      o.seed = ParseNumberFlag<uint64_t>(arg, v);
    }
  }
  if (o.connections == 0) Die("--connections must be >= 1");
  if (o.threads == 0) o.threads = 1;
  o.threads = std::min(o.threads, o.connections);
  if (o.duration_s <= 0) Die("--duration must be > 0");
  if (o.warmup_s < 0 || o.rate < 0 || o.timeout_s <= 0) Die("negative time or rate");
  if (o.gen_events > 0 && !o.body_file.empty())
    Die("--gen-events and --body-file exclude each other");
  return o;
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Die("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<RequestTemplate> BuildTemplates(const Options& o) {
  std::string body;
  std::string content_type = o.content_type;
  if (!o.body_file.empty()) {
    body = ReadFileOrDie(o.body_file);
    const bool ndjson = o.body_file.ends_with(".ndjson") || o.body_file.ends_with(".jsonl");
    if (content_type.empty()) content_type = ndjson ? "application/x-ndjson" : "application/json";
  }
  if (content_type.empty()) content_type = "application/json";
  const uint64_t body_events = body.empty() ? 0 : CountBodyEvents(body);

  if (o.mix.empty()) {
    RequestTemplate t;
    t.method = o.method;
    t.path = o.path;
    t.body = body;
    t.content_type = content_type;
    t.gen_events = o.gen_events;
    t.body_events = body_events;
    return {t};
  }
  RequestTemplate read;
  read.name = "read";
  read.method = "GET";
  read.path = o.read_path;
  read.weight = 0;
  RequestTemplate write;
  write.name = "write";
  write.method = "POST";
  write.path = o.write_path;
  write.body = body;
  write.content_type = content_type;
  write.gen_events = body.empty() ? (o.gen_events > 0 ? o.gen_events : 100) : 0;
  write.body_events = body_events;
  write.weight = 0;
  std::string_view spec = o.mix;
  while (!spec.empty()) {
    const size_t comma = spec.find(',');
    const std::string_view part = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos) Die("--mix wants read=W,write=W");
    const uint32_t w = ParseNumberFlag<uint32_t>("--mix", part.substr(eq + 1));
    if (part.substr(0, eq) == "read") {
      read.weight = w;
    } else if (part.substr(0, eq) == "write") {
      write.weight = w;
    } else {
      Die("--mix names read and write, not '" + std::string(part.substr(0, eq)) + "'");
    }
  }
  std::vector<RequestTemplate> out;
  if (read.weight > 0) out.push_back(read);
  if (write.weight > 0) out.push_back(write);
  if (out.empty()) Die("--mix gives every template weight 0");
  return out;
}

std::shared_ptr<const std::vector<std::string>> LoadUsers(const std::string& path) {
  auto users = std::make_shared<std::vector<std::string>>();
  if (path.empty()) return users;
  std::ifstream in(path);
  if (!in) Die("cannot read " + path);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) users->push_back(line);
  }
  if (users->empty()) Die(path + " holds no user ids");
  return users;
}

// Results of one thread, merged across threads for the report. Two windows, as in wrk2:
// throughput counts the answers that *arrived* in the measured window; latency and status counts
// cover the requests *scheduled* in it (answered possibly later, while draining). In an
// overloaded open loop the two differ: the window starts with the warm-up's backlog.
struct TemplateStats {
  LatencyHistogram latency;
  uint64_t answered = 0;  // answers arrived in the window
  uint64_t ok = 0;        // ... of which 2xx
  uint64_t events = 0;    // events in those 2xx-answered requests
  uint64_t accepted = 0;  // "accepted":N summed over those answers
};

struct Results {
  std::vector<TemplateStats> per_template;
  LatencyHistogram latency;
  std::map<int, uint64_t> statuses;
  std::map<std::string, uint64_t> transport_errors;
  uint64_t completed = 0;  // answers arrived in the window
  uint64_t missed = 0;     // open loop: scheduled sends that never went out before the end
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;

  explicit Results(size_t templates) : per_template(templates) {}
  void Merge(const Results& o) {
    for (size_t i = 0; i < per_template.size(); ++i) {
      per_template[i].latency.Merge(o.per_template[i].latency);
      per_template[i].answered += o.per_template[i].answered;
      per_template[i].ok += o.per_template[i].ok;
      per_template[i].events += o.per_template[i].events;
      per_template[i].accepted += o.per_template[i].accepted;
    }
    latency.Merge(o.latency);
    for (const auto& [k, v] : o.statuses) statuses[k] += v;
    for (const auto& [k, v] : o.transport_errors) transport_errors[k] += v;
    completed += o.completed;
    missed += o.missed;
    bytes_sent += o.bytes_sent;
    bytes_received += o.bytes_received;
  }
  uint64_t errors() const {
    uint64_t n = 0;
    for (const auto& [status, count] : statuses) {
      if (status < 200 || status >= 300) n += count;
    }
    for (const auto& [kind, count] : transport_errors) n += count;
    return n;
  }
};

struct Timeline {
  uint64_t start_ns;
  uint64_t measure_ns;  // end of warm-up
  uint64_t end_ns;      // no request is sent (closed) or scheduled (open) from here on
  uint64_t timeout_ns;
};

// "accepted":N in an ingest answer; 0 when absent.
uint64_t AcceptedCount(std::string_view body) {
  static constexpr std::string_view kKey = "\"accepted\":";
  const size_t at = body.find(kKey);
  if (at == std::string_view::npos) return 0;
  size_t i = at + kKey.size();
  while (i < body.size() && body[i] == ' ') ++i;
  uint64_t n = 0;
  std::from_chars(body.data() + i, body.data() + body.size(), n);
  return n;
}

class Worker {
 public:
  Worker(const Options& options, const addrinfo* address, const RequestSettings& settings,
         std::vector<RequestTemplate> templates, uint32_t thread_index,
         std::vector<uint32_t> connection_ids, const Timeline& timeline)
      : options_(options),
        address_(address),
        timeline_(timeline),
        source_(settings, std::move(templates), thread_index,
                options.seed * 0x9E3779B97F4A7C15ULL + thread_index + 1),
        results_(source_.templates().size()) {
    for (uint32_t id : connection_ids) {
      Conn c;
      if (options.rate > 0) {
        // Each connection carries rate/N; staggering the starts makes the sum a uniform stream.
        c.interval_ns = static_cast<uint64_t>(options.connections * kNsPerSec / options.rate);
        c.next_sched_ns = timeline.start_ns + static_cast<uint64_t>(id * kNsPerSec / options.rate);
      }
      conns_.push_back(std::move(c));
    }
    keep_body_.resize(source_.templates().size());
    for (size_t i = 0; i < keep_body_.size(); ++i) {
      const RequestTemplate& t = source_.templates()[i];
      keep_body_[i] = t.gen_events > 0 || t.body_events > 0;
    }
  }

  ~Worker() {
    for (Conn& c : conns_) {
      if (c.fd >= 0) close(c.fd);
    }
    if (timer_fd_ >= 0) close(timer_fd_);
    if (epoll_fd_ >= 0) close(epoll_fd_);
  }

  void Run();
  const Results& results() const { return results_; }

 private:
  enum class ConnState { kDisconnected, kConnecting, kIdle, kBusy };
  struct Conn {
    int fd = -1;
    ConnState state = ConnState::kDisconnected;
    std::string out;
    size_t out_pos = 0;
    bool want_write = false;
    HttpResponseParser parser;
    uint64_t sched_ns = 0;  // when this request should have gone out (= sent_ns in closed loop)
    uint64_t sent_ns = 0;
    size_t template_index = 0;
    uint64_t events = 0;
    uint64_t interval_ns = 0;  // open loop
    uint64_t next_sched_ns = 0;
    uint64_t reconnect_at_ns = 0;
    uint32_t connect_failures = 0;
  };

  bool open_loop() const { return options_.rate > 0; }
  // A request scheduled (open loop) or sent (closed loop) in the measured window.
  bool Measured(uint64_t sched_ns) const { return InWindow(sched_ns); }
  bool InWindow(uint64_t ns) const { return ns >= timeline_.measure_ns && ns < timeline_.end_ns; }
  void Connect(size_t i, uint64_t now);
  void Disconnect(size_t i, const char* error_kind, uint64_t now);
  void UpdateInterest(size_t i);
  void MaybeSend(size_t i, uint64_t now);
  void Send(size_t i, uint64_t now);
  void Flush(size_t i, uint64_t now);
  void OnReadable(size_t i, uint64_t now);
  void OnComplete(size_t i, uint64_t now);
  void CountError(const char* kind, uint64_t sched_ns) {
    if (Measured(sched_ns)) ++results_.transport_errors[kind];
  }
  uint64_t NextDeadline(uint64_t now) const;
  void ArmTimer(uint64_t deadline_ns);

  const Options& options_;
  const addrinfo* address_;
  const Timeline timeline_;
  RequestSource source_;
  Results results_;
  std::vector<Conn> conns_;
  std::vector<bool> keep_body_;
  int epoll_fd_ = -1;
  int timer_fd_ = -1;
  uint64_t armed_ns_ = 0;
  bool draining_ = false;
};

void Worker::Connect(size_t i, uint64_t now) {
  Conn& c = conns_[i];
  c.fd = socket(address_->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) Die(std::string("socket: ") + std::strerror(errno));
  const int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c.state = ConnState::kConnecting;
  c.out.clear();
  c.out_pos = 0;
  c.want_write = true;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.u64 = i;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &ev);
  if (connect(c.fd, address_->ai_addr, address_->ai_addrlen) < 0 && errno != EINPROGRESS) {
    Disconnect(i, "connect", now);
  }
}

void Worker::Disconnect(size_t i, const char* error_kind, uint64_t now) {
  Conn& c = conns_[i];
  if (error_kind != nullptr) {
    // A failed connect has no request; charge it to the time it happened.
    CountError(error_kind, c.state == ConnState::kBusy ? c.sched_ns : now);
  }
  const bool refused = c.state == ConnState::kConnecting;
  if (c.fd >= 0) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
    close(c.fd);
  }
  c.fd = -1;
  c.state = ConnState::kDisconnected;
  // Back off after failed connects so that a server that is down does not spin the client.
  c.connect_failures = refused ? c.connect_failures + 1 : 0;
  c.reconnect_at_ns =
      now + (refused ? std::min<uint64_t>(c.connect_failures, 10) * 50000000ULL : 0);
}

void Worker::UpdateInterest(size_t i) {
  Conn& c = conns_[i];
  const bool want = c.state == ConnState::kConnecting || c.out_pos < c.out.size();
  if (want == c.want_write) return;
  c.want_write = want;
  epoll_event ev{};
  ev.events = want ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
  ev.data.u64 = i;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
}

void Worker::MaybeSend(size_t i, uint64_t now) {
  Conn& c = conns_[i];
  if (c.state != ConnState::kIdle || draining_) return;
  if (open_loop()) {
    if (c.next_sched_ns > now || c.next_sched_ns >= timeline_.end_ns) return;
  } else if (now >= timeline_.end_ns) {
    return;
  }
  Send(i, now);
}

void Worker::Send(size_t i, uint64_t now) {
  Conn& c = conns_[i];
  c.out.clear();
  c.out_pos = 0;
  c.template_index = source_.Next(&c.out, &c.events);
  c.sent_ns = now;
  if (open_loop()) {
    c.sched_ns = c.next_sched_ns;
    c.next_sched_ns += c.interval_ns;
  } else {
    c.sched_ns = now;
  }
  c.parser.Reset(source_.templates()[c.template_index].method == "HEAD",
                 keep_body_[c.template_index]);
  c.state = ConnState::kBusy;
  Flush(i, now);
}

void Worker::Flush(size_t i, uint64_t now) {
  Conn& c = conns_[i];
  while (c.out_pos < c.out.size()) {
    const ssize_t n = send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_pos += static_cast<size_t>(n);
      if (InWindow(now)) results_.bytes_sent += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    Disconnect(i, "write", now);
    return;
  }
  UpdateInterest(i);
}

void Worker::OnReadable(size_t i, uint64_t now) {
  char buf[64 << 10];
  Conn& c = conns_[i];
  while (c.fd >= 0) {
    const ssize_t n = recv(c.fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      Disconnect(i, c.state == ConnState::kBusy ? "read" : nullptr, now);
      return;
    }
    if (n == 0) {
      if (c.state != ConnState::kBusy) {
        Disconnect(i, nullptr, now);  // the server closed an idle keep-alive connection
        return;
      }
      c.parser.FeedEof();
      if (c.parser.state() == HttpResponseParser::State::kComplete) {
        OnComplete(i, now);
        if (c.fd >= 0) Disconnect(i, nullptr, now);
      } else {
        Disconnect(i, "closed", now);
      }
      return;
    }
    if (InWindow(now)) results_.bytes_received += static_cast<uint64_t>(n);
    if (c.state != ConnState::kBusy) {
      Disconnect(i, "unexpected_data", now);
      return;
    }
    std::string_view data(buf, static_cast<size_t>(n));
    c.parser.Feed(data);
    if (c.parser.state() == HttpResponseParser::State::kError) {
      Disconnect(i, "parse", now);
      return;
    }
    if (c.parser.state() == HttpResponseParser::State::kComplete) {
      OnComplete(i, now);
      return;  // one request in flight per connection: nothing else can be pending
    }
  }
}

void Worker::OnComplete(size_t i, uint64_t now) {
  Conn& c = conns_[i];
  const int status = c.parser.status();
  TemplateStats& t = results_.per_template[c.template_index];
  if (InWindow(now)) {
    ++results_.completed;
    ++t.answered;
    if (status >= 200 && status < 300) {
      ++t.ok;
      t.events += c.events;
      if (keep_body_[c.template_index]) t.accepted += AcceptedCount(c.parser.body());
    }
  }
  if (Measured(c.sched_ns)) {
    const uint64_t micros = (now - c.sched_ns) / 1000;
    ++results_.statuses[status];
    results_.latency.Record(micros);
    t.latency.Record(micros);
  }
  c.state = ConnState::kIdle;
  if (!c.parser.keep_alive()) {
    Disconnect(i, nullptr, now);
    return;
  }
  MaybeSend(i, now);
}

uint64_t Worker::NextDeadline(uint64_t now) const {
  // Wake for: the next scheduled send of an idle connection, reconnects, the end of the run, and
  // a coarse tick for request timeouts.
  uint64_t deadline = now + 50000000ULL;
  if (!draining_) deadline = std::min(deadline, timeline_.end_ns);
  for (const Conn& c : conns_) {
    if (c.state == ConnState::kIdle && open_loop() && !draining_ &&
        c.next_sched_ns < timeline_.end_ns) {
      deadline = std::min(deadline, c.next_sched_ns);
    } else if (c.state == ConnState::kDisconnected && !draining_) {
      deadline = std::min(deadline, c.reconnect_at_ns);
    }
  }
  return std::max(deadline, now + 1);
}

void Worker::ArmTimer(uint64_t deadline_ns) {
  if (deadline_ns == armed_ns_) return;
  armed_ns_ = deadline_ns;
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(deadline_ns / kNsPerSec);
  spec.it_value.tv_nsec = static_cast<long>(deadline_ns % kNsPerSec);
  timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
}

void Worker::Run() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (epoll_fd_ < 0 || timer_fd_ < 0) Die(std::string("epoll/timerfd: ") + std::strerror(errno));
  constexpr uint64_t kTimerTag = ~uint64_t{0};
  epoll_event tev{};
  tev.events = EPOLLIN;
  tev.data.u64 = kTimerTag;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, &tev);

  uint64_t now = MonoNs();
  for (size_t i = 0; i < conns_.size(); ++i) Connect(i, now);
  uint64_t last_timeout_scan = now;
  epoll_event events[256];
  while (true) {
    now = MonoNs();
    if (!draining_ && now >= timeline_.end_ns) draining_ = true;
    if (draining_) {
      bool busy = false;
      for (const Conn& c : conns_) busy = busy || c.state == ConnState::kBusy;
      if (!busy || now >= timeline_.end_ns + timeline_.timeout_ns) break;
    } else {
      for (size_t i = 0; i < conns_.size(); ++i) {
        if (conns_[i].state == ConnState::kDisconnected && conns_[i].reconnect_at_ns <= now) {
          Connect(i, now);
        }
        MaybeSend(i, now);
      }
    }
    if (now - last_timeout_scan >= 50000000ULL) {
      last_timeout_scan = now;
      for (size_t i = 0; i < conns_.size(); ++i) {
        if (conns_[i].state == ConnState::kBusy &&
            now - conns_[i].sent_ns >= timeline_.timeout_ns) {
          Disconnect(i, "timeout", now);
        }
      }
    }
    ArmTimer(NextDeadline(now));
    const int n = epoll_wait(epoll_fd_, events, 256, -1);
    if (n < 0 && errno != EINTR) Die(std::string("epoll_wait: ") + std::strerror(errno));
    now = MonoNs();
    for (int k = 0; k < n; ++k) {
      if (events[k].data.u64 == kTimerTag) {
        uint64_t expirations;
        [[maybe_unused]] ssize_t r = read(timer_fd_, &expirations, sizeof expirations);
        armed_ns_ = 0;
        continue;
      }
      const size_t i = static_cast<size_t>(events[k].data.u64);
      Conn& c = conns_[i];
      if (c.fd < 0) continue;
      if (c.state == ConnState::kConnecting) {
        if ((events[k].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) continue;
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || (events[k].events & (EPOLLERR | EPOLLHUP))) {
          Disconnect(i, "connect", now);
          continue;
        }
        c.state = ConnState::kIdle;
        c.connect_failures = 0;
        UpdateInterest(i);
        MaybeSend(i, now);
        continue;
      }
      if (events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) OnReadable(i, now);
      if (c.fd >= 0 && (events[k].events & EPOLLOUT) && c.out_pos < c.out.size()) Flush(i, now);
    }
  }
  now = MonoNs();
  for (size_t i = 0; i < conns_.size(); ++i) {
    Conn& c = conns_[i];
    if (c.state == ConnState::kBusy) Disconnect(i, "timeout", now);
    // Open loop: every slot scheduled inside the measured window that never went out.
    if (open_loop()) {
      for (uint64_t t = c.next_sched_ns; t < timeline_.end_ns; t += c.interval_ns) {
        if (Measured(t)) ++results_.missed;
      }
    }
  }
}

std::string FormatMicros(uint64_t us) {
  char buf[32];
  if (us < 1000) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 "us", us);
  } else if (us < 1000000) {
    std::snprintf(buf, sizeof buf, "%.2fms", us / 1000.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.2fs", us / 1e6);
  }
  return buf;
}

void WriteLatencyJson(JsonWriter& w, const LatencyHistogram& h) {
  w.BeginObject();
  w.Key("p50").Uint(h.Percentile(50));
  w.Key("p90").Uint(h.Percentile(90));
  w.Key("p99").Uint(h.Percentile(99));
  w.Key("p999").Uint(h.Percentile(99.9));
  w.Key("max").Uint(h.max());
  w.Key("mean").Double(std::round(h.mean() * 10) / 10);
  w.EndObject();
}

void Report(const Options& o, const std::vector<RequestTemplate>& templates, const Results& r) {
  const double secs = o.duration_s;
  uint64_t events = 0;
  uint64_t accepted = 0;
  for (const TemplateStats& t : r.per_template) {
    events += t.events;
    accepted += t.accepted;
  }
  const bool has_events = std::any_of(templates.begin(), templates.end(), [](const auto& t) {
    return t.gen_events > 0 || t.body_events > 0;
  });
  if (o.json) {
    JsonWriter w;
    w.BeginObject();
    if (!o.label.empty()) w.Key("label").String(o.label);
    w.Key("mode").String(o.rate > 0 ? "open" : "closed");
    if (o.rate > 0) w.Key("target_rps").Double(o.rate);
    w.Key("connections").Uint(o.connections);
    w.Key("threads").Uint(o.threads);
    w.Key("duration_s").Double(secs);
    w.Key("requests").Uint(r.completed);
    w.Key("rps").Double(std::round(r.completed / secs * 10) / 10);
    w.Key("measured").Uint(r.latency.count());
    w.Key("errors").Uint(r.errors());
    w.Key("missed").Uint(r.missed);
    w.Key("status").BeginObject();
    for (const auto& [status, count] : r.statuses) w.Key(std::to_string(status)).Uint(count);
    w.EndObject();
    w.Key("transport_errors").BeginObject();
    for (const auto& [kind, count] : r.transport_errors) w.Key(kind).Uint(count);
    w.EndObject();
    w.Key("latency_us");
    WriteLatencyJson(w, r.latency);
    w.Key("mb_out_per_s").Double(std::round(r.bytes_sent / secs / 1e5) / 10);
    w.Key("mb_in_per_s").Double(std::round(r.bytes_received / secs / 1e5) / 10);
    if (has_events) {
      w.Key("events").Uint(events);
      w.Key("events_per_s").Double(std::round(events / secs));
      w.Key("accepted").Uint(accepted);
    }
    if (templates.size() > 1) {
      w.Key("templates").BeginObject();
      for (size_t i = 0; i < templates.size(); ++i) {
        const TemplateStats& t = r.per_template[i];
        w.Key(templates[i].name).BeginObject();
        w.Key("requests").Uint(t.answered);
        w.Key("rps").Double(std::round(t.answered / secs * 10) / 10);
        w.Key("ok").Uint(t.ok);
        w.Key("latency_us");
        WriteLatencyJson(w, t.latency);
        if (t.events > 0) w.Key("events_per_s").Double(std::round(t.events / secs));
        w.EndObject();
      }
      w.EndObject();
    }
    w.EndObject();
    std::printf("%s\n", w.str().c_str());
    return;
  }
  std::printf(
      "%s loop%s, %u connections, %u thread%s, %.1f s measured after %.1f s warm-up\n",
      o.rate > 0 ? "open" : "closed",
      o.rate > 0 ? (" at " + std::to_string(static_cast<uint64_t>(o.rate)) + " req/s").c_str() : "",
      o.connections, o.threads, o.threads == 1 ? "" : "s", secs, o.warmup_s);
  std::printf("  requests  %" PRIu64 "  (%.1f req/s)   errors %" PRIu64, r.completed,
              r.completed / secs, r.errors());
  if (o.rate > 0) std::printf("   missed %" PRIu64, r.missed);
  std::printf("\n  status   ");
  for (const auto& [status, count] : r.statuses) std::printf(" %d: %" PRIu64, status, count);
  for (const auto& [kind, count] : r.transport_errors) {
    std::printf(" %s: %" PRIu64, kind.c_str(), count);
  }
  std::printf("\n");
  auto latency_line = [](const char* name, const LatencyHistogram& h) {
    std::printf("  %-8s p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s)\n", name,
                FormatMicros(h.Percentile(50)).c_str(), FormatMicros(h.Percentile(90)).c_str(),
                FormatMicros(h.Percentile(99)).c_str(), FormatMicros(h.Percentile(99.9)).c_str(),
                FormatMicros(h.max()).c_str(),
                FormatMicros(static_cast<uint64_t>(h.mean())).c_str());
  };
  latency_line("latency", r.latency);
  if (r.latency.count() != r.completed) {
    std::printf("  (latency of the %" PRIu64 " requests %s in the window)\n", r.latency.count(),
                o.rate > 0 ? "scheduled" : "sent");
  }
  if (templates.size() > 1) {
    for (size_t i = 0; i < templates.size(); ++i) {
      const TemplateStats& t = r.per_template[i];
      std::printf("  %-8s %" PRIu64 " requests (%.1f req/s)\n", templates[i].name.c_str(),
                  t.answered, t.answered / secs);
      latency_line("", t.latency);
    }
  }
  if (has_events) {
    std::printf("  events    %" PRIu64 " sent in 2xx requests (%.0f events/s), %" PRIu64
                " accepted\n",
                events, events / secs, accepted);
  }
  std::printf("  transfer  %.1f MB/s out, %.1f MB/s in\n", r.bytes_sent / secs / 1e6,
              r.bytes_received / secs / 1e6);
}

int Main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  const Options options = ParseOptions(argc, argv);
  const std::vector<RequestTemplate> templates = BuildTemplates(options);

  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* resolved = nullptr;
  if (int rc = getaddrinfo(options.host.c_str(), options.port.c_str(), &hints, &resolved);
      rc != 0) {
    Die("cannot resolve " + options.host + ":" + options.port + ": " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> address(resolved, &freeaddrinfo);

  RequestSettings settings;
  settings.host_header = options.host + ":" + options.port;
  settings.extra_headers = options.headers;
  settings.users = LoadUsers(options.users_file);
  settings.user_count = options.user_count;
  settings.run_id = options.seed != 0 ? options.seed : std::random_device()();
  settings.run_id = (settings.run_id << 20) ^ static_cast<uint64_t>(std::time(nullptr));

  Timeline timeline;
  timeline.start_ns = MonoNs();
  timeline.measure_ns = timeline.start_ns + static_cast<uint64_t>(options.warmup_s * kNsPerSec);
  timeline.end_ns = timeline.measure_ns + static_cast<uint64_t>(options.duration_s * kNsPerSec);
  timeline.timeout_ns = static_cast<uint64_t>(options.timeout_s * kNsPerSec);

  std::vector<std::unique_ptr<Worker>> workers;
  for (uint32_t t = 0; t < options.threads; ++t) {
    std::vector<uint32_t> ids;
    for (uint32_t c = t; c < options.connections; c += options.threads) ids.push_back(c);
    workers.push_back(std::make_unique<Worker>(options, address.get(), settings, templates, t,
                                               std::move(ids), timeline));
  }
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->Run(); });
  for (auto& th : threads) th.join();

  Results total(templates.size());
  for (const auto& w : workers) total.Merge(w->results());
  Report(options, templates, total);
  return total.completed == 0 ? 1 : 0;
}

}  // namespace
}  // namespace persona::loadgen

int main(int argc, char** argv) { return persona::loadgen::Main(argc, argv); }
