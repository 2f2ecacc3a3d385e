// `persona train sentiment` and `persona eval sentiment`: the fastText review-sentiment model
// (src/predict/sentiment_model.h). Both split every corpus with the same seeded 70/10/20
// train/validation/test split (SplitSentimentExamples), so a model trained here never saw the test
// sentences that `eval sentiment --model` scores it on.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/json_writer.h"
#include "predict/sentiment_model.h"

namespace persona::cli {
namespace {

constexpr const char* kDefaultCorpusDir = "../shared/datasets/reviews";
constexpr const char* kDefaultCorpora[] = {"amazon_cells_labelled.txt", "yelp_labelled.txt",
                                           "amazon_musical_instruments_5core.jsonl",
                                           "online_shopping_10_cats.csv"};

struct Corpus {
  std::string name;  // file name without directory
  SentimentSplit split;
};

struct SentimentCli {
  std::vector<std::string> corpora;
  std::string out;
  std::string model;
  std::string data_dir;
  uint64_t split_seed = 1;
  bool json = false;
  bool quiet = false;
  SentimentTrainOptions train;
};

// The corpora named on the command line, else the default ones that exist.
absl::StatusOr<std::vector<std::string>> CorpusPaths(const SentimentCli& o) {
  if (!o.corpora.empty()) return o.corpora;
  std::vector<std::string> paths;
  for (const char* name : kDefaultCorpora) {
    const std::string p = std::string(kDefaultCorpusDir) + "/" + name;
    if (std::filesystem::exists(p)) paths.push_back(p);
  }
  if (paths.empty()) {
    return absl::InvalidArgumentError(std::string("no --corpus given and none of the default "
                                                  "corpora exist under ") +
                                      kDefaultCorpusDir);
  }
  return paths;
}

absl::StatusOr<std::vector<Corpus>> LoadCorpora(const SentimentCli& o) {
  auto paths = CorpusPaths(o);
  if (!paths.ok()) return paths.status();
  std::vector<Corpus> corpora;
  for (const std::string& path : *paths) {
    auto examples = LoadSentimentCorpus(path);
    if (!examples.ok()) return examples.status();
    corpora.push_back({std::filesystem::path(path).filename().string(),
                       SplitSentimentExamples(*examples, o.split_seed)});
    if (!o.quiet) {
      const SentimentSplit& s = corpora.back().split;
      std::fprintf(stderr, "persona: %s: %zu train, %zu validation, %zu test\n",
                   corpora.back().name.c_str(), s.train.size(), s.validation.size(), s.test.size());
    }
  }
  return corpora;
}

// One line of progress, redrawn on a terminal.
class TrainProgress {
 public:
  explicit TrainProgress(bool quiet) : quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0) {}
  void Update(double fraction) {
    if (quiet_) return;
    const int percent = static_cast<int>(fraction * 100);
    if (percent == last_percent_ || (!tty_ && percent / 10 == last_percent_ / 10)) return;
    last_percent_ = percent;
    std::fprintf(stderr, tty_ ? "\rtraining %3d%%" : "training %3d%%\n", percent);
    drawn_ = tty_;
  }
  void Done() {
    if (drawn_) std::fputs("\r\033[K", stderr);
    drawn_ = false;
  }

