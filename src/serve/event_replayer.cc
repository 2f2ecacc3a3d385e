#include "serve/event_replayer.h"

#include <simdjson.h>

#include <algorithm>
#include <bit>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cmath>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/json_writer.h"
#include "event/event_reader.h"
#include "event/json_event.h"

namespace persona::serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// An answer listing every rejected event of a 10000-event batch is a few MB at most.
constexpr uint64_t kMaxResponseBytes = 64ull << 20;
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);
constexpr auto kMaxRetryAfter = std::chrono::seconds(60);

// Batch latencies for the summary: log-linear buckets of microseconds, exact below 64 us and 32
// buckets per power of two above (a reported percentile is within 3% of the true value), in
// ~2000 counters whatever the run's length.
constexpr size_t kExactBuckets = 64;
constexpr size_t kSubBuckets = 32;
constexpr size_t kLatencyBuckets = kExactBuckets + (64 - 6) * kSubBuckets;

size_t BucketOf(uint64_t us) {
  if (us < kExactBuckets) return us;
  const int e = std::bit_width(us) - 1;  // >= 6
  return kExactBuckets + (e - 6) * kSubBuckets + ((us >> (e - 5)) & (kSubBuckets - 1));
}

// The midpoint of bucket `i`.
double BucketMid(size_t i) {
  if (i < kExactBuckets) return static_cast<double>(i);
  const size_t k = i - kExactBuckets;
  const int e = static_cast<int>(k / kSubBuckets) + 6;
  const uint64_t width = uint64_t{1} << (e - 5);
  const uint64_t low = (uint64_t{1} << e) + (k % kSubBuckets) * width;
  return static_cast<double>(low) + static_cast<double>(width) / 2;
}

double HistogramPercentile(const std::vector<uint64_t>& buckets, double p, uint64_t max_us) {
  uint64_t total = 0;
  for (uint64_t c : buckets) total += c;
  if (total == 0) return 0;
  const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(p * total)));
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    seen += buckets[i];
    if (seen >= rank) return std::min(BucketMid(i), static_cast<double>(max_us));
  }
  return static_cast<double>(max_us);
}

// The p-th value of `sorted` (nearest rank).
double SortedPercentile(const std::vector<uint64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t rank = std::max<size_t>(1, static_cast<size_t>(std::ceil(p * sorted.size())));
  return static_cast<double>(sorted[std::min(rank, sorted.size()) - 1]);
}

// "http://host[:port][/prefix]" -> host, port and the events target "<prefix>/v1/events".
absl::Status ParseUrl(const std::string& url, std::string* host, std::string* port,
                      std::string* target) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind("https://", 0) == 0) {
    return absl::InvalidArgumentError(
        "--url: https is not supported by replay; use the server's plain http port (or a "
        "local TLS-terminating proxy)");
  }
  if (url.rfind(kScheme, 0) != 0) {
    return absl::InvalidArgumentError("--url must look like http://host:port, not '" + url + "'");
  }
  std::string rest = url.substr(kScheme.size());
  std::string prefix;
  if (const size_t slash = rest.find('/'); slash != std::string::npos) {
    prefix = rest.substr(slash);
    rest.resize(slash);
  }
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  const size_t bracket = rest.find(']');
  const size_t colon = rest.rfind(':');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    *host = rest.substr(0, colon);
    *port = rest.substr(colon + 1);
  } else {
    *host = rest;
    *port = "80";
  }
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  uint32_t port_number = 0;
  if (host->empty() || !absl::SimpleAtoi(*port, &port_number) || port_number == 0 ||
      port_number > 65535) {
    return absl::InvalidArgumentError("--url must look like http://host:port, not '" + url + "'");
  }
  *target = prefix + "/v1/events";
  return absl::OkStatus();
}

// {"error": ..., "detail": ...} of an error answer, or the start of a body that is not that.
std::string ErrorText(int status, std::string_view body, std::string* code) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view error, detail;
  if (!parser.parse(body.data(), body.size()).get(root) && !root["error"].get(error)) {
    if (root["detail"].get(detail)) detail = {};
    *code = std::string(error);
    return absl::StrCat("HTTP ", status, " ", *code, detail.empty() ? "" : ": ",
                        std::string(detail));
  }
  code->clear();
  std::string start(body.substr(0, 200));
  for (char& c : start) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return absl::StrCat("HTTP ", status, start.empty() ? "" : ": ", start);
}

