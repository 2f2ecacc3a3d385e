// `persona replay`: streams event files to a running `persona serve` at a fixed rate, with a
// progress line every second and a summary at the end (serve/event_replayer.h does the work).
// The demo (scripts/run.sh) runs it in the background for live traffic; with --loop it is also
// the soak tool.
//
// Exit status: 0 when every event read was acknowledged (accepted or duplicate), also after
// SIGINT/SIGTERM or --duration; 1 when the server could not be reached (or kept failing a batch
// for --timeout), refused the API key, or left sent events unacknowledged; 2 for usage errors, an
// input file that cannot be opened, or events rejected (bad lines, or rejected by the server).
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "event/csv_formats.h"
#include "serve/event_replayer.h"

namespace persona::cli {
namespace {

struct ReplayCli {
  serve::ReplayOptions replay;
  std::string format = "jsonl";
  double duration_s = 0;
  double timeout_s = 30;
  bool quiet = false;
};

std::string Ms(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, ms < 10 ? "%.2f ms" : "%.0f ms", ms);
  return buf;
}

std::string ProgressLine(const serve::ReplayProgress& p) {
  char head[32];
  std::snprintf(head, sizeof head, "replay %5.0fs", p.elapsed_s);
  std::string line = std::string(head) + "  sent " + HumanCount(p.sent) + "  acked " +
                     HumanCount(p.acknowledged()) + "  rejected " + HumanCount(p.rejected);
  if (p.bad_lines > 0) line += "  bad lines " + HumanCount(p.bad_lines);
  line += "  " + HumanCount(p.events_per_s) + " ev/s";
  if (p.p99_ms > 0 || p.p50_ms > 0) {
    line += "  p50 " + Ms(p.p50_ms) + "  p99 " + Ms(p.p99_ms);
  } else {
    line += "  p50 -  p99 -";
  }
  if (p.retries > 0) line += "  retries " + HumanCount(p.retries);
  return line;
}

void PrintSummary(const ReplayCli& o, const serve::ReplayReport& r) {
  const serve::ReplayProgress& t = r.totals;
  std::cout << "replayed " << o.replay.files.size() << " file(s) to " << o.replay.url << " in "
            << t.elapsed_s << " s";
  if (o.replay.loop || o.replay.loop_shift) {
    std::cout << " (" << t.passes << " complete pass" << (t.passes == 1 ? "" : "es") << ")";
  }
  std::cout << "\n"
            << "  sent            " << t.sent << "\n"
            << "  accepted        " << t.accepted << "\n"
            << "  duplicates      " << t.duplicates << "\n"
            << "  rejected        " << t.rejected << "\n";
  for (const auto& [reason, n] : r.reasons) std::cout << "    " << n << "  " << reason << "\n";
  std::cout << "  bad lines       " << t.bad_lines << "\n";
  if (t.unacknowledged > 0) std::cout << "  unacknowledged  " << t.unacknowledged << "\n";
  if (t.not_sent > 0) std::cout << "  not sent        " << t.not_sent << "\n";
  if (t.retries > 0) std::cout << "  retries         " << t.retries << "\n";
  std::cout << "  events/s        " << static_cast<uint64_t>(t.events_per_s) << "\n";
  if (t.batches > 0) {
    std::cout << "  batch latency   p50 " << Ms(t.p50_ms) << "  p99 " << Ms(t.p99_ms) << "  max "
              << Ms(t.max_ms) << "  (from each batch's due time)\n";
  }
}

int RunReplay(ReplayCli& o) {
  auto format = ParseInputFormat(o.format);
  if (!format) {
    std::cerr << "persona: unknown --format '" << o.format
              << "' (expected jsonl, csv, taobao, rees46, retailrocket, sequence)\n";
    return 2;
  }
  if (!(o.duration_s >= 0) || !(o.timeout_s > 0)) {
    std::cerr << "persona: --duration must be >= 0 and --timeout > 0 (seconds)\n";
    return 2;
  }
  o.replay.format = *format;
  o.replay.duration = std::chrono::milliseconds(static_cast<int64_t>(o.duration_s * 1000));
  o.replay.timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000));

  // Stop signals are blocked in every thread (the replayer's inherit the mask) and taken by a
  // watcher thread, which asks the replayer to stop: shutdown is ordinary code.
  sigset_t stop_signals = BlockStopSignals();

  // Messages come from the replayer's threads, progress from the thread in Run: one lock keeps
  // their lines whole.
  const bool tty = isatty(STDERR_FILENO);
  std::mutex out_mu;
  bool progress_drawn = false;  // a terminal's progress line is waiting for its newline
  auto message = [&](std::string_view line) {
    std::lock_guard lock(out_mu);
    if (progress_drawn) std::fputc('\n', stderr);
    progress_drawn = false;
    std::cerr << "persona: " << line << std::endl;
  };
  serve::EventReplayer::ProgressSink progress;
  if (!o.quiet) {
    progress = [&](const serve::ReplayProgress& p) {
      std::lock_guard lock(out_mu);
      // A terminal gets one line redrawn in place; a log file a line per report.
      std::fprintf(stderr, tty ? "\r%s   " : "%s\n", ProgressLine(p).c_str());
      std::fflush(stderr);
      progress_drawn = tty;
    };
  }
  if (absl::Status s = serve::EventReplayer::Validate(o.replay); !s.ok()) {
    std::cerr << "persona: " << s.message() << "\n";
    return 2;
  }
  serve::EventReplayer replayer(o.replay, message, progress);

  std::atomic<bool> finished{false};
  std::thread watcher([&] {
    const timespec tick{0, 200 * 1000 * 1000};
    while (!finished.load()) {
      if (sigtimedwait(&stop_signals, nullptr, &tick) > 0) {
        message("stopping: waiting for the batches in flight");
        replayer.Stop();
        return;
      }
    }
  });
  if (!o.quiet) {
    message(absl::StrCat("replaying to ", o.replay.url, " at ",
                         o.replay.rate > 0 ? HumanCount(o.replay.rate) + " events/s"
                                           : std::string("the server's pace"),
                         " (batches of ", o.replay.batch, ", ", o.replay.connections,
                         " connections",
                         o.replay.loop_shift ? ", looping with time shift"
                         : o.replay.loop     ? ", looping"
                                             : "",
                         ")"));
  }
  serve::ReplayReport report = replayer.Run();
  finished.store(true);
  watcher.join();
  if (progress_drawn) std::fputc('\n', stderr);

  if (!report.status.ok() && absl::IsInvalidArgument(report.status)) {
    std::cerr << "persona: " << report.status.message() << "\n";
    return 2;
  }
  PrintSummary(o, report);
  if (!report.status.ok()) {
    std::cerr << "persona: " << report.status.message() << "\n";
    return 1;
  }
  if (report.totals.unacknowledged > 0) {
    std::cerr << "persona: " << report.totals.unacknowledged
              << " events sent were not acknowledged\n";
    return 1;
  }
  if (report.totals.rejected > 0 || report.totals.bad_lines > 0) return 2;
  return 0;
}

}  // namespace

