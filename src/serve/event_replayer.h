// EventReplayer: the client half of POST /v1/events (docs/openapi.yaml "events"), behind
// `persona replay`. It reads event files with the import readers (event/event_reader.h), writes
// the valid events as JSON arrays of `batch` events (WriteEventJson) and posts them to a running
// server over `connections` keep-alive connections, paced open-loop to `rate` events/s in total:
// batch k is due when its last event would have arrived at that rate, whether or not earlier
// batches were answered, and its latency is measured from that due time, so a slow server shows
// as growing latency instead of a slower sender (no coordinated omission).
//
// What happens to each event:
//  - a bad line is reported with its file and line (the import command's wording) and counted as
//    bad, never sent;
//  - 200/207 answers count accepted, duplicates and rejected as the server reports them; a
//    server rejection is reported once per distinct reason, with the file and line of its first
//    occurrence;
//  - 429, and 5xx answers (503 during start or drain, 502/504 from a cluster forwarder), resend
//    the same batch after the answer's Retry-After (at most 60 s), or after the backoff below when
//    it has none; a connection that cannot be opened, drops or times out resends it after a
//    backoff of 0.1 s doubling to 2 s. Nothing is skipped: a batch is given up only when it has
//    been failing for `timeout`, and then the whole replay stops with Unavailable, because a
//    server that cannot take one batch cannot take the rest either;
//  - 401/403 stop the replay at once with Unauthenticated/PermissionDenied (the key is wrong for
//    every batch); other 4xx (400, 413, 415) count the batch's events as rejected and go on.
//
// Repeats: with `loop` the files are read again and again until Stop or `duration`. The server
// drops a repeated event as a duplicate while it remembers its id (engine config
// dedup_window_ms / dedup_recent_events), and applies it again, as a late old event, once it has
// forgotten it. `loop_shift` makes every repeat a new stream instead: pass N shifts each event's
// time by N times the time span of the input (the first pass's latest ts - earliest + 1 ms) and
// suffixes its event_id, session_id and order_id with "~N", so the server sees fresh events that
// continue the input in time.
//
// Threading: Run blocks the calling thread (which reports progress) and uses one reader thread
// plus one thread per connection; Stop may be called from any thread. Reading stdin ("-"), Stop
// also waits for the input to end or close: a blocked read of a pipe cannot be interrupted.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "event/csv_formats.h"
#include "event/validate.h"

namespace persona::serve {

struct ReplayOptions {
  std::string url;  // "http://host[:port][/prefix]"; events go to <prefix>/v1/events
  std::vector<std::string> files;
  InputFormat format = InputFormat::kJsonl;
  ValidationLimits limits;
  double rate = 0;  // events/s over all connections; 0 = as fast as the server acknowledges
  uint32_t batch = 500;
  uint32_t connections = 2;
  std::string api_key;  // sent as "Authorization: Bearer <key>" when not empty
  bool loop = false;
  bool loop_shift = false;  // implies loop
  // Stop after this long (0 = when the input ends, or never with loop).
  std::chrono::milliseconds duration{0};
  // Deadline of one request, and how long a batch may keep failing before the replay gives up.
  std::chrono::milliseconds timeout{30000};
  // After Stop (or `duration`), how long batches already sent may take to be acknowledged.
  std::chrono::milliseconds drain_timeout{10000};
  // Bad lines printed (file: line N: ...) before the rest are only counted.
  uint32_t show_errors = 10;
  // How often `on_progress` is called.
  std::chrono::milliseconds progress_interval{1000};
};

// Counts since the start of Run. At the end, each valid event read ends up in exactly one of
// accepted, duplicates, rejected, unacknowledged (sent, no answer in time) or not_sent (read ahead
// but not sent when the replay stopped); bad lines are counted apart and never sent.
struct ReplayProgress {
  double elapsed_s = 0;
  uint64_t read = 0;       // valid events read from the files
  uint64_t bad_lines = 0;  // lines that did not parse or validate; never sent
  uint64_t sent = 0;       // events of batches posted at least once
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
  uint64_t rejected = 0;        // by the server (207 entries, and whole batches answered 4xx)
  uint64_t unacknowledged = 0;  // sent, given up (timeout, drain ran out; final report only)
  uint64_t not_sent = 0;        // read but not sent when the replay stopped (final report only)
  uint64_t batches = 0;         // answered with a final status (2xx or 4xx)
  uint64_t retries = 0;         // resends after 429/5xx or a connection failure
  uint64_t passes = 0;          // completed passes over the files
  // Since the previous progress report (whole run for the final one): events sent per second and
  // batch latency from due time to answer. Latencies are 0 when no batch was answered.
  double events_per_s = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;

