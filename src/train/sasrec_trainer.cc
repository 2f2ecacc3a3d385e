#include "train/sasrec_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <random>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/json_writer.h"
#include "common/time_util.h"
#include "eval/sequence_eval.h"
#include "train/sasrec_net.h"

namespace persona {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Ranks with a model snapshot during validation.
class SnapshotScorer : public SequenceScorer {
 public:
  explicit SnapshotScorer(const SasRecModel& model) : model_(model) {}
  std::string name() const override { return "sasrec"; }
  void Score(std::span<const uint32_t> history, std::span<float> scores) const override {
    model_.ScoreAll(history, scores);
  }

 private:
  const SasRecModel& model_;
};

// "sasrec-YYYYMMDDTHHMMSSZ" for a Unix time.
std::string VersionFor(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "sasrec-%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// Sampling only pays when it skips most of the catalogue; with as many negatives as items the
// full softmax is cheaper and exact.
bool UsesSampledSoftmax(const SasRecTrainOptions& o, uint32_t num_items) {
  return o.sampled_negatives > 0 && o.sampled_negatives < num_items;
}

std::string MetadataJson(const SequenceDataset& data, const SasRecTrainOptions& o,
                         const SasRecTrainResult& r, uint64_t train_users, int torch_threads,
                         int64_t trained_at_ms) {
  JsonWriter w;
  w.BeginObject();
  w.Key("model").String("sasrec");
  w.Key("data_source").String(o.data_source);
  w.Key("users").Uint(data.sequences.size());
  w.Key("train_users").Uint(train_users);
  w.Key("items").Uint(data.num_items);
  w.Key("interactions").Uint(data.interactions());
  w.Key("hyper").BeginObject();
  w.Key("max_len").Uint(o.hyper.max_len);
  w.Key("dim").Uint(o.hyper.dim);
  w.Key("blocks").Uint(o.hyper.blocks);
  w.Key("heads").Uint(o.hyper.heads);
  w.EndObject();
  w.Key("options").BeginObject();
  w.Key("dropout").Double(o.dropout);
  w.Key("learning_rate").Double(o.learning_rate);
  w.Key("weight_decay").Double(o.weight_decay);
  w.Key("batch_size").Uint(o.batch_size);
  w.Key("epochs").Uint(o.epochs);
  w.Key("patience").Uint(o.patience);
  w.Key("sampled_negatives").Uint(o.sampled_negatives);
  w.Key("loss").String(UsesSampledSoftmax(o, data.num_items) ? "sampled_softmax" : "full_softmax");
  w.Key("time_limit_s").Double(o.time_limit_s);
  w.Key("seed").Uint(o.seed);
  w.Key("valid_users").Uint(o.valid_users);
  w.EndObject();
  w.Key("epochs").BeginArray();
  for (const SasRecEpoch& e : r.epochs) {
    w.BeginObject();
    w.Key("epoch").Uint(e.epoch);
    w.Key("loss").Double(e.loss);
    w.Key("valid_ndcg10").Double(e.valid_ndcg10);
    w.Key("valid_hr10").Double(e.valid_hr10);
    w.Key("seconds").Double(e.seconds);
    w.Key("best").Bool(e.best);
    w.EndObject();
  }
  w.EndArray();
  w.Key("best_epoch").Uint(r.best_epoch);
  double best_ndcg = 0, best_hr = 0;
  for (const SasRecEpoch& e : r.epochs) {
    if (e.epoch == r.best_epoch) best_ndcg = e.valid_ndcg10, best_hr = e.valid_hr10;
  }
  w.Key("validation").BeginObject();
  w.Key("protocol").String("leave-one-out, 100 sampled negatives, seed 1");
  w.Key("ndcg10").Double(best_ndcg);
  w.Key("hr10").Double(best_hr);
  w.EndObject();
  w.Key("wall_seconds").Double(r.seconds);
  w.Key("torch_threads").Int(torch_threads);
  w.Key("trained_at").String(FormatIsoTime(trained_at_ms));
  w.EndObject();
  return w.Take();
}

}  // namespace

absl::StatusOr<SasRecTrainResult> TrainSasRec(
    const SequenceDataset& data, const SasRecTrainOptions& options,
    const std::function<void(uint64_t, uint64_t, double)>& progress,
    const std::function<void(const SasRecEpoch&)>& on_epoch) {
  const Clock::time_point start = Clock::now();
  const SasRecHyper& hyper = options.hyper;
  if (hyper.dim == 0 || hyper.heads == 0 || hyper.dim % hyper.heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("dim ", hyper.dim, " must be a positive multiple of heads ", hyper.heads));
  }
  if (hyper.max_len == 0 || hyper.blocks == 0 || options.batch_size == 0) {
    return absl::InvalidArgumentError("max_len, blocks and batch size must be positive");
  }
  if (!(options.dropout >= 0 && options.dropout < 1) || !(options.learning_rate > 0)) {
    return absl::InvalidArgumentError("dropout must be in [0, 1) and the learning rate positive");
  }
  if (data.num_items == 0 || data.item_names.size() != data.num_items + 1) {
    return absl::FailedPreconditionError("the dataset has no items");
  }