// InvalidArgument naming the file (the reader's messages mostly name it already).
absl::Status OpenError(const std::string& path, const absl::Status& status) {
  const std::string message(status.message());
  return absl::InvalidArgumentError(
      message.find(path) != std::string::npos ? message : absl::StrCat(path, ": ", message));
}

// A whole-second Retry-After (the form the server sends); 1 s when absent or a date.
std::chrono::milliseconds RetryAfter(std::string_view value) {
  int64_t seconds = 0;
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (!absl::SimpleAtoi(std::string(value), &seconds) || seconds < 0) {
    return std::chrono::seconds(1);
  }
  return std::min<std::chrono::milliseconds>(std::chrono::seconds(seconds), kMaxRetryAfter);
}

}  // namespace

struct EventReplayer::Batch {
  size_t file = 0;  // index into options_.files
  std::string body;
  std::vector<uint32_t> lines;  // the source line of each event, in body order
  Clock::time_point due;
  uint64_t events() const { return lines.size(); }
};

// One keep-alive connection and the thread that drives it. Each exchange runs the io_context
// until its handlers finish, so the code reads as blocking calls while Beast's tcp_stream
// enforces the deadline; Abort stops the io_context to end an exchange early.
struct EventReplayer::Sender {
  asio::io_context io{1};
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  bool reused = false;  // the open connection has answered a request before
  std::thread thread;

  void Close() {
    if (stream) {
      beast::error_code ignored;
      stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream.reset();
    }
    buffer.clear();
    reused = false;
  }
};

EventReplayer::EventReplayer(ReplayOptions options, MessageSink on_message,
                             ProgressSink on_progress)
    : options_(std::move(options)),
      on_message_(std::move(on_message)),
      on_progress_(std::move(on_progress)),
      latency_buckets_(kLatencyBuckets, 0) {}

EventReplayer::~EventReplayer() {
  Abort(absl::OkStatus());
  for (auto& s : senders_) {
    if (s->thread.joinable()) s->thread.join();
  }
}

void EventReplayer::Stop() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  cv_.notify_all();
}

void EventReplayer::Abort(absl::Status status) {
  {
    std::lock_guard lock(mu_);
    if (fatal_.ok()) fatal_ = std::move(status);
    stopping_ = true;
    aborting_ = true;
    cv_.notify_all();
  }
  // A sender restarts its io_context only after checking aborting_, so this stop cannot be lost.
  for (auto& s : senders_) s->io.stop();
}

void EventReplayer::Message(std::string_view text) {
  if (!on_message_) return;
  std::lock_guard lock(message_mu_);
  on_message_(text);
}

bool EventReplayer::SleepUntil(Clock::time_point deadline, bool stop_too) {
  std::unique_lock lock(mu_);
  return cv_.wait_until(lock, deadline, [&] { return aborting_ || (stop_too && stopping_); });
}

absl::Status EventReplayer::Validate(const ReplayOptions& options) {
  std::string host, port, target;
  if (absl::Status s = ParseUrl(options.url, &host, &port, &target); !s.ok()) return s;
  if (options.files.empty()) return absl::InvalidArgumentError("no input files");
  if (options.batch == 0) return absl::InvalidArgumentError("--batch must be >= 1");
  if (options.connections == 0) return absl::InvalidArgumentError("--connections must be >= 1");
  if (!(options.rate >= 0) || !std::isfinite(options.rate)) {
    return absl::InvalidArgumentError("--rate must be a number >= 0");
  }
  if ((options.loop || options.loop_shift) &&
      std::find(options.files.begin(), options.files.end(), "-") != options.files.end()) {
    return absl::InvalidArgumentError("--loop cannot repeat stdin ('-')");
  }
  // Open every file once, so that a typo fails before anything is sent (not stdin: opening it
  // would consume its header).
  for (const std::string& path : options.files) {
    if (path == "-") continue;
    auto reader = EventReader::Open(path, options.format, options.limits);
    if (!reader.ok()) return OpenError(path, reader.status());
  }
  return absl::OkStatus();
}

