// `persona deadletter list|export|purge`: the operator's view of rejected events.
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "common/json_writer.h"
#include "common/time_util.h"
#include "store/dead_letter_codec.h"

namespace persona::cli {
namespace {

struct DeadLetterOptions {
  EngineOptions engine;
  size_t limit = 50;
  std::string after;
  std::string format = "jsonl";
  std::string out = "-";
};

int RunList(DeadLetterOptions& o) {
  o.engine.quiet = true;
  auto engine = OpenEngine(o.engine);
  if (!engine.ok()) return Fail(engine.status());
  auto count = (*engine)->store().CountDeadLetters();
  if (!count.ok()) return Fail(count.status());
  auto page = (*engine)->store().ListDeadLetters(o.after, o.limit);
  if (!page.ok()) return Fail(page.status());
  std::cout << *count << " dead letter(s)\n";
  for (const StoredDeadLetter& d : *page) {
    const DeadLetter& l = d.letter;
    std::string raw = l.raw.size() > 120 ? l.raw.substr(0, 117) + "..." : l.raw;
    std::cout << d.id << "  " << FormatIsoTime(l.received_ms) << "  " << l.source << ":"
              << l.position << "  " << (l.field.empty() ? "" : l.field + ": ") << l.rule << "\n    "
              << raw << "\n";
  }
  if (page->size() == o.limit)
    std::cout << "more: persona deadletter list --data " << o.engine.data_dir << " --after "
              << page->back().id << "\n";
  return 0;
}

int RunExport(DeadLetterOptions& o) {
  if (o.format != "jsonl" && o.format != "csv") {
    std::cerr << "persona: --format must be jsonl or csv\n";
    return 2;
  }
  o.engine.quiet = true;
  auto engine = OpenEngine(o.engine);
  if (!engine.ok()) return Fail(engine.status());
  std::ofstream file;
  std::ostream* out = &std::cout;
  if (o.out != "-") {
    file.open(o.out);
    if (!file) {
      std::cerr << "persona: cannot write " << o.out << "\n";
      return 1;
    }
    out = &file;
  }
  if (o.format == "csv") *out << kDeadLetterCsvHeader;
  std::string after;
  uint64_t n = 0;
  while (true) {
    auto page = (*engine)->store().ListDeadLetters(after, 10000);
    if (!page.ok()) return Fail(page.status());
    for (const StoredDeadLetter& d : *page) {
      if (o.format == "csv") {
        std::string line;
        AppendDeadLetterCsvLine(d, &line);
        *out << line;
      } else {
        JsonWriter w;
        WriteDeadLetterJson(w, d);
        *out << w.str() << "\n";
      }
      ++n;
    }
    if (page->size() < 10000) break;
    after = page->back().id;
  }
  std::cerr << "exported " << n << " dead letter(s)\n";
  return 0;
}

int RunPurge(DeadLetterOptions& o) {
  o.engine.quiet = true;
  auto engine = OpenEngine(o.engine);
  if (!engine.ok()) return Fail(engine.status());
  if (auto s = (*engine)->store().PurgeDeadLetters(); !s.ok()) return Fail(s);
  std::cout << "dead letters purged\n";
  return 0;
}

}  // namespace

void RegisterDeadLetter(Registry& r) {
  CLI::App* dl = r.app().add_subcommand("deadletter", "Inspect rejected events");
  dl->require_subcommand(1);
  auto o = std::make_shared<DeadLetterOptions>();
  // Sub-subcommands are registered on the registry so Run() finds them.
  auto add = [&](const std::string& name, const std::string& help, std::function<int()> run) {
    CLI::App* cmd = dl->add_subcommand(name, help);
    AddEngineOptions(cmd, &o->engine);
    return std::make_pair(cmd, run);
  };
  auto [list, list_run] =
      add("list", "List dead letters, oldest first", [o] { return RunList(*o); });
  list->add_option("--limit", o->limit, "Entries per page")->capture_default_str();
  list->add_option("--after", o->after, "Continue after this id");
  auto [exp, exp_run] = add("export", "Export all dead letters", [o] { return RunExport(*o); });
  exp->add_option("--format", o->format, "jsonl | csv")->capture_default_str();
  exp->add_option("--out", o->out, "Output file ('-' = stdout)")->capture_default_str();
  auto [purge, purge_run] = add("purge", "Delete all dead letters", [o] { return RunPurge(*o); });
  r.AddExisting(list, list_run);
  r.AddExisting(exp, exp_run);
  r.AddExisting(purge, purge_run);
}

}  // namespace persona::cli