  // Training pairs: each user's training part (leave-one-out) shifted by one, the last max_len
  // positions of it, left-padded. Users with fewer than 2 training items teach nothing.
  std::vector<std::vector<uint32_t>> inputs, targets;
  uint64_t positions = 0;
  for (const auto& seq : data.sequences) {
    const LeaveOneOut split = SplitLeaveOneOut(seq);
    if (split.train.size() < 2) continue;
    inputs.emplace_back(split.train.begin(), split.train.end() - 1);
    targets.emplace_back(split.train.begin() + 1, split.train.end());
    positions += std::min<size_t>(split.train.size() - 1, hyper.max_len);
  }
  if (inputs.empty()) {
    return absl::FailedPreconditionError(
        "no user has 2 or more training items (sequences need at least 4 items: training "
        "pairs plus the validation and test targets)");
  }
  const int64_t users = static_cast<int64_t>(inputs.size());
  const torch::Tensor all_inputs = LeftPad(inputs, hyper.max_len);
  // Targets are padded the same way as inputs so that position t of a row holds the item
  // that follows input t; padding positions hold 0 and are skipped by the loss.
  const torch::Tensor all_targets = LeftPad(targets, hyper.max_len);

  const int threads = options.threads ? static_cast<int>(options.threads)
                                      : static_cast<int>(std::thread::hardware_concurrency());
  torch::set_num_threads(std::max(threads, 1));
  torch::manual_seed(options.seed);
  std::mt19937_64 rng(options.seed);