ReplayReport EventReplayer::Run() {
  ReplayReport report;
  report.status = Validate(options_);
  if (!report.status.ok()) return report;
  if (absl::Status s = ParseUrl(options_.url, &host_, &port_, &target_); !s.ok()) {
    report.status = s;
    return report;
  }
  if (InputFormatLacksPrice(options_.format)) {
    Message(absl::StrCat("note: ", std::string(InputFormatName(options_.format)),
                         " files have no prices; POST /v1/events requires one on purchases and "
                         "refunds, so the server rejects those (persona import accepts them)"));
  }
  {
    std::lock_guard lock(mu_);
    if (stopping_) return report;  // Stop came first: nothing to do
    start_ = Clock::now();
    interval_start_ = start_;
    senders_running_ = options_.connections;
  }
  for (uint32_t i = 0; i < options_.connections; ++i) {
    senders_.push_back(std::make_unique<Sender>());
  }
  for (auto& s : senders_) s->thread = std::thread([this, sender = s.get()] { SendLoop(*sender); });
  std::thread reader([this] { ReadFiles(); });

  auto next_report = start_ + options_.progress_interval;
  std::optional<Clock::time_point> drain_deadline;
  while (true) {
    std::unique_lock lock(mu_);
    auto wake = next_report;
    if (drain_deadline) {
      wake = std::min(wake, *drain_deadline);
    } else if (options_.duration.count() > 0) {
      wake = std::min(wake, start_ + options_.duration);
    }
    cv_.wait_until(lock, wake, [&] {
      return (reading_done_ && senders_running_ == 0) || aborting_ ||
             (stopping_ && !drain_deadline);
    });
    const auto now = Clock::now();
    if (reading_done_ && senders_running_ == 0) break;
    if (aborting_) break;
    if (options_.duration.count() > 0 && now - start_ >= options_.duration) stopping_ = true;
    if (stopping_ && !drain_deadline) {
      drain_deadline = now + options_.drain_timeout;
      cv_.notify_all();
    }
    if (drain_deadline && now >= *drain_deadline) {
      lock.unlock();
      Message(absl::StrCat("gave up waiting for batches in flight after ",
                           options_.drain_timeout.count() / 1000.0, " s"));
      Abort(absl::OkStatus());
      break;
    }
    if (now >= next_report) {
      next_report += options_.progress_interval;
      if (next_report < now) next_report = now + options_.progress_interval;
      ReplayProgress progress = Snapshot(/*final=*/false);
      lock.unlock();
      if (on_progress_) on_progress_(progress);
    }
  }
  // Aborting: senders see aborting_ or their stopped io_context, the reader sees aborting_.
  reader.join();
  for (auto& s : senders_) s->thread.join();
  std::lock_guard lock(mu_);
  report.status = fatal_;
  report.totals = Snapshot(/*final=*/true);
  report.reasons = reasons_;
  return report;
}

ReplayProgress EventReplayer::Snapshot(bool final) {
  const auto now = Clock::now();
  ReplayProgress p = counts_;
  p.elapsed_s = std::chrono::duration<double>(now - start_).count();
  if (final) {
    const uint64_t answered = p.accepted + p.duplicates + p.rejected;
    p.unacknowledged = p.sent > answered ? p.sent - answered : 0;
    p.not_sent = p.read > p.sent ? p.read - p.sent : 0;
    p.events_per_s = p.elapsed_s > 0 ? p.sent / p.elapsed_s : 0;
    p.p50_ms = HistogramPercentile(latency_buckets_, 0.50, latency_max_us_) / 1000;
    p.p99_ms = HistogramPercentile(latency_buckets_, 0.99, latency_max_us_) / 1000;
    p.max_ms = latency_max_us_ / 1000.0;
    return p;
  }
  const double secs = std::chrono::duration<double>(now - interval_start_).count();
  p.events_per_s = secs > 0 ? interval_sent_ / secs : 0;
  std::sort(interval_latency_us_.begin(), interval_latency_us_.end());
  p.p50_ms = SortedPercentile(interval_latency_us_, 0.50) / 1000;
  p.p99_ms = SortedPercentile(interval_latency_us_, 0.99) / 1000;
  p.max_ms = interval_latency_us_.empty() ? 0 : interval_latency_us_.back() / 1000.0;
  interval_latency_us_.clear();
  interval_sent_ = 0;
  interval_start_ = now;
  return p;
}