  uint64_t acknowledged() const { return accepted + duplicates; }
};

// What Run returns: the final counts (latency over the whole run) and why it ended.
struct ReplayReport {
  // OK when the input ended, Stop was called or `duration` passed, whatever the server answered.
  // InvalidArgument: bad url, options, or a file that cannot be opened (nothing was sent).
  // Unavailable: the server could not be reached or kept failing a batch for `timeout`.
  // Unauthenticated / PermissionDenied: the server refused the API key. Internal: a read error.
  absl::Status status;
  ReplayProgress totals;
  // Server rejection reasons ("field 'price': must be ...", or "HTTP 413 batch_too_large" for a
  // whole batch) with the number of events each rejected.
  std::map<std::string, uint64_t> reasons;
};

class EventReplayer {
 public:
  // Messages for the user (bad lines, server reasons, give-up notices), one line each without a
  // trailing newline. Called from the replayer's threads, one call at a time.
  using MessageSink = std::function<void(std::string_view)>;
  using ProgressSink = std::function<void(const ReplayProgress&)>;

  // `on_message` may be empty (messages are dropped); `on_progress` may be empty.
  EventReplayer(ReplayOptions options, MessageSink on_message, ProgressSink on_progress = {});
  ~EventReplayer();
  EventReplayer(const EventReplayer&) = delete;
  EventReplayer& operator=(const EventReplayer&) = delete;

  // Checks `options` without sending anything: the url (http only), batch, connections, rate, no
  // stdin with loop, and that every file opens (and has the format's header). InvalidArgument
  // with a message for the user otherwise.
  static absl::Status Validate(const ReplayOptions& options);

  // Replays the files, calling on_progress every progress_interval, until the input ends (all
  // batches answered), Stop, `duration` or a fatal error. Call once.
  ReplayReport Run();

  // Stops reading and sending new batches; batches already sent get drain_timeout to be
  // answered, then Run returns. Idempotent; safe before Run starts (Run then sends nothing).
  void Stop();

 private:
  struct Batch;
  struct Sender;

  void ReadFiles();
  void SendLoop(Sender& sender);
  // Posts `batch` until it has a final answer; false when it was given up.
  bool Deliver(Sender& sender, Batch& batch);
  // Applies a 200/207 answer body to the counts.
  void CountAnswer(const Batch& batch, std::string_view body);
  void CountRejectedBatch(const Batch& batch, int status, std::string_view body);
  // Fatal: records `status` (the first one wins) and stops everything without draining.
  void Abort(absl::Status status);
  void Message(std::string_view text);
  ReplayProgress Snapshot(bool final) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits until `deadline`; true when woken early because the replay is aborting (or, with
  // `stop_too`, stopping).
  bool SleepUntil(std::chrono::steady_clock::time_point deadline, bool stop_too);

  const ReplayOptions options_;
  MessageSink on_message_;
  ProgressSink on_progress_;
  std::string host_, port_, target_;
  std::chrono::steady_clock::time_point start_;

  std::mutex message_mu_;  // serialises on_message_

  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Batches read but not yet taken by a sender; at most a few per connection.
  std::deque<std::unique_ptr<Batch>> queue_ ABSL_GUARDED_BY(mu_);
  bool reading_done_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool aborting_ ABSL_GUARDED_BY(mu_) = false;
  size_t senders_running_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fatal_ ABSL_GUARDED_BY(mu_);
  uint64_t scheduled_events_ ABSL_GUARDED_BY(mu_) = 0;  // events handed to senders, for pacing
  ReplayProgress counts_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> reasons_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> told_ ABSL_GUARDED_BY(mu_);  // retry causes already reported
  // Batch latencies in microseconds: since the last progress report, and for the whole run.
  std::vector<uint64_t> interval_latency_us_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> latency_buckets_ ABSL_GUARDED_BY(mu_);
  uint64_t latency_max_us_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t interval_sent_ ABSL_GUARDED_BY(mu_) = 0;
  std::chrono::steady_clock::time_point interval_start_ ABSL_GUARDED_BY(mu_);

  std::vector<std::unique_ptr<Sender>> senders_;
};

}  // namespace persona::serve
