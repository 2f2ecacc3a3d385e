#include "predict/next_category.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/json_writer.h"
#include "common/model_artifact.h"
#include "common/time_util.h"
#include "predict/point_in_time.h"

namespace persona {
namespace {

constexpr uint32_t kUnknown = 0xffffffffu;
// Global categories always ranked, so a user without history still gets k answers.
constexpr size_t kGlobalCandidates = 20;
// Recent items the server folds into recent categories (predictor.cc does the same).
constexpr size_t kRecentItems = 20;

// ---- payload encoding (docs/model_format.md); model_artifact.h wraps it in the envelope.
constexpr char kKind[] = "next_category";
constexpr uint32_t kLayoutVersion = 1;

void PutU32(std::string* out, uint32_t v) { out->append(reinterpret_cast<const char*>(&v), 4); }
void PutU64(std::string* out, uint64_t v) { out->append(reinterpret_cast<const char*>(&v), 8); }
void PutF64(std::string* out, double v) { PutU64(out, std::bit_cast<uint64_t>(v)); }
void PutString(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : rest_(bytes) {}
  bool Raw(size_t n, void* dest) {
    if (rest_.size() < n) return false;
    std::memcpy(dest, rest_.data(), n);
    rest_.remove_prefix(n);
    return true;
  }
  bool U32(uint32_t* v) { return Raw(4, v); }
  bool U64(uint64_t* v) { return Raw(8, v); }
  bool F64(double* v) { return Raw(8, v); }
  bool String(std::string* s) {
    uint32_t n = 0;
    if (!U32(&n) || rest_.size() < n) return false;
    s->assign(rest_.data(), n);
    rest_.remove_prefix(n);
    return true;
  }
  bool Count(size_t min_bytes, uint32_t* n) { return U32(n) && *n <= rest_.size() / min_bytes; }
  bool done() const { return rest_.empty(); }

 private:
  std::string_view rest_;
};

std::string VersionNow() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  std::strftime(buf, sizeof(buf), "next_category-%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// ScoredInterest views of an example's owned interests.
std::vector<ScoredInterest> InterestViews(const NextCategoryExample& e) {
  std::vector<ScoredInterest> out;
  out.reserve(e.interests.size());
  for (const auto& [key, score] : e.interests) {
    ScoredInterest s;
    s.key = key;
    s.score = score;
    s.direct = true;
    out.push_back(s);
  }
  return out;
}

bool Hit(const std::vector<std::pair<std::string, double>>& top, const std::string& target,
         size_t k) {
  for (size_t i = 0; i < std::min(k, top.size()); ++i) {
    if (top[i].first == target) return true;
  }
  return false;
}

}  // namespace

struct NextCategoryModel::Counts {
  std::vector<std::string> names;
  absl::flat_hash_map<std::string, uint32_t> ids;
  std::vector<uint64_t> visits;
  absl::flat_hash_map<uint64_t, uint32_t> transitions;  // (from << 32 | to) -> count

  uint32_t Id(const std::string& name) {
    auto [it, inserted] = ids.try_emplace(name, static_cast<uint32_t>(names.size()));
    if (inserted) {
      names.push_back(name);
      visits.push_back(0);
    }
    return it->second;
  }