void EventReplayer::ReadFiles() {
  const bool shift = options_.loop_shift;
  const bool loop = options_.loop || shift;
  const size_t capacity = 2 * options_.connections + 1;
  int64_t min_ts = INT64_MAX, max_ts = INT64_MIN;  // of the first pass, for the shift
  uint64_t shown = 0;
  auto finish = [&](absl::Status error) {
    if (!error.ok()) {
      Abort(std::move(error));
      return;
    }
    std::lock_guard lock(mu_);
    reading_done_ = true;
    cv_.notify_all();
  };
  // Hands a full batch to the senders; false when the replay is stopping.
  auto enqueue = [&](std::unique_ptr<Batch> batch) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return queue_.size() < capacity || stopping_; });
    if (stopping_) return false;
    queue_.push_back(std::move(batch));
    cv_.notify_all();
    return true;
  };
  auto stopping = [&] {
    std::lock_guard lock(mu_);
    return stopping_;
  };

  JsonWriter w;
  std::vector<EventIssue> issues;
  std::string event_id, session_id, order_id;  // a repeat's suffixed ids
  for (uint64_t pass = 0;; ++pass) {
    const std::string suffix = absl::StrCat("~", pass);
    const int64_t shift_ms =
        shift && pass > 0 ? static_cast<int64_t>(pass) * (max_ts - min_ts + 1) : 0;
    uint64_t pass_events = 0;
    for (size_t f = 0; f < options_.files.size(); ++f) {
      const std::string& path = options_.files[f];
      auto reader = EventReader::Open(path, options_.format, options_.limits);
      if (!reader.ok()) return finish(OpenError(path, reader.status()));
      auto batch = std::make_unique<Batch>();
      batch->file = f;
      auto begin_batch = [&] {
        w.Clear();
        w.Reserve(options_.batch * 320);
        w.BeginArray();
      };
      auto end_batch = [&] {
        w.EndArray();
        batch->body = w.Take();
        const bool queued = enqueue(std::move(batch));
        batch = std::make_unique<Batch>();
        batch->file = f;
        begin_batch();
        return queued;
      };
      begin_batch();
      bool more = true;
      while (more) {
        if (stopping()) return finish(absl::OkStatus());
        EventBatch events;
        issues.clear();
        more = (*reader)->Next(options_.batch - batch->events(), &events, &issues);
        if (!issues.empty() || !events.events.empty()) {
          std::lock_guard lock(mu_);
          counts_.bad_lines += issues.size();
          counts_.read += events.events.size();
        }
        for (const EventIssue& is : issues) {
          if (shown++ >= options_.show_errors) {
            if (shown == uint64_t{options_.show_errors} + 1) {
              Message("further bad lines are only counted (--show-errors)");
            }
            continue;
          }
          Message(absl::StrCat(path, ": line ", is.index_or_line, ": ",
                               is.field.empty() ? "" : absl::StrCat("field '", is.field, "': "),
                               is.rule));
        }
        for (size_t i = 0; i < events.events.size(); ++i) {
          const Event& e = events.events[i];
          if (pass == 0) {
            min_ts = std::min(min_ts, e.ts_ms);
            max_ts = std::max(max_ts, e.ts_ms);
          }
          if (shift_ms != 0) {
            Event repeat = e;
            repeat.ts_ms += shift_ms;
            auto suffixed = [&](std::string_view id, std::string* out) {
              if (id.empty()) return id;
              *out = absl::StrCat(std::string(id), suffix);
              return std::string_view(*out);
            };
            repeat.event_id = suffixed(e.event_id, &event_id);
            repeat.session_id = suffixed(e.session_id, &session_id);
            repeat.order_id = suffixed(e.order_id, &order_id);
            WriteEventJson(w, repeat);
          } else {
            WriteEventJson(w, e);
          }
          batch->lines.push_back(events.source_index[i]);
          ++pass_events;
          if (batch->events() >= options_.batch && !end_batch()) return finish(absl::OkStatus());
        }
      }
      if (!(*reader)->status().ok()) {
        return finish(absl::InternalError(
            absl::StrCat(path, ": read error: ", (*reader)->status().message())));
      }
      if (batch->events() > 0 && !end_batch()) return finish(absl::OkStatus());
    }
    {
      std::lock_guard lock(mu_);
      ++counts_.passes;
    }
    if (!loop) break;
    if (pass_events == 0) {
      Message("no valid events to repeat: --loop ends after the first pass");
      break;
    }
  }
  finish(absl::OkStatus());
}