 private:
  bool quiet_;
  bool tty_;
  bool drawn_ = false;
  int last_percent_ = -1;
};

absl::StatusOr<SentimentModel> TrainOnCorpora(const SentimentCli& o,
                                              const std::vector<Corpus>& corpora) {
  std::vector<SentimentExample> train;
  for (const Corpus& c : corpora)
    train.insert(train.end(), c.split.train.begin(), c.split.train.end());
  if (!o.quiet) {
    std::fprintf(stderr,
                 "persona: training on %zu examples: non-CJK %d epochs, lr %g, dim %d, %d-grams; "
                 "CJK %d epochs, lr %g, dim %d, %d-grams\n",
                 train.size(), o.train.latin.epochs, o.train.latin.lr, o.train.latin.dim,
                 o.train.latin.word_ngrams, o.train.cjk.epochs, o.train.cjk.lr, o.train.cjk.dim,
                 o.train.cjk.word_ngrams);
  }
  TrainProgress progress(o.quiet);
  auto model = SentimentModel::Train(train, o.train,
                                     [&](double fraction, double) { progress.Update(fraction); });
  progress.Done();
  return model;
}

std::vector<SentimentAccuracy> Evaluate(const SentimentModel& model,
                                        const std::vector<Corpus>& corpora, bool validation) {
  std::vector<SentimentAccuracy> rows;
  for (const Corpus& c : corpora) {
    if (validation && !c.split.validation.empty()) {
      rows.push_back(model.Evaluate(c.split.validation, c.name, "validation"));
    }
    if (!c.split.test.empty()) rows.push_back(model.Evaluate(c.split.test, c.name, "test"));
  }
  return rows;
}

void PrintTable(const std::string& version, const std::vector<SentimentAccuracy>& rows, bool json) {
  if (json) {
    JsonWriter w;
    w.BeginObject();
    w.Key("model").String(version);
    w.Key("rows").BeginArray();
    for (const SentimentAccuracy& r : rows) {
      w.BeginObject();
      w.Key("corpus").String(r.corpus);
      w.Key("split").String(r.split);
      w.Key("accuracy").Double(r.accuracy);
      w.Key("majority_baseline").Double(r.baseline);
      w.Key("n").Uint(r.n);
      w.Key("beats_baseline").Bool(r.accuracy > r.baseline);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    std::printf("%s\n", w.str().c_str());
    return;
  }
  std::printf("sentiment model %s\n\n", version.c_str());
  std::printf("| corpus | split | accuracy | majority-class baseline | n | |\n");
  std::printf("|---|---|---:|---:|---:|---|\n");
  for (const SentimentAccuracy& r : rows) {
    std::printf("| %s | %s | %.4f | %.4f | %llu | %s |\n", r.corpus.c_str(), r.split.c_str(),
                r.accuracy, r.baseline, static_cast<unsigned long long>(r.n),
                r.accuracy > r.baseline ? "beats baseline" : "LOSES to baseline");
  }
}

std::string MetadataJson(const SentimentCli& o, const std::vector<Corpus>& corpora) {
  JsonWriter w;
  w.BeginObject();
  w.Key("model").String("sentiment");
  w.Key("library").String("fastText 0.9.2 (supervised, softmax)");
  w.Key("split").String("SplitSentimentExamples 70/10/20 train/validation/test, hash of text");
  w.Key("split_seed").Uint(o.split_seed);
  w.Key("corpora").BeginArray();
  for (const Corpus& c : corpora) {
    w.BeginObject();
    w.Key("name").String(c.name);
    w.Key("train").Uint(c.split.train.size());
    w.EndObject();
  }
  w.EndArray();
  for (auto [name, c] : {std::pair{"latin", &o.train.latin}, {"cjk", &o.train.cjk}}) {
    w.Key(name).BeginObject();
    w.Key("epochs").Int(c->epochs);
    w.Key("lr").Double(c->lr);
    w.Key("dim").Int(c->dim);
    w.Key("word_ngrams").Int(c->word_ngrams);
    w.Key("buckets").Int(c->buckets);
    w.EndObject();
  }
  w.Key("min_count").Int(o.train.min_count);
  w.Key("seed").Uint(o.train.seed);
  w.Key("threads").Int(o.train.threads);
  w.EndObject();
  return w.Take();
}

int RunTrainSentiment(SentimentCli& o) {
  if (o.out.empty() == o.data_dir.empty()) {
    std::cerr << "persona: train sentiment needs exactly one of --out FILE or --data DIR\n";
    return 2;
  }
  auto corpora = LoadCorpora(o);
  if (!corpora.ok()) {
    std::cerr << "persona: " << corpora.status().message() << "\n";
    return absl::IsInvalidArgument(corpora.status()) || absl::IsNotFound(corpora.status()) ? 2 : 1;
  }
  auto model = TrainOnCorpora(o, *corpora);
  if (!model.ok()) {
    if (absl::IsInvalidArgument(model.status())) {
      std::cerr << "persona: " << model.status().message() << "\n";
      return 2;
    }
    return Fail(model.status());
  }
  model->mutable_metrics().held_out = Evaluate(*model, *corpora, /*validation=*/true);
  model->set_metadata_json(MetadataJson(o, *corpora));

  std::string out = o.out;
  if (out.empty()) out = o.data_dir + "/models/sentiment/" + model->version() + ".pst";
  const std::filesystem::path parent = std::filesystem::path(out).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      std::cerr << "persona: cannot create " << parent << ": " << ec.message() << "\n";
      return 1;
    }
  }
  if (auto s = model->Save(out); !s.ok()) return Fail(s);
  std::printf("%s\n", out.c_str());
  if (!o.quiet) {
    std::fprintf(stderr, "persona: wrote %s (%s): %llu examples, train accuracy %.4f, %.1f s\n",
                 out.c_str(), model->version().c_str(),
                 static_cast<unsigned long long>(model->metrics().train_examples),
                 model->metrics().train_accuracy, model->metrics().train_seconds);
    for (const SentimentAccuracy& r : model->metrics().held_out) {
      std::fprintf(stderr, "  %-40s %-10s accuracy %.4f (majority %.4f, n %llu)\n",
                   r.corpus.c_str(), r.split.c_str(), r.accuracy, r.baseline,
                   static_cast<unsigned long long>(r.n));
    }
  }
  return 0;
}

// The newest artifact under DIR/models/sentiment (versions sort by time), empty when none.
std::string NewestModel(const std::string& data_dir) {
  std::error_code ec;
  std::string newest;
  for (const auto& entry :
       std::filesystem::directory_iterator(data_dir + "/models/sentiment", ec)) {
    if (entry.path().extension() != ".pst" || !entry.is_regular_file(ec)) continue;
    if (entry.path().string() > newest) newest = entry.path().string();
  }
  return newest;
}