  // Folds each user's events into visits: a new category, or the same one after a gap longer
  // than the session gap (every event when `count_repeats`). Consecutive visits make a
  // transition.
  void Add(std::span<const CategorySequence> sequences, int64_t until_ms, int64_t gap_ms,
           bool count_repeats) {
    for (const CategorySequence& seq : sequences) {
      uint32_t prev = kUnknown;
      int64_t prev_ts = 0;
      for (const auto& [ts, name] : seq.events) {
        if (until_ms > 0 && ts > until_ms) break;
        const uint32_t c = Id(name);
        const bool new_visit =
            count_repeats || prev == kUnknown || c != prev || ts - prev_ts > gap_ms;
        if (new_visit) {
          ++visits[c];
          if (prev != kUnknown) ++transitions[(static_cast<uint64_t>(prev) << 32) | c];
        }
        prev = c;
        prev_ts = ts;
      }
    }
  }
};

NextCategoryModel NextCategoryModel::Fit(const Counts& counts, uint32_t max_successors) {
  NextCategoryModel m;
  m.categories_ = counts.names;
  const size_t n = m.categories_.size();
  uint64_t total = 0;
  for (uint64_t v : counts.visits) total += v;
  m.global_.assign(n, 0.0);
  for (size_t c = 0; c < n; ++c) {
    m.global_[c] =
        total > 0 ? static_cast<double>(counts.visits[c]) / static_cast<double>(total) : 0.0;
  }
  m.sources_.assign(n, Source{});
  for (const auto& [key, count] : counts.transitions) {
    Source& s = m.sources_[key >> 32];
    s.total += count;
    s.successors.push_back({static_cast<uint32_t>(key & 0xffffffffu), count});
  }
  for (Source& s : m.sources_) {
    std::sort(s.successors.begin(), s.successors.end(),
              [&](const Successor& a, const Successor& b) {
                return a.count != b.count ? a.count > b.count
                                          : m.categories_[a.category] < m.categories_[b.category];
              });
    if (s.successors.size() > max_successors) s.successors.resize(max_successors);
  }
  std::vector<uint32_t> order(n);
  for (uint32_t c = 0; c < n; ++c) order[c] = c;
  const size_t top = std::min(kGlobalCandidates, n);
  std::partial_sort(order.begin(), order.begin() + top, order.end(), [&](uint32_t a, uint32_t b) {
    return m.global_[a] != m.global_[b] ? m.global_[a] > m.global_[b]
                                        : m.categories_[a] < m.categories_[b];
  });
  m.global_top_.assign(order.begin(), order.begin() + top);
  for (uint32_t c = 0; c < n; ++c) m.index_.emplace(m.categories_[c], c);
  return m;
}

uint32_t NextCategoryModel::Find(std::string_view category) const {
  auto it = index_.find(absl::string_view(category.data(), category.size()));
  return it == index_.end() ? kUnknown : it->second;
}

std::vector<NextCategoryModel::Candidate> NextCategoryModel::Candidates(
    std::span<const std::string_view> recent, std::span<const ScoredInterest> interests,
    double beta, double decay, uint32_t context) const {
  // Per read of a profile with predictions: the map is reused by the thread, and each entry
  // keeps the category's id when it is known (successors, global top) so that the final pass
  // looks names up only for interests the model has no id for.
  struct Entry {
    Candidate candidate;
    uint32_t id = kUnknown;
  };
  thread_local absl::flat_hash_map<std::string_view, Entry> by_name;
  by_name.clear();
  auto at = [&](std::string_view name, uint32_t id = kUnknown) -> Candidate& {
    Entry& e = by_name[name];
    e.candidate.name = name;
    if (id != kUnknown) e.id = id;
    return e.candidate;
  };
  // The last `context` distinct categories, most recent first (recent is folded already, but a
  // caller may pass A B A: A counts once, at its most recent position).
  std::vector<std::string_view> sources;
  for (size_t i = recent.size(); i-- > 0 && sources.size() < context;) {
    if (std::find(sources.begin(), sources.end(), recent[i]) == sources.end()) {
      sources.push_back(recent[i]);
    }
  }
  // sum_j w_j * beta / (n_j + beta): the weight of the global distribution in the mixture.
  double weight_sum = 0, backoff = 0, w = 1;
  for (std::string_view name : sources) {
    const uint32_t a = Find(name);
    const double n = a == kUnknown ? 0.0 : static_cast<double>(sources_[a].total);
    backoff += w * beta / (n + beta);
    if (a != kUnknown) {
      for (const Successor& s : sources_[a].successors) {
        at(categories_[s.category], s.category).transition += w * s.count / (n + beta);
      }
    }
    weight_sum += w;
    w *= decay;
  }
  if (sources.empty()) {
    weight_sum = 1;
    backoff = 1;
  }
  double interest_total = 0;
  for (const ScoredInterest& s : interests) interest_total += std::max(0.0, s.score);
  for (const ScoredInterest& s : interests) {
    if (interest_total > 0 && s.score > 0) at(s.key).share = s.score / interest_total;
  }
  for (uint32_t c : global_top_) at(categories_[c], c);
  std::vector<Candidate> out;
  out.reserve(by_name.size());
  for (auto& [name, e] : by_name) {
    const uint32_t id = e.id != kUnknown ? e.id : Find(name);
    const double global = id == kUnknown ? 0.0 : global_[id];
    Candidate& c = e.candidate;
    c.transition = (c.transition + backoff * global) / weight_sum;
    out.push_back(c);
  }
  by_name.clear();  // its views name this model's categories: none outlives the call
  return out;
}

std::vector<std::pair<std::string, double>> NextCategoryModel::Top(
    std::span<const Candidate> candidates, double alpha, size_t k) {
  std::vector<std::pair<double, std::string_view>> scored;
  scored.reserve(candidates.size());
  for (const Candidate& c : candidates) {
    scored.emplace_back(alpha * c.transition + (1 - alpha) * c.share, c.name);
  }
  const size_t n = std::min(k, scored.size());
  std::partial_sort(scored.begin(), scored.begin() + n, scored.end(),
                    [](const auto& a, const auto& b) {
                      return a.first != b.first ? a.first > b.first : a.second < b.second;
                    });
  std::vector<std::pair<std::string, double>> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.emplace_back(std::string(scored[i].second), scored[i].first);
  return out;
}

std::vector<std::pair<std::string, double>> NextCategoryModel::PredictWithAlpha(
    std::span<const std::string_view> recent, std::span<const ScoredInterest> interests, size_t k,
    double alpha) const {
  const std::vector<Candidate> c =
      Candidates(recent, interests, params_.beta, params_.decay, params_.context);
  return Top(c, alpha, k);
}

std::vector<std::pair<std::string, double>> NextCategoryModel::Predict(
    std::span<const std::string_view> recent, std::span<const ScoredInterest> interests,
    size_t k) const {
  return PredictWithAlpha(recent, interests, k, params_.alpha);
}

std::vector<std::pair<std::string, double>> NextCategoryModel::PredictExample(
    const NextCategoryExample& example, size_t k, double alpha) const {
  const std::vector<std::string_view> recent(example.recent.begin(), example.recent.end());
  const std::vector<ScoredInterest> interests = InterestViews(example);
  return PredictWithAlpha(recent, interests, k, alpha);
}

absl::StatusOr<NextCategoryModel> NextCategoryModel::Train(
    std::span<const CategorySequence> sequences, std::span<const NextCategoryExample> validation,
    const NextCategoryTrainOptions& options) {
  Counts all;
  all.Add(sequences, 0, options.session_gap_ms, options.count_repeats);
  if (all.names.empty()) {
    return absl::FailedPreconditionError("next-category training data holds no categorised event");
  }
  NextCategoryParams best;
  double best_at3 = -1, best_at1 = -1;
  if (!validation.empty()) {
    Counts before;
    before.Add(sequences, options.validation_cutoff_ms, options.session_gap_ms,
               options.count_repeats);
    const NextCategoryModel tuning = Fit(before, options.max_successors);
    std::vector<std::vector<std::string_view>> recents;
    std::vector<std::vector<ScoredInterest>> interests;
    for (const NextCategoryExample& e : validation) {
      recents.emplace_back(e.recent.begin(), e.recent.end());
      interests.push_back(InterestViews(e));
    }
    constexpr int kAlphaSteps = 20;
    for (double beta : {1.0, 4.0, 16.0, 64.0}) {
      for (double decay : {0.0, 0.5}) {
        std::vector<int> hits1(kAlphaSteps + 1, 0), hits3(kAlphaSteps + 1, 0);
        for (size_t i = 0; i < validation.size(); ++i) {
          const std::vector<Candidate> c = tuning.Candidates(recents[i], interests[i], beta, decay,
                                                             NextCategoryParams{}.context);
          for (int a = 0; a <= kAlphaSteps; ++a) {
            const auto top = Top(c, static_cast<double>(a) / kAlphaSteps, 3);
            hits1[a] += Hit(top, validation[i].target, 1);
            hits3[a] += Hit(top, validation[i].target, 3);
          }
        }
        for (int a = 0; a <= kAlphaSteps; ++a) {
          const double at3 = static_cast<double>(hits3[a]) / static_cast<double>(validation.size());
          const double at1 = static_cast<double>(hits1[a]) / static_cast<double>(validation.size());
          if (at3 > best_at3 || (at3 == best_at3 && at1 > best_at1)) {
            best_at3 = at3;
            best_at1 = at1;
            best.alpha = static_cast<double>(a) / kAlphaSteps;
            best.beta = beta;
            best.decay = decay;
          }
        }
      }
    }
  }
  NextCategoryModel model = Fit(all, options.max_successors);
  model.params_ = best;
  model.version_ = VersionNow();
  uint64_t transitions = 0;
  for (const auto& [key, count] : all.transitions) transitions += count;
  model.metrics_ = {{"alpha", best.alpha},
                    {"beta", best.beta},
                    {"decay", best.decay},
                    {"categories", static_cast<double>(model.categories_.size())},
                    {"transitions", static_cast<double>(transitions)},
                    {"valid_users", static_cast<double>(validation.size())}};
  if (!validation.empty()) {
    model.metrics_.emplace_back("valid_accuracy_at1", best_at1);
    model.metrics_.emplace_back("valid_accuracy_at3", best_at3);
  }
  JsonWriter w;
  w.BeginObject();
  w.Key("model").String("next_category");
  w.Key("data_source").String(options.data_source);
  w.Key("users").Uint(sequences.size());
  w.Key("session_gap_ms").Int(options.session_gap_ms);
  w.Key("count_repeats").Bool(options.count_repeats);
  w.Key("validation_cutoff")
      .String(options.validation_cutoff_ms > 0 ? FormatIsoTime(options.validation_cutoff_ms) : "");
  w.Key("max_successors").Uint(options.max_successors);
  w.Key("trained_at")
      .String(FormatIsoTime(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count()));
  w.EndObject();
  model.metadata_json_ = w.Take();
  return model;
}

absl::StatusOr<NextCategoryData> BuildNextCategoryData(const EventLog& log, int64_t cutoff_ms,
                                                       int64_t label_end_ms,
                                                       const ProfileConfig& profile) {
  NextCategoryData data;
  absl::flat_hash_map<std::string_view, uint32_t> user_index;
  struct UserState {
    absl::flat_hash_map<std::string_view, uint32_t> counts;
    std::string_view target;
    bool has_target = false;
  };
  std::vector<UserState> users;
  absl::flat_hash_map<std::string_view, std::string_view> item_category;  // latest, up to cutoff
  for (const Event* e : log.events()) {
    const std::string_view category = e->category_key();
    if (e->ts_ms <= cutoff_ms) {
      auto [it, inserted] = user_index.try_emplace(e->user_id, static_cast<uint32_t>(users.size()));
      if (inserted) {
        users.emplace_back();
        data.sequences.emplace_back();
      }
      if (category.empty()) continue;
      if (!e->item_id.empty()) item_category[e->item_id] = category;
      data.sequences[it->second].events.emplace_back(e->ts_ms, std::string(category));
      ++users[it->second].counts[category];
    } else if (e->ts_ms <= label_end_ms && !category.empty()) {
      auto it = user_index.find(e->user_id);
      if (it == user_index.end() || users[it->second].has_target) continue;
      users[it->second].target = category;
      users[it->second].has_target = true;
    }
  }
  std::erase_if(data.sequences, [](const CategorySequence& s) { return s.events.empty(); });
  if (label_end_ms <= cutoff_ms) return data;
  bool any_target = false;
  for (const UserState& u : users) any_target = any_target || u.has_target;
  if (!any_target) return data;

  PointInTimeOptions pit;
  pit.cutoffs_ms = {cutoff_ms};
  pit.horizon_ms = label_end_ms - cutoff_ms;
  pit.profile = profile;
  auto replay = BuildPointInTime(
      log, pit,
      [&](const Profile& p, const ProfileContext& ctx, std::string_view user, int64_t cutoff) {
        auto it = user_index.find(user);
        if (it == user_index.end() || !users[it->second].has_target) return;
        const UserState& u = users[it->second];
        NextCategoryExample ex;
        ex.user = std::string(user);
        ex.target = std::string(u.target);
        std::vector<uint32_t> codes;
        p.sequence().ForEach([&](const ItemSequence::Item& item) { codes.push_back(item.code); });
        const size_t start = codes.size() > kRecentItems ? codes.size() - kRecentItems : 0;
        for (size_t i = start; i < codes.size(); ++i) {
          auto c = item_category.find(ctx.pool.Get(codes[i]));
          if (c == item_category.end()) continue;
          if (ex.recent.empty() || ex.recent.back() != c->second) {
            ex.recent.emplace_back(c->second);
          }
        }
        for (const ScoredInterest& s : p.TopInterests(InterestKind::kCategory, ctx, cutoff, 64)) {
          if (s.direct) ex.interests.emplace_back(std::string(s.key), s.score);
        }
        std::vector<std::pair<std::string_view, uint32_t>> counts(u.counts.begin(), u.counts.end());
        std::sort(counts.begin(), counts.end(), [](const auto& a, const auto& b) {
          return a.second != b.second ? a.second > b.second : a.first < b.first;
        });
        for (size_t i = 0; i < std::min<size_t>(3, counts.size()); ++i) {
          ex.most_frequent.emplace_back(counts[i].first);
        }
        data.examples.push_back(std::move(ex));
      });
  if (!replay.ok()) return replay.status();
  std::sort(data.examples.begin(), data.examples.end(),
            [](const auto& a, const auto& b) { return a.user < b.user; });
  return data;
}

std::vector<NextCategoryEvalRow> EvaluateNextCategory(const NextCategoryModel& model,
                                                      std::span<const NextCategoryExample> test) {
  struct Method {
    std::string name;
    double alpha;  // < 0: the baseline
  };
  const std::vector<Method> methods = {
      {absl::StrCat("blend (alpha ", model.params().alpha, ")"), model.params().alpha},
      {"transitions only", 1.0},
      {"interests only", 0.0},
      {"most frequent categories (baseline)", -1.0}};
  std::vector<NextCategoryEvalRow> rows;
  for (const Method& m : methods) {
    NextCategoryEvalRow row;
    row.method = m.name;
    row.baseline = m.alpha < 0;
    size_t hits1 = 0, hits3 = 0;
    for (const NextCategoryExample& e : test) {
      std::vector<std::pair<std::string, double>> top;
      if (m.alpha < 0) {
        for (const std::string& c : e.most_frequent) top.emplace_back(c, 0.0);
      } else {
        top = model.PredictExample(e, 3, m.alpha);
      }
      hits1 += Hit(top, e.target, 1);
      hits3 += Hit(top, e.target, 3);
    }
    if (!test.empty()) {
      row.accuracy_at1 = static_cast<double>(hits1) / static_cast<double>(test.size());
      row.accuracy_at3 = static_cast<double>(hits3) / static_cast<double>(test.size());
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

absl::Status NextCategoryModel::Save(const std::string& path) const {
  std::string payload;
  PutString(&payload, kKind);
  PutU32(&payload, kLayoutVersion);
  PutString(&payload, version_);
  PutString(&payload, metadata_json_);
  PutF64(&payload, params_.alpha);
  PutF64(&payload, params_.beta);
  PutF64(&payload, params_.decay);
  PutU32(&payload, params_.context);
  PutU32(&payload, static_cast<uint32_t>(metrics_.size()));
  for (const auto& [name, value] : metrics_) {
    PutString(&payload, name);
    PutF64(&payload, value);
  }
  PutU32(&payload, static_cast<uint32_t>(categories_.size()));
  for (size_t c = 0; c < categories_.size(); ++c) {
    PutString(&payload, categories_[c]);
    PutF64(&payload, global_[c]);
    PutU64(&payload, sources_[c].total);
    PutU32(&payload, static_cast<uint32_t>(sources_[c].successors.size()));
    for (const Successor& s : sources_[c].successors) {
      PutU32(&payload, s.category);
      PutU32(&payload, s.count);
    }
  }
  return WriteModelArtifact(path, payload);
}

absl::StatusOr<std::shared_ptr<const NextCategoryModel>> NextCategoryModel::Load(
    const std::string& path) {
  auto payload = ReadModelArtifact(path);
  if (!payload.ok()) return payload.status();
  auto bad = [&path](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("next-category model ", path, ": ", what));
  };

  Reader in(*payload);
  std::string kind;
  uint32_t layout = 0;
  if (!in.String(&kind) || kind != kKind) return bad(absl::StrCat("model kind is not ", kKind));
  if (!in.U32(&layout) || layout != kLayoutVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("next-category model ", path, ": layout version ", layout,
                     " is not supported (this build reads ", kLayoutVersion, ")"));
  }
  std::shared_ptr<NextCategoryModel> m(new NextCategoryModel());
  NextCategoryParams& p = m->params_;
  uint32_t metric_count = 0, n = 0;
  if (!in.String(&m->version_) || !in.String(&m->metadata_json_) || !in.F64(&p.alpha) ||
      !in.F64(&p.beta) || !in.F64(&p.decay) || !in.U32(&p.context) ||
      !in.Count(12, &metric_count)) {
    return bad("payload ends inside the header fields");
  }
  if (!(p.alpha >= 0 && p.alpha <= 1) || !(p.beta > 0) || !std::isfinite(p.beta) ||
      !(p.decay >= 0 && p.decay <= 1)) {
    return bad("parameters out of range");
  }
  for (uint32_t i = 0; i < metric_count; ++i) {
    std::string name;
    double value = 0;
    if (!in.String(&name) || !in.F64(&value)) return bad("payload ends inside the metrics");
    m->metrics_.emplace_back(std::move(name), value);
  }
  if (!in.Count(24, &n)) return bad("bad category count");
  m->categories_.resize(n);
  m->global_.resize(n);
  m->sources_.resize(n);
  for (uint32_t c = 0; c < n; ++c) {
    uint32_t successors = 0;
    Source& s = m->sources_[c];
    if (!in.String(&m->categories_[c]) || !in.F64(&m->global_[c]) || !in.U64(&s.total) ||
        !in.Count(8, &successors)) {
      return bad("payload ends inside the categories");
    }
    if (!(m->global_[c] >= 0 && m->global_[c] <= 1)) return bad("bad global probability");
    s.successors.resize(successors);
    uint64_t sum = 0;
    for (Successor& succ : s.successors) {
      if (!in.U32(&succ.category) || !in.U32(&succ.count)) return bad("payload ends in successors");
      sum += succ.count;
    }
    if (sum > s.total) return bad("successor counts exceed the source total");
  }
  if (!in.done()) return bad("unexpected bytes after the categories");
  for (uint32_t c = 0; c < n; ++c) {
    for (const Successor& s : m->sources_[c].successors) {
      if (s.category >= n) return bad("successor category out of range");
    }
    if (!m->index_.emplace(m->categories_[c], c).second) return bad("duplicate category name");
  }
  std::vector<uint32_t> order(n);
  for (uint32_t c = 0; c < n; ++c) order[c] = c;
  const size_t top = std::min<size_t>(kGlobalCandidates, n);
  std::partial_sort(order.begin(), order.begin() + top, order.end(), [&](uint32_t a, uint32_t b) {
    return m->global_[a] != m->global_[b] ? m->global_[a] > m->global_[b]
                                          : m->categories_[a] < m->categories_[b];
  });
  m->global_top_.assign(order.begin(), order.begin() + top);
  return std::shared_ptr<const NextCategoryModel>(std::move(m));
}

}  // namespace persona