void EventReplayer::SendLoop(Sender& sender) {
  while (true) {
    std::unique_ptr<Batch> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return !queue_.empty() || reading_done_ || stopping_; });
      if (stopping_ || queue_.empty()) break;
      batch = std::move(queue_.front());
      queue_.pop_front();
      // Open loop: batch k is due when its last event is, at `rate`, counted from the start.
      scheduled_events_ += batch->events();
      batch->due =
          options_.rate > 0
              ? start_ + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(scheduled_events_ / options_.rate))
              : Clock::now();
      cv_.notify_all();  // room for the reader
    }
    if (SleepUntil(batch->due, /*stop_too=*/true)) break;  // stopped before it was due: not sent
    if (!Deliver(sender, *batch)) break;
  }
  sender.Close();
  std::lock_guard lock(mu_);
  --senders_running_;
  cv_.notify_all();
}

bool EventReplayer::Deliver(Sender& sender, Batch& batch) {
  http::request<http::string_body> request{http::verb::post, target_, 11};
  const std::string host = host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_;
  request.set(http::field::host, port_ == "80" ? host : absl::StrCat(host, ":", port_));
  request.set(http::field::content_type, "application/json");
  request.set(http::field::user_agent, "persona-replay");
  if (!options_.api_key.empty()) {
    request.set(http::field::authorization, "Bearer " + options_.api_key);
  }
  request.keep_alive(true);
  request.body() = std::move(batch.body);
  request.prepare_payload();
  const uint64_t n = batch.events();
  {
    std::lock_guard lock(mu_);
    counts_.sent += n;
    interval_sent_ += n;
  }

  std::optional<Clock::time_point> first_failure;
  auto backoff = std::chrono::milliseconds(kFirstBackoff);
  // A failure that may pass: retried after `wait` unless it has lasted `timeout`. `cause` names
  // the kind of failure (reported once), `what` says what happened this time.
  auto retry = [&](const std::string& cause, const std::string& what,
                   std::chrono::milliseconds wait) {
    const auto now = Clock::now();
    if (!first_failure) first_failure = now;
    if (now - *first_failure >= options_.timeout) {
      Abort(absl::UnavailableError(
          absl::StrCat("cannot deliver to ", options_.url, ": ", what, "; gave up after ",
                       options_.timeout.count() / 1000.0, " s (--timeout)")));
      return false;
    }
    bool first_time = false;
    {
      std::lock_guard lock(mu_);
      ++counts_.retries;
      first_time = told_.insert(cause).second;
    }
    if (first_time) Message(absl::StrCat(what, " (retrying; reported once)"));
    // The last wait ends at the deadline, so that giving up takes about `timeout`, not more.
    return !SleepUntil(std::min(now + wait, *first_failure + options_.timeout),
                       /*stop_too=*/false);
  };

  while (true) {
    {
      std::lock_guard lock(mu_);
      if (aborting_) return false;
    }
    // Connect when needed, then write the request and read the answer, in one run of io.
    const bool reused = sender.reused;
    beast::error_code ec;
    bool done = false;
    const char* stage = "connecting to";
    std::optional<http::response_parser<http::string_body>> parser;
    parser.emplace();
    parser->body_limit(kMaxResponseBytes);
    auto exchange = [&] {
      stage = "sending to";
      sender.stream->expires_after(options_.timeout);
      http::async_write(*sender.stream, request, [&](beast::error_code wec, size_t) {
        if (wec) {
          ec = wec;
          done = true;
          return;
        }
        stage = "reading the answer of";
        http::async_read(*sender.stream, sender.buffer, *parser,
                         [&](beast::error_code rec, size_t) {
                           ec = rec;
                           done = true;
                         });
      });
    };
    if (!sender.stream) {
      tcp::resolver resolver(sender.io);
      auto endpoints = resolver.resolve(host_, port_, ec);
      if (ec) {
        stage = "resolving";
        done = true;
      } else {
        sender.stream.emplace(sender.io);
        sender.stream->expires_after(options_.timeout);
        sender.stream->async_connect(endpoints, [&](beast::error_code cec, const tcp::endpoint&) {
          if (cec) {
            ec = cec;
            done = true;
            return;
          }
          exchange();
        });
      }
    } else {
      exchange();
    }
    if (!done) {
      sender.io.restart();
      {
        std::lock_guard lock(mu_);
        if (aborting_) {
          sender.Close();
          return false;
        }
      }
      sender.io.run();
    }
    if (!done) {  // Abort stopped the io_context mid-exchange
      sender.Close();
      return false;
    }
    if (ec) {
      sender.Close();
      // A kept-alive connection the server closed while idle fails at once: resend on a new one
      // without counting a failure (the server never saw the request, or dedupes it by id).
      if (reused && ec != beast::error::timeout) continue;
      const std::string what = ec == beast::error::timeout
                                   ? absl::StrCat("no answer from ", options_.url, " within ",
                                                  options_.timeout.count() / 1000.0, " s")
                                   : absl::StrCat(stage, " ", options_.url, ": ", ec.message());
      if (!retry(absl::StrCat(stage, " ", ec.message()), what, backoff)) return false;
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
      continue;
    }
    http::response<http::string_body> response = parser->release();
    sender.reused = true;
    if (!response.keep_alive()) sender.Close();
    const int status = static_cast<int>(response.result_int());
    if (status == 429 || status >= 500) {
      std::string code;
      const std::string what = ErrorText(status, response.body(), &code);
      // Retry-After tells when to come back; a 5xx without one is backed off like a failure.
      const auto it = response.find(http::field::retry_after);
      std::chrono::milliseconds wait = backoff;
      if (it != response.end()) {
        wait = RetryAfter(it->value());
      } else {
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
      }
      if (!retry(absl::StrCat("HTTP ", status, " ", code),
                 absl::StrCat("the server answered ", what), wait)) {
        return false;
      }
      continue;
    }
    const auto latency = Clock::now() - batch.due;
    {
      std::lock_guard lock(mu_);
      const uint64_t us = static_cast<uint64_t>(std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::microseconds>(latency).count()));
      interval_latency_us_.push_back(us);
      ++latency_buckets_[std::min(BucketOf(us), kLatencyBuckets - 1)];
      latency_max_us_ = std::max(latency_max_us_, us);
      ++counts_.batches;
    }
    if (status == 200 || status == 207) {
      CountAnswer(batch, response.body());
    } else {
      CountRejectedBatch(batch, status, response.body());
    }
    return true;
  }
}

