// `persona train sasrec`: trains the SASRec next-item model on a sequence file or on a data
// directory's profiles and writes the servable artifact (docs/model_format.md).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "eval/sequence_data.h"
#include "recommend/engine_sequences.h"
#include "train/sasrec_trainer.h"

namespace persona::cli {
namespace {

struct TrainSasRecCli {
  std::string input;
  std::string format = "sequence";
  EngineOptions engine;
  std::string out;
  double time_limit_min = 0;
  bool quiet = false;
  SasRecTrainOptions train;
};

// The within-epoch progress line: redrawn in place on a terminal, otherwise a line per ~10% so
// that logs stay readable.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool quiet) : quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0) {}

  void Update(uint32_t epoch, uint64_t done, uint64_t total, double loss) {
    if (quiet_ || total == 0) return;
    if (tty_) {
      constexpr int kWidth = 30;
      const int filled = static_cast<int>(kWidth * done / total);
      std::fprintf(stderr, "\repoch %u [%s%s] %llu/%llu loss %.4f", epoch,
                   std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(),
                   static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                   loss);
      drawn_ = true;
    } else {
      const uint64_t decile = done * 10 / total;
      if (epoch != epoch_ || decile > decile_) {
        epoch_ = epoch;
        decile_ = decile;
        if (decile == 0 || decile == 10) return;  // the epoch line reports the end
        std::fprintf(stderr, "epoch %u %3llu%% %llu/%llu loss %.4f\n", epoch,
                     static_cast<unsigned long long>(decile * 10),
                     static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                     loss);
      }
    }
  }

  void Epoch(const SasRecEpoch& e) {
    if (quiet_) return;
    if (drawn_) std::fputs("\r\033[K", stderr);
    drawn_ = false;
    std::fprintf(stderr, "epoch %u  loss %.4f  valid NDCG@10 %.4f  HR@10 %.4f  %.1f s%s\n", e.epoch,
                 e.loss, e.valid_ndcg10, e.valid_hr10, e.seconds, e.best ? "  *" : "");
  }

 private:
  bool quiet_;
  bool tty_;
  bool drawn_ = false;
  uint32_t epoch_ = 0;
  uint64_t decile_ = 0;
};

// Torch's CPU kernels run on OpenMP, whose threads by default spin between parallel regions.
// On a machine shared with other work (the normal case: 2 cores, a server beside the trainer)
// a spinning thread waits for a descheduled peer and an epoch takes 3-6x longer than with one
// thread; with OMP_WAIT_POLICY=passive two threads are never slower than one. libgomp reads the
// variable when it is loaded, before main, so it only takes effect in a fresh process image:
// re-execute once with it set. Does nothing when the variable is already set (by the user or
// by the re-execution); on failure training goes on with spinning threads.
void ReexecWithPassiveOpenMp() {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t pos = 0; pos < cmdline.size();) {
    const size_t end = cmdline.find('\0', pos);
    args.push_back(cmdline.substr(pos, end == std::string::npos ? end : end - pos));
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  if (args.empty()) return;
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  std::fflush(nullptr);
  ::execv("/proc/self/exe", argv.data());
}

int RunTrainSasRec(TrainSasRecCli& o) {
  ReexecWithPassiveOpenMp();
  if (o.input.empty() == o.engine.data_dir.empty()) {
    std::cerr << "persona: train sasrec needs exactly one of --input FILE or --data DIR\n";
    return 2;
  }
  if (o.format != "sequence") {
    std::cerr << "persona: --format must be 'sequence' (one `user item` pair or one "
                 "`user item...` line per user)\n";
    return 2;
  }
  if (!o.input.empty() && o.out.empty()) {
    std::cerr << "persona: --out is required with --input\n";
    return 2;
  }
  if (o.time_limit_min < 0) {
    std::cerr << "persona: --time-limit must not be negative\n";
    return 2;
  }
  o.train.time_limit_s = o.time_limit_min * 60;

  SequenceDataset data;
  if (!o.input.empty()) {
    auto read = ReadSequenceFile(o.input);
    if (!read.ok()) return Fail(read.status());
    data = std::move(*read);
    o.train.data_source = "sequence file " + o.input;
  } else {
    auto engine = OpenEngine(o.engine);
    if (!engine.ok()) return Fail(engine.status());
    data = SequencesFromEngine(**engine);
    engine->reset();  // close the data directory before the long part
    o.train.data_source = "data directory " + o.engine.data_dir;
  }
  if (!o.quiet) {
    std::fprintf(stderr,
                 "persona: %zu users, %u items, %llu interactions; dim %u, %u blocks, %u heads, "
                 "max_len %u, %s\n",
                 data.sequences.size(), data.num_items,
                 static_cast<unsigned long long>(data.interactions()), o.train.hyper.dim,
                 o.train.hyper.blocks, o.train.hyper.heads, o.train.hyper.max_len,
                 o.train.sampled_negatives && o.train.sampled_negatives < data.num_items
                     ? (std::to_string(o.train.sampled_negatives) + " sampled negatives").c_str()
                     : "full softmax");
  }

  ProgressPrinter printer(o.quiet);
  uint32_t epoch = 1;
  auto result = TrainSasRec(
      data, o.train,
      [&](uint64_t done, uint64_t total, double loss) { printer.Update(epoch, done, total, loss); },
      [&](const SasRecEpoch& e) {
        printer.Epoch(e);
        epoch = e.epoch + 1;
      });
  if (!result.ok()) {
    // Data that cannot train a model is the caller's input problem.
    if (absl::IsFailedPrecondition(result.status())) {
      std::cerr << "persona: " << result.status().message() << "\n";
      return 2;
    }
    return Fail(result.status());
  }

  std::string out = o.out;
  if (out.empty()) {
    out = o.engine.data_dir + "/models/sasrec/" + result->model->version() + ".psm";
  }
  const std::filesystem::path parent = std::filesystem::path(out).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      std::cerr << "persona: cannot create " << parent << ": " << ec.message() << "\n";
      return 1;
    }
  }
  if (auto s = result->model->Save(out); !s.ok()) return Fail(s);

  const SasRecEpoch* best = nullptr;
  for (const auto& e : result->epochs)
    if (e.epoch == result->best_epoch) best = &e;
  std::printf("%s\n", out.c_str());
  if (!o.quiet && best != nullptr) {
    std::fprintf(stderr,
                 "persona: wrote %s (%s): best epoch %u of %zu, valid NDCG@10 %.4f HR@10 %.4f, "
                 "%.0f s\n",
                 out.c_str(), result->model->version().c_str(), best->epoch, result->epochs.size(),
                 best->valid_ndcg10, best->valid_hr10, result->seconds);
  }
  return 0;
}

}  // namespace