int RunEvalSentiment(SentimentCli& o) {
  if (!o.model.empty() && !o.data_dir.empty()) {
    std::cerr << "persona: give at most one of --model FILE or --data DIR\n";
    return 2;
  }
  std::string model_path = o.model;
  if (!o.data_dir.empty()) {
    model_path = NewestModel(o.data_dir);
    if (model_path.empty()) {
      std::cerr << "persona: no sentiment model under " << o.data_dir << "/models/sentiment\n";
      return 2;
    }
  }
  auto corpora = LoadCorpora(o);
  if (!corpora.ok()) {
    std::cerr << "persona: " << corpora.status().message() << "\n";
    return absl::IsInvalidArgument(corpora.status()) || absl::IsNotFound(corpora.status()) ? 2 : 1;
  }
  if (!model_path.empty()) {
    // A saved model: only the test parts, which `train sentiment` with the same --split-seed
    // never trained on.
    auto model = SentimentModel::Load(model_path);
    if (!model.ok()) return Fail(model.status());
    PrintTable((*model)->version(), Evaluate(**model, *corpora, /*validation=*/false), o.json);
    return 0;
  }
  // No model: train one on the train parts now and report validation and test.
  auto model = TrainOnCorpora(o, *corpora);
  if (!model.ok()) {
    if (absl::IsInvalidArgument(model.status())) {
      std::cerr << "persona: " << model.status().message() << "\n";
      return 2;
    }
    return Fail(model.status());
  }
  PrintTable(model->version() + " (trained for this evaluation)",
             Evaluate(*model, *corpora, /*validation=*/true), o.json);
  return 0;
}

void AddCommonOptions(CLI::App* cmd, SentimentCli* o) {
  cmd->add_option("--corpus", o->corpora,
                  "Labelled corpus (repeatable; UCI .txt, Chinese .csv, Amazon .jsonl); default: "
                  "the four under ../shared/datasets/reviews");
  cmd->add_option("--split-seed", o->split_seed, "Seed of the 70/10/20 split")
      ->capture_default_str();
  SentimentTrainOptions& t = o->train;
  for (auto [prefix, c] :
       {std::pair{std::string("--"), &t.latin}, {std::string("--cjk-"), &t.cjk}}) {
    const std::string which = prefix == "--" ? " (non-CJK classifier)" : " (CJK classifier)";
    cmd->add_option(prefix + "epochs", c->epochs, "Training epochs" + which)->capture_default_str();
    cmd->add_option(prefix + "lr", c->lr, "Learning rate" + which)->capture_default_str();
    cmd->add_option(prefix + "dim", c->dim, "Embedding size" + which)->capture_default_str();
    cmd->add_option(prefix + "word-ngrams", c->word_ngrams,
                    "Word n-gram length, 1 = bag of words" + which)
        ->capture_default_str();
    cmd->add_option(prefix + "buckets", c->buckets, "Hash buckets for word n-grams" + which)
        ->capture_default_str();
  }
  cmd->add_option("--min-count", t.min_count, "Minimum word count")->capture_default_str();
  cmd->add_option("--seed", t.seed, "Training seed")->capture_default_str();
  cmd->add_option("--threads", t.threads, "Training threads (> 1 is not reproducible)")
      ->capture_default_str();
  cmd->add_flag("--quiet,-q", o->quiet, "No progress output");
}

}  // namespace

void RegisterSentimentCommands(Registry& r) {
  CLI::App* train = r.app().get_subcommand("train");
  auto t = std::make_shared<SentimentCli>();
  CLI::App* train_cmd = train->add_subcommand(
      "sentiment", "Train the fastText review-sentiment model and write the artifact");
  AddCommonOptions(train_cmd, t.get());
  train_cmd->add_option("--out", t->out, "Model file");
  train_cmd->add_option("--data", t->data_dir,
                        "Data directory: write DIR/models/sentiment/<version>.pst");
  r.AddExisting(train_cmd, [t] { return RunTrainSentiment(*t); });

  CLI::App* eval = r.app().get_subcommand("eval");
  auto e = std::make_shared<SentimentCli>();
  CLI::App* eval_cmd = eval->add_subcommand(
      "sentiment",
      "Accuracy of the sentiment model per corpus next to the majority-class baseline (trains "
      "one on the train parts when no model is given)");
  AddCommonOptions(eval_cmd, e.get());
  eval_cmd->add_option("--model", e->model, "Model file to evaluate on the test parts");
  eval_cmd->add_option("--data", e->data_dir, "Evaluate DIR's newest sentiment model");
  eval_cmd->add_flag("--json", e->json, "Print JSON instead of a markdown table");
  r.AddExisting(eval_cmd, [e] { return RunEvalSentiment(*e); });
}

}  // namespace persona::cli