void EventReplayer::CountAnswer(const Batch& batch, std::string_view body) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  uint64_t accepted = 0, duplicates = 0;
  simdjson::dom::array rejected;
  if (parser.parse(body.data(), body.size()).get(root) || root["accepted"].get(accepted) ||
      root["duplicates"].get(duplicates) || root["rejected"].get(rejected)) {
    CountRejectedBatch(batch, 200, body);
    return;
  }
  std::vector<std::pair<std::string, uint64_t>> first_seen;  // reason, line
  {
    std::lock_guard lock(mu_);
    counts_.accepted += accepted;
    counts_.duplicates += duplicates;
    counts_.rejected += rejected.size();
    for (simdjson::dom::element r : rejected) {
      uint64_t index = 0;
      std::string_view field, reason;
      // Each member is optional here: a missing one reads as 0 / "".
      if (r["index"].get(index)) index = 0;
      if (r["field"].get(field)) field = {};
      if (r["reason"].get(reason)) reason = "rejected";
      std::string key =
          field.empty() ? std::string(reason)
                        : absl::StrCat("field '", std::string(field), "': ", std::string(reason));
      if (reasons_[key]++ == 0) {
        first_seen.emplace_back(std::move(key),
                                index < batch.lines.size() ? batch.lines[index] : 0);
      }
    }
  }
  for (const auto& [reason, line] : first_seen) {
    Message(absl::StrCat(options_.files[batch.file], ": line ", line,
                         ": rejected by the server: ", reason, " (reported once per reason)"));
  }
}

void EventReplayer::CountRejectedBatch(const Batch& batch, int status, std::string_view body) {
  std::string code;
  std::string text = ErrorText(status, body, &code);
  if (status == 200 || status == 207) {
    text = absl::StrCat("HTTP ", status, " with an unexpected body (is ", options_.url,
                        " a Persona server?)");
    code = "unexpected_body";
  }
  const std::string key = absl::StrCat("HTTP ", status, " ", code);
  bool first = false;
  {
    std::lock_guard lock(mu_);
    counts_.rejected += batch.events();
    uint64_t& events = reasons_[key];
    first = events == 0;
    events += batch.events();
  }
  if (status == 401 || status == 403) {
    const std::string detail = absl::StrCat("the server refused the API key: ", text);
    Abort(status == 401 ? absl::UnauthenticatedError(detail) : absl::PermissionDeniedError(detail));
    return;
  }
  if (first) {
    Message(absl::StrCat(options_.files[batch.file], ": a batch of ", batch.events(),
                         " events was rejected by the server: ", text,
                         " (reported once per reason)"));
  }
}

}  // namespace persona::serve
