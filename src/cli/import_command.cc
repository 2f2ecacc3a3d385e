// `persona import`: bulk replay of files into the engine, with a progress bar and a summary.
// `persona ingest`: a stream of events on stdin, acknowledged on stdout after each durable batch
// (the contract the crash test relies on: a line "ack N" means lines 1..N are durable and applied).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "event/event_reader.h"

namespace persona::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Shared tallies between the reading thread and partition callbacks.
struct ImportTally {
  std::mutex mu;
  uint64_t accepted = 0, duplicates = 0, rejected = 0;
  std::map<std::string, uint64_t> reasons;  // "field: rule" -> count
  std::atomic<uint64_t> in_flight{0};
  std::atomic<uint64_t> parsed{0};

  void AddReason(const std::string& field, const std::string& rule) {
    reasons[field.empty() ? rule : field + ": " + rule]++;
  }
};

struct ImportOptions {
  EngineOptions engine;
  std::string format = "jsonl";
  std::vector<std::string> files;
  bool strict = false;
  uint32_t batch = 8192;
  uint32_t show_errors = 10;
};

DeadLetter MakeLetter(const std::string& source, const EventIssue& issue) {
  return DeadLetter{std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count(),
                    source,
                    issue.index_or_line,
                    "",
                    issue.field,
                    issue.rule,
                    issue.raw};
}

int RunImport(ImportOptions& opts) {
  auto format = ParseInputFormat(opts.format);
  if (!format) {
    std::cerr << "persona: unknown --format '" << opts.format
              << "' (expected jsonl, csv, taobao, rees46, retailrocket, sequence)\n";
    return 2;
  }
  auto engine = OpenEngine(opts.engine);
  if (!engine.ok()) return Fail(engine.status());
  Engine& eng = **engine;
  const bool progress = !opts.engine.quiet && isatty(STDERR_FILENO);
  ImportTally tally;
  uint64_t shown = 0;
  int exit_code = 0;
  const auto t0 = Clock::now();
  for (const std::string& path : opts.files) {
    auto reader = EventReader::Open(path, *format, eng.config().limits);
    if (!reader.ok()) {
      std::cerr << "persona: " << path << ": " << reader.status().message() << "\n";
      exit_code = 2;
      break;
    }
    const std::string source = "import:" + path;
    auto last_draw = Clock::now();
    std::vector<EventIssue> issues;
    bool stop = false;
    while (!stop) {
      auto batch = std::make_shared<EventBatch>();
      issues.clear();
      const bool more = (*reader)->Next(opts.batch, batch.get(), &issues);
      if (opts.strict && !issues.empty()) {
        // Strict: everything before the first bad line is imported, nothing after it.
        auto first = std::min_element(
            issues.begin(), issues.end(),
            [](const auto& a, const auto& b) { return a.index_or_line < b.index_or_line; });
        const uint64_t bad_line = first->index_or_line;
        issues = {*first};
        size_t keep = 0;
        while (keep < batch->events.size() && batch->source_index[keep] < bad_line) ++keep;
        batch->events.resize(keep);
        batch->source_index.resize(keep);
      }
      if (!issues.empty()) {
        std::vector<DeadLetter> letters;
        std::lock_guard<std::mutex> lock(tally.mu);
        for (const EventIssue& is : issues) {
          tally.rejected++;
          tally.AddReason(is.field, is.rule);
          letters.push_back(MakeLetter(source, is));
          if (*format == InputFormat::kJsonl) letters.back().user_id = UserIdOfJsonRecord(is.raw);
          if (shown++ < opts.show_errors || opts.strict) {
            std::cerr << "persona: " << path << ": line " << is.index_or_line << ": "
                      << (is.field.empty() ? "" : "field '" + is.field + "': ") << is.rule << "\n";
          }
        }
        if (auto s = eng.AddDeadLetters(letters); !s.ok()) return Fail(s);
        if (opts.strict) {
          std::cerr << "persona: stopping at the first bad line (--strict)\n";
          exit_code = 2;
          stop = true;
        }
      }
      if (!batch->events.empty()) {
        tally.parsed += batch->events.size();
        tally.in_flight++;
        absl::Status s = eng.Submit(
            batch,
            [&tally](IngestOutcome o) {
              {
                std::lock_guard<std::mutex> lock(tally.mu);
                tally.accepted += o.accepted;
                tally.duplicates += o.duplicates;
                tally.rejected += o.rejected.size();
                for (const auto& r : o.rejected) tally.AddReason(r.field, r.rule);
              }
              tally.in_flight--;
            },
            /*block=*/true);
        if (!s.ok()) return Fail(s);
      }
      if (progress && Clock::now() - last_draw > std::chrono::milliseconds(200)) {
        last_draw = Clock::now();
        const double secs = std::chrono::duration<double>(last_draw - t0).count();
        const uint64_t size = (*reader)->file_size();
        const double frac = size ? double((*reader)->bytes_read()) / size : 0;
        const int width = 30;
        std::string bar(static_cast<int>(frac * width), '#');
        bar.resize(width, '.');
        std::fprintf(stderr, "\r[%s] %5.1f%%  %s events  %s ev/s   ", bar.c_str(), frac * 100,
                     HumanCount(tally.parsed).c_str(), HumanCount(tally.parsed / secs).c_str());
      }
      if (!more || stop) break;
    }
    if (stop) break;
  }
  while (tally.in_flight.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (progress) std::fprintf(stderr, "\n");
  if (auto s = eng.Close(); !s.ok()) return Fail(s);
  uint64_t users = 0;
  for (const auto& st : eng.Stats()) users += st.profiles;
  const uint64_t total = tally.accepted + tally.duplicates + tally.rejected;
  std::cout << "imported " << opts.files.size() << " file(s) in " << secs << " s\n"
            << "  accepted    " << tally.accepted << "\n"
            << "  duplicates  " << tally.duplicates << "\n"
            << "  rejected    " << tally.rejected << "\n";
  for (const auto& [reason, n] : tally.reasons) std::cout << "    " << n << "  " << reason << "\n";
  std::cout << "  users       " << users << "\n"
            << "  events/s    " << static_cast<uint64_t>(total / std::max(secs, 1e-9)) << "\n";
  if (tally.rejected > 0)
    std::cout << "  rejected events are kept: persona deadletter list --data "
              << opts.engine.data_dir << "\n";
  return exit_code;
}

struct IngestOptions {
  EngineOptions engine;
  std::string format = "jsonl";
  uint32_t batch = 100;
};

// Reads stdin through the normal reader; after each batch is durable prints "ack <line>".
int RunIngest(IngestOptions& opts) {
  auto format = ParseInputFormat(opts.format);
  if (!format) {
    std::cerr << "persona: unknown --format '" << opts.format << "'\n";
    return 2;
  }
  auto engine = OpenEngine(opts.engine);
  if (!engine.ok()) return Fail(engine.status());
  Engine& eng = **engine;
  auto reader = EventReader::Open("-", *format, eng.config().limits);
  if (!reader.ok()) return Fail(reader.status());
  std::cout << "ready" << std::endl;
  std::vector<EventIssue> issues;
  uint64_t last_line = 0;
  while (true) {
    auto batch = std::make_shared<EventBatch>();
    issues.clear();
    const bool more = (*reader)->Next(opts.batch, batch.get(), &issues);
    std::vector<DeadLetter> letters;
    for (const EventIssue& is : issues) {
      letters.push_back(MakeLetter("ingest:stdin", is));
      last_line = std::max<uint64_t>(last_line, is.index_or_line);
    }
    if (auto s = eng.AddDeadLetters(letters); !s.ok()) return Fail(s);
    for (uint32_t idx : batch->source_index) last_line = std::max<uint64_t>(last_line, idx);
    IngestOutcome o = eng.Ingest(batch);
    std::cout << "ack " << last_line << " accepted=" << o.accepted << " duplicates=" << o.duplicates
              << " rejected=" << o.rejected.size() + issues.size() << std::endl;
    if (!more) break;
  }
  if (auto s = eng.Close(); !s.ok()) return Fail(s);
  return 0;
}

}  // namespace

