// Review sentiment: a fastText (Joulin et al. 2017, "Bag of Tricks for Efficient Text
// Classification") binary classifier that Persona trains itself and applies to review events at
// update time. Text goes through SentimentTokens both when training and when scoring, so English
// and Chinese reviews share one model (their tokens never collide). fastText is an implementation
// detail of the .cc: this header does not include it.
//
// Artifact file format: see docs/model_format.md ("Sentiment model").
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fasttext {
class FastText;
}

namespace persona {

// The model's input words for `text`, separated by single spaces:
//   - ASCII letters and digits form words, lowercased; other ASCII bytes separate them, except
//     that "!" and "?" are kept as tokens (one per run) because they carry tone.
//   - English contractions split as in the Penn Treebank: "didn't" -> "did n't", "can't" ->
//     "ca n't", "it's" -> "it 's", so negation is a token of its own ("not" stays a word).
//     The typographic apostrophe U+2019 counts as "'".
//   - A run of CJK characters (Han, kana, Hangul) gives each character, then each adjacent pair
//     (Chinese has no spaces; bigrams approximate words without a dictionary).
//   - Full-width letters and digits count as ASCII; other non-ASCII letters (é, ü) join words
//     unchanged; non-ASCII punctuation, spaces and the BOM separate.
// Mixed text ("iPhone很好用") is handled run by run. Invalid UTF-8 bytes are treated as separators.
std::string SentimentTokens(std::string_view text);

struct SentimentExample {
  std::string text;
  int label = 0;  // 1 positive, 0 negative
};

// Reads a labelled review corpus, detecting its format from the file name:
//   - "*.jsonl": one JSON object per line with "reviewText" (and "summary", prepended) and
//     "overall" stars; >= 4 is positive, <= 2 negative, 3 is dropped.
//   - "*.csv": a header line then `cat,label,review` (RFC 4180 quoting, quoted fields may span
//     lines); a BOM anywhere at a field start is dropped.
//   - anything else: UCI Sentiment Labelled Sentences, `sentence<TAB>0|1` per line.
// Returns NotFound when the file cannot be opened and InvalidArgument naming the line when a
// record is malformed (a wrong label, a missing field); empty texts are skipped.
absl::StatusOr<std::vector<SentimentExample>> LoadSentimentCorpus(const std::string& path);

// A seeded train/validation/test split in proportions 70/10/20. An example's part is a function
// of its text and the seed only, so duplicate texts always land in the same part (no leakage
// through repeated reviews) and the split does not depend on file order.
struct SentimentSplit {
  std::vector<SentimentExample> train, validation, test;
};
SentimentSplit SplitSentimentExamples(std::span<const SentimentExample> examples, uint64_t seed);

// Texts are routed by script: mostly-CJK text (Chinese, Japanese, Korean) to one fastText
// classifier, everything else to another. The two never share a token, so one joint model would
// only couple them through one learning-rate schedule and one capacity, and they want different
// ones: on the validation splits Chinese gains from longer n-grams and a wider embedding (0.905 ->
// 0.915) while the small English corpora overfit with them (0.817 -> 0.808 on UCI Amazon).
struct SentimentTrainOptions {
  struct Classifier {
    int epochs = 25;
    double lr = 1.0;
    int dim = 32;
    int word_ngrams = 2;   // fastText word n-grams (1 = bag of words)
    int buckets = 200000;  // hash buckets for word n-grams (input rows; the artifact's bulk)
  };
  Classifier latin;
  Classifier cjk{25, 0.5, 64, 3, 200000};
  int min_count = 1;
  uint64_t seed = 1;
  // Threads > 1 train faster but fastText's Hogwild updates make the result nondeterministic.
  int threads = 1;
};

// One evaluation row stored with the model: accuracy on a named corpus part next to the
// majority-class baseline (the accuracy of always answering that part's most frequent label).
struct SentimentAccuracy {
  std::string corpus;
  std::string split;  // "validation" or "test"
  double accuracy = 0;
  double baseline = 0;
  uint64_t n = 0;
};

struct SentimentMetrics {
  uint64_t train_examples = 0;
  double train_positive_fraction = 0;
  double train_accuracy = 0;
  double train_seconds = 0;
  std::vector<SentimentAccuracy> held_out;  // filled by the caller (Evaluate), stored by Save
};

class SentimentModel {
 public:
  // Trains on `examples` (texts tokenised with SentimentTokens), one classifier per script that
  // has examples of both labels. InvalidArgument when options are out of range, when no example
  // has a token, or when no script has both labels; fastText's own
  // failures come back as Internal rather than an exception or exit(). `progress(fraction, loss)`
  // is called now and then from a training thread when given.
  static absl::StatusOr<SentimentModel> Train(
      std::span<const SentimentExample> examples, const SentimentTrainOptions& options,
      const std::function<void(double fraction, double loss)>& progress = nullptr);

  // Reads an artifact; InvalidArgument for a file that is not a sentiment model, DataLoss naming
  // what is wrong for a truncated or corrupt one.
  static absl::StatusOr<std::shared_ptr<const SentimentModel>> Load(const std::string& path);
  // Writes the artifact atomically (temp file + rename).
  absl::Status Save(const std::string& path) const;

  SentimentModel(SentimentModel&&) noexcept;
  SentimentModel& operator=(SentimentModel&&) noexcept;
  ~SentimentModel();

  // P(positive) in [0, 1]. Thread-safe (const, no shared scratch state); a few microseconds for a
  // sentence, tens for a long review. Text without known words gets the classifier's bias; text
  // of a script the model has no classifier for goes to the other one.
  double Positive(std::string_view text) const;
  // Whether `text` goes to the CJK classifier: it has at least as many CJK characters as ASCII
  // letters (so "iPhone很好用" does, "great 好评 phone" does not).
  static bool IsCjkText(std::string_view text);
  // Which classifiers the model has (at least one).
  bool has_latin() const { return fasttext_[kLatin] != nullptr; }
  bool has_cjk() const { return fasttext_[kCjk] != nullptr; }

  // Accuracy (threshold 0.5) and majority baseline of `examples`, as a row named corpus/split.
  SentimentAccuracy Evaluate(std::span<const SentimentExample> examples, std::string corpus,
                             std::string split) const;

  // "sentiment-YYYYMMDDTHHMMSSZ", set at training time.
  const std::string& version() const { return version_; }
  void set_version(std::string version) { version_ = std::move(version); }
  const SentimentMetrics& metrics() const { return metrics_; }
  SentimentMetrics& mutable_metrics() { return metrics_; }
  // A JSON object (training data, options) stored verbatim.
  const std::string& metadata_json() const { return metadata_json_; }
  void set_metadata_json(std::string json) { metadata_json_ = std::move(json); }

 private:
  SentimentModel();
  enum Script { kLatin = 0, kCjk = 1 };
  // Reads fastText model bytes (as FastText::saveModel writes them) into the script's slot and
  // finds the positive label id.
  absl::Status LoadFastText(Script script, std::string_view bytes);
  double PositiveWith(Script script, std::string_view text) const;

  std::unique_ptr<fasttext::FastText> fasttext_[2];
  int32_t positive_label_[2] = {-1, -1};  // fastText label id of "__label__1"
  std::string version_;
  SentimentMetrics metrics_;
  std::string metadata_json_;
};

}  // namespace persona