void RegisterTrain(Registry& r) {
  CLI::App* train =
      r.app().add_subcommand("train", "Train a model (recommendations, predictions, text)");
  train->require_subcommand(1);
  auto o = std::make_shared<TrainSasRecCli>();
  CLI::App* cmd = train->add_subcommand(
      "sasrec", "Train SASRec (next-item transformer) and write the model artifact");
  SasRecTrainOptions& t = o->train;
  cmd->add_option("--input", o->input, "Sequence file (`user item` pairs or `user item...` lines)");
  cmd->add_option("--format", o->format, "Input format: sequence")->capture_default_str();
  cmd->add_option("--data", o->engine.data_dir, "Data directory: train on its users' profiles");
  cmd->add_option("--config", o->engine.config_file, "TOML config file for --data");
  cmd->add_option("--out", o->out,
                  "Model file (default with --data: DIR/models/sasrec/<version>.psm)");
  cmd->add_option("--epochs", t.epochs, "Maximum epochs")->capture_default_str();
  cmd->add_option("--dim", t.hyper.dim, "Embedding size")->capture_default_str();
  cmd->add_option("--blocks", t.hyper.blocks, "Transformer blocks")->capture_default_str();
  cmd->add_option("--heads", t.hyper.heads, "Attention heads")->capture_default_str();
  cmd->add_option("--max-len", t.hyper.max_len, "Items of history the model sees")
      ->capture_default_str();
  cmd->add_option("--batch", t.batch_size, "Users per batch")->capture_default_str();
  cmd->add_option("--lr", t.learning_rate, "Adam learning rate")->capture_default_str();
  cmd->add_option("--weight-decay", t.weight_decay, "Adam L2 weight decay")->capture_default_str();
  cmd->add_option("--dropout", t.dropout, "Dropout rate")->capture_default_str();
  cmd->add_option("--negatives", t.sampled_negatives,
                  "Shared sampled negatives per batch (0 = softmax over all items)")
      ->capture_default_str();
  cmd->add_option("--patience", t.patience, "Stop after N epochs without validation gain")
      ->capture_default_str();
  cmd->add_option("--time-limit", o->time_limit_min, "Stop after this many minutes (0 = none)")
      ->capture_default_str();
  cmd->add_option("--threads", t.threads, "Torch threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--seed", t.seed, "Random seed")->capture_default_str();
  cmd->add_option("--valid-users", t.valid_users, "Users ranked for validation (0 = all)")
      ->capture_default_str();
  cmd->add_flag("--quiet,-q", o->quiet, "No progress output");
  r.AddExisting(cmd, [o] {
    o->engine.quiet = o->quiet;
    return RunTrainSasRec(*o);
  });
}

}  // namespace persona::cli