void RegisterImport(Registry& r) {
  auto opts = std::make_shared<ImportOptions>();
  CLI::App* cmd = r.Add("import", "Replay event files into the data directory",
                        [opts] { return RunImport(*opts); });
  AddEngineOptions(cmd, &opts->engine);
  cmd->add_option("--format", opts->format,
                  "jsonl | csv | taobao | rees46 | retailrocket | sequence")
      ->capture_default_str();
  cmd->add_option("--batch", opts->batch, "Events per submitted batch")->capture_default_str();
  cmd->add_option("--show-errors", opts->show_errors, "Bad lines printed before summarising")
      ->capture_default_str();
  cmd->add_flag("--strict", opts->strict, "Stop at the first bad line");
  cmd->add_option("files", opts->files, "Input files ('-' = stdin)")->required();
}

void RegisterIngest(Registry& r) {
  auto opts = std::make_shared<IngestOptions>();
  CLI::App* cmd = r.Add("ingest",
                        "Stream events from stdin; prints 'ack <line>' once lines up to <line> "
                        "are durable and applied",
                        [opts] { return RunIngest(*opts); });
  AddEngineOptions(cmd, &opts->engine);
  cmd->add_option("--format", opts->format, "Input format")->capture_default_str();
  cmd->add_option("--batch", opts->batch, "Events per acknowledged batch")->capture_default_str();
}

}  // namespace persona::cli