void RegisterReplay(Registry& r) {
  auto o = std::make_shared<ReplayCli>();
  o->replay.url = "http://127.0.0.1:8080";
  o->replay.rate = 1000;
  CLI::App* cmd = r.Add(
      "replay",
      "Stream event files to a running server (POST /v1/events) at a fixed rate, with progress",
      [o] { return RunReplay(*o); });
  cmd->add_option("--url", o->replay.url, "The server: http://host:port")->capture_default_str();
  cmd->add_option("--rate", o->replay.rate,
                  "Events per second over all connections (0 = as fast as the server acknowledges)")
      ->capture_default_str();
  cmd->add_option("--batch", o->replay.batch, "Events per request")->capture_default_str();
  cmd->add_option("--connections", o->replay.connections, "Keep-alive connections")
      ->capture_default_str();
  cmd->add_option("--format", o->format, "jsonl | csv | taobao | rees46 | retailrocket | sequence")
      ->capture_default_str();
  cmd->add_option("--api-key", o->replay.api_key,
                  "API key with the ingest scope (or $PERSONA_API_KEY)")
      ->envname("PERSONA_API_KEY");
  cmd->add_flag("--loop", o->replay.loop,
                "Repeat the files until stopped (the server drops repeats it still remembers as "
                "duplicates)");
  cmd->add_flag("--loop-shift", o->replay.loop_shift,
                "Repeat the files as new events: each pass shifted in time by the input's span, "
                "ids suffixed ~N (implies --loop)");
  cmd->add_option("--duration", o->duration_s, "Stop after this many seconds (0 = no limit)")
      ->capture_default_str();
  cmd->add_option("--timeout", o->timeout_s,
                  "Seconds a request may take, and a failing batch may be retried, before giving "
                  "up")
      ->capture_default_str();
  cmd->add_option("--show-errors", o->replay.show_errors, "Bad lines printed before summarising")
      ->capture_default_str();
  cmd->add_flag("--quiet,-q", o->quiet, "No progress line");
  cmd->add_option("files", o->replay.files, "Input files ('-' = stdin)")->required();
}

}  // namespace persona::cli