  SasRecNet net(hyper, data.num_items, options.dropout);
  torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(options.learning_rate)
                                                      .betas({0.9, 0.98})
                                                      .weight_decay(options.weight_decay));

  SequenceEvalOptions eval;
  eval.ks = {10};
  eval.negatives = 100;
  eval.seeds = {1};
  eval.full_ranking = false;
  eval.validation = true;
  eval.max_users = options.valid_users;
  eval.threads = static_cast<uint32_t>(std::max(threads, 1));

  SasRecTrainResult result;
  SasRecWeights best_weights;
  double best_ndcg = -1;
  uint32_t since_best = 0;
  std::vector<int64_t> order(users);
  for (int64_t i = 0; i < users; ++i) order[i] = i;
  std::vector<uint32_t> lengths(users);
  for (int64_t i = 0; i < users; ++i) {
    lengths[i] = static_cast<uint32_t>(std::min<size_t>(inputs[i].size(), hyper.max_len));
  }
  struct Batch {
    int64_t begin, end;
    uint32_t len;  // longest sequence in the batch: the columns worth computing
  };
  std::vector<Batch> batches;
  const torch::TensorOptions long_options = torch::TensorOptions().dtype(torch::kLong);
  bool out_of_time = false;
  const bool sampled = UsesSampledSoftmax(options, data.num_items);

  for (uint32_t epoch = 1; epoch <= options.epochs && !out_of_time; ++epoch) {
    const Clock::time_point epoch_start = Clock::now();
    net->train();
    // Most users have a handful of items while max_len is 50: batches of similar lengths let
    // each batch drop its all-padding columns, which is exact (padding is masked) and cuts the
    // transformer's work several-fold. Users are shuffled, sorted by length within windows of
    // 64 batches, cut into batches, and the batches shuffled.
    std::shuffle(order.begin(), order.end(), rng);
    const int64_t window = static_cast<int64_t>(options.batch_size) * 64;
    for (int64_t w = 0; w < users; w += window) {
      std::stable_sort(order.begin() + w, order.begin() + std::min(users, w + window),
                       [&](int64_t a, int64_t b) { return lengths[a] < lengths[b]; });
    }
    batches.clear();
    for (int64_t begin = 0; begin < users; begin += options.batch_size) {
      const int64_t end = std::min<int64_t>(users, begin + options.batch_size);
      uint32_t len = 1;
      for (int64_t i = begin; i < end; ++i) len = std::max(len, lengths[order[i]]);
      batches.push_back({begin, end, len});
    }
    std::shuffle(batches.begin(), batches.end(), rng);
    const torch::Tensor perm = torch::from_blob(order.data(), {users}, long_options);
    double loss_sum = 0;
    uint64_t loss_batches = 0, done = 0;
    const uint64_t report_every = std::max<uint64_t>(1, batches.size() / 100);
    for (const Batch& batch : batches) {
      if (options.time_limit_s > 0 && SecondsSince(start) >= options.time_limit_s) {
        out_of_time = true;
        break;
      }
      const torch::Tensor rows = perm.slice(0, batch.begin, batch.end);
      const int64_t first_col = static_cast<int64_t>(hyper.max_len - batch.len);
      const torch::Tensor batch_inputs =
          all_inputs.index_select(0, rows).slice(1, first_col, hyper.max_len);
      const torch::Tensor batch_targets =
          all_targets.index_select(0, rows).slice(1, first_col, hyper.max_len);
      const torch::Tensor hidden = net->Forward(batch_inputs);
      torch::Tensor loss;
      if (sampled) {
        std::uniform_int_distribution<int64_t> item(1, data.num_items);
        torch::Tensor negatives = torch::empty({options.sampled_negatives}, long_options);
        int64_t* p = negatives.data_ptr<int64_t>();
        for (uint32_t i = 0; i < options.sampled_negatives; ++i) p[i] = item(rng);
        loss = net->SampledSoftmaxLoss(hidden, batch_targets, negatives);
      } else {
        loss = net->FullSoftmaxLoss(hidden, batch_targets);
      }
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      loss_sum += loss.item<double>();
      ++loss_batches;
      done += static_cast<uint64_t>(batch.end - batch.begin);
      if (progress && (loss_batches % report_every == 0 || loss_batches == batches.size())) {
        progress(done, static_cast<uint64_t>(users), loss_sum / static_cast<double>(loss_batches));
      }
    }
    if (loss_batches == 0) break;  // the time limit hit before this epoch did anything

    net->eval();
    auto snapshot =
        std::make_shared<SasRecModel>(hyper, data.item_names, net->ExportWeights(), "", "{}");
    const SequenceEvalResult valid = EvaluateSequences(data, SnapshotScorer(*snapshot), eval);
    SasRecEpoch e;
    e.epoch = epoch;
    e.loss = loss_sum / static_cast<double>(loss_batches);
    if (const MetricsAtK* m = valid.SampledAt(10)) {
      e.valid_ndcg10 = m->ndcg;
      e.valid_hr10 = m->hr;
    }
    e.seconds = SecondsSince(epoch_start);
    // With no validation users every epoch counts as an improvement: the last one is kept.
    if (e.valid_ndcg10 > best_ndcg || valid.users == 0) {
      best_ndcg = e.valid_ndcg10;
      best_weights = snapshot->weights();
      result.best_epoch = epoch;
      since_best = 0;
      e.best = true;
    } else {
      ++since_best;
    }
    result.epochs.push_back(e);
    if (on_epoch) on_epoch(e);
    if (options.patience > 0 && since_best >= options.patience) break;
  }
  if (result.epochs.empty()) {
    return absl::DeadlineExceededError("the time limit ended training before the first epoch");
  }

  result.seconds = SecondsSince(start);
  const auto now = std::chrono::system_clock::now();
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::string metadata = MetadataJson(data, options, result, static_cast<uint64_t>(users),
                                      torch::get_num_threads(), now_ms);
  result.model = std::make_shared<SasRecModel>(
      hyper, data.item_names, std::move(best_weights),
      VersionFor(std::chrono::system_clock::to_time_t(now)), std::move(metadata));
  return result;
}

}  // namespace persona
