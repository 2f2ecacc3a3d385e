#include "predict/predictor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "common/time_util.h"
#include "common/varint.h"
#include "predict/profile_vector.h"
#include "profile/query_tokenizer.h"
#include "recommend/item_catalog.h"
#include "recommend/recommender.h"

namespace persona {
namespace {

// The newest file with extension `ext` in `dir` ("" when none). Versions are UTC timestamps, so
// the lexicographically largest name is the newest.
std::string NewestArtifact(const std::string& dir, std::string_view ext) {
  std::error_code ec;
  std::string newest;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ext || !entry.is_regular_file(ec)) continue;
    if (entry.path().string() > newest) newest = entry.path().string();
  }
  return newest;
}

// Loads the newest artifact into `slot` when it differs from the one in service. Returns the
// refusal message, or "" on success / nothing to load.
template <typename Model, typename Loader>
std::string LoadNewest(const std::string& dir, std::string_view ext, std::string* current_path,
                       std::atomic<std::shared_ptr<const Model>>* slot, Loader load) {
  const std::string newest = NewestArtifact(dir, ext);
  if (newest.empty() || newest == *current_path) return "";
  auto loaded = load(newest);
  if (!loaded.ok()) return "model " + newest + ": " + std::string(loaded.status().message());
  slot->store(*loaded);
  *current_path = newest;
  return "";
}

void WriteProbability(JsonWriter& w, std::string_view key, const GbdtModel* model,
                      std::span<const float> features) {
  w.Key(key);
  if (model == nullptr) {
    w.Null();
    return;
  }
  w.BeginObject();
  w.Key("probability").Double(model->Probability(features));
  w.Key("horizon_hours").Double(static_cast<double>(model->meta().horizon_ms) / 3'600'000.0);
  w.Key("model").String(model->meta().version);
  w.EndObject();
}

void WriteMetrics(JsonWriter& w, const std::vector<std::pair<std::string, double>>& metrics) {
  w.Key("metrics").BeginObject();
  for (const auto& [name, value] : metrics) {
    if (std::isfinite(value)) w.Key(name).Double(value);
  }
  w.EndObject();
}

}  // namespace

struct Predictor::PopulationScan {
  std::vector<uint64_t> segment_sizes;
  uint64_t profiles = 0;
  uint64_t unassigned = 0;
  uint64_t flagged[kAnomalyFlagCount] = {};
  int64_t at_ms = 0;
};

namespace {
CategoryDemandConfig ServingDemandConfig() {
  CategoryDemandConfig c;
  c.count_all = true;  // GET /v1/forecast without a category forecasts the whole shop
  return c;
}
}  // namespace

Predictor::Predictor(std::string data_dir, const Recommender* recommender)
    : data_dir_(std::move(data_dir)), recommender_(recommender) {
  OpenPartitions(1);  // replaced by the engine's count when it opens
  (void)Reload();
}

void Predictor::OpenPartitions(uint32_t partitions) {
  partitions_.clear();
  for (uint32_t i = 0; i < partitions; ++i)
    partitions_.push_back(std::make_unique<PartitionState>());
  demand_ = std::make_unique<CategoryDemand>(ServingDemandConfig(), partitions);
  keywords_ = std::make_unique<KeywordCategories>(KeywordCategoryOptions(), partitions);
}

void Predictor::OnProfileLoaded(uint32_t partition, std::string_view, const Profile& profile,
                                const ProfileContext&) {
  // The anomaly histograms are a function of the profiles: rebuilt from the loaded ones.
  partitions_[partition]->anomaly.Restore(AnomalyDetector::Snapshot(profile));
}

void Predictor::OnProfileErased(uint32_t partition, std::string_view user_id,
                                const Profile& profile, uint64_t) {
  partitions_[partition]->anomaly.Remove(AnomalyDetector::Snapshot(profile));
  keywords_->Forget(partition, user_id);
}

// State of one partition: the anomaly refresh schedule, the demand part and the keyword part, each
// length-prefixed.
namespace {
constexpr char kPredictorStateFormat = 1;
}  // namespace

void Predictor::SaveState(uint32_t partition, std::string* out) {
  out->push_back(kPredictorStateFormat);
  std::string part;
  partitions_[partition]->anomaly.SaveRefreshState(&part);
  AppendVarint64(out, part.size());
  out->append(part);
  part.clear();
  demand_->SavePart(partition, &part);
  AppendVarint64(out, part.size());
  out->append(part);
  part.clear();
  keywords_->SavePart(partition, &part);
  AppendVarint64(out, part.size());
  out->append(part);
}

absl::Status Predictor::LoadState(uint32_t partition, std::string_view in) {
  if (in.empty() || in[0] != kPredictorStateFormat) {
    return absl::DataLossError("corrupt predictor state (format)");
  }
  in.remove_prefix(1);
  std::string_view parts[3];
  for (std::string_view& part : parts) {
    uint64_t n;
    if (!ReadVarint64(&in, &n) || n > in.size()) {
      return absl::DataLossError("corrupt predictor state (lengths)");
    }
    part = in.substr(0, n);
    in.remove_prefix(n);
  }
  if (absl::Status s = partitions_[partition]->anomaly.LoadRefreshState(parts[0]); !s.ok()) {
    return s;
  }
  if (absl::Status s = demand_->LoadPart(partition, parts[1]); !s.ok()) return s;
  return keywords_->LoadPart(partition, parts[2]);
}

Predictor::~Predictor() = default;

absl::Status Predictor::Reload() {
  const std::string models = data_dir_ + "/models/";
  std::lock_guard<std::mutex> reload_lock(reload_mu_);
  ArtifactPaths& paths = paths_;
  std::vector<std::string> errors;
  auto note = [&](std::string e) {
    if (!e.empty()) errors.push_back(std::move(e));
  };
  // A tree model indexes features by position: one trained on another feature list would read
  // the wrong numbers, so it is refused.
  auto load_gbdt = [](const std::string& f) -> absl::StatusOr<std::shared_ptr<const GbdtModel>> {
    auto m = GbdtModel::Load(f);
    if (m.ok() && (*m)->meta().feature_names != ProfileVectorNames()) {
      return absl::InvalidArgumentError(
          "its feature list differs from this build's profile features (retrain it)");
    }
    return m;
  };
  note(LoadNewest(models + "propensity", ".pgbm", &paths.propensity, &propensity_, load_gbdt));
  note(LoadNewest(models + "churn", ".pgbm", &paths.churn, &churn_, load_gbdt));
  note(LoadNewest(models + "segments", ".pseg", &paths.segments, &segments_,
                  [](const std::string& f) { return SegmentModel::Load(f); }));
  note(LoadNewest(models + "next_category", ".pnc", &paths.next_category, &next_category_,
                  [](const std::string& f) { return NextCategoryModel::Load(f); }));
  note(LoadNewest(models + "sentiment", ".pst", &paths.sentiment, &sentiment_,
                  [](const std::string& f) { return SentimentModel::Load(f); }));
  {
    std::lock_guard<std::mutex> lock(mu_);
    errors_ = errors;
    scan_.reset();  // segment sizes change with the model
  }
  if (!errors.empty()) return absl::InvalidArgumentError(errors.front());
  return absl::OkStatus();
}

std::vector<std::string> Predictor::load_errors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return errors_;
}

// ---- update time
// ----------------------------------------------------------------------------------

void Predictor::BeforeApply(uint32_t partition, const Event&, const Profile& profile) {
  partitions_[partition]->before = AnomalyDetector::Snapshot(profile);
}

void Predictor::OnEvent(const AppliedEvent& applied) {
  const Event& e = applied.event;
  Profile& profile = applied.profile;
  PartitionState& part = *partitions_[applied.partition];
  const RateSnapshot after = AnomalyDetector::Snapshot(profile);
  part.anomaly.Update(part.before, after);
  const uint8_t flags = part.anomaly.Evaluate(after);
  if (flags != 0 && profile.anomaly_flags() == 0 && !applied.replay) {
    flagged_transitions_.fetch_add(1, std::memory_order_relaxed);
  }
  profile.set_anomaly_flags(flags);

  if (e.type == EventType::kReview) {
    double score = std::nan("");
    if (!e.text.empty()) {
      if (auto model = sentiment_.load()) score = model->Positive(e.text);
    }
    if (std::isnan(score) && e.rating >= 1 && e.rating <= 5) score = (e.rating - 1) / 4.0;
    if (!std::isnan(score)) {
      profile.AddReviewSentiment(score, e.category_key(), applied.ctx);
      reviews_scored_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // Stream-wide learners. Flagged users' events do not shape demand or keyword mappings.
  if (flags == 0) {
    demand_->Add(applied.partition, e);
    keywords_->Observe(applied.partition, e);
  }
}

void Predictor::OnProfileChanged(const ChangedProfile& changed) {
  if (auto model = segments_.load()) {
    changed.profile.set_segment(static_cast<int16_t>(model->Assign(changed.profile, changed.ctx)));
    segment_assignments_.fetch_add(1, std::memory_order_relaxed);
  }
}

// ---- read time
// ------------------------------------------------------------------------------------

void Predictor::WritePredictions(JsonWriter& w, const Profile& p, const ProfileContext& ctx,
                                 int64_t now_ms) const {
  w.BeginObject();
  WritePredictionMembers(w, p, ctx, now_ms);
  w.EndObject();
}

Predictor::Scores Predictor::Score(const Profile& p, const ProfileContext& ctx,
                                   int64_t now_ms) const {
  Scores out;
  const auto propensity = propensity_.load();
  const auto churn = churn_.load();
  if (!propensity && !churn) return out;
  std::vector<float> features(ProfileVectorNames().size());
  ExtractProfileVector(p, ctx, now_ms, features);
  if (propensity) out.propensity = propensity->Probability(features);
  if (churn) out.churn = churn->Probability(features);
  return out;
}

int Predictor::Segment(const Profile& p, const ProfileContext& ctx, int64_t now_ms) const {
  (void)now_ms;  // segment features depend on the profile alone
  const auto model = segments_.load();
  return model ? model->Assign(p, ctx) : -1;
}

void Predictor::WritePredictionMembers(JsonWriter& w, const Profile& p, const ProfileContext& ctx,
                                       int64_t now_ms) const {
  const auto propensity = propensity_.load();
  const auto churn = churn_.load();
  std::vector<float> features;
  if (propensity || churn) {
    features.resize(ProfileVectorNames().size());
    ExtractProfileVector(p, ctx, now_ms, features);
  }
  WriteProbability(w, "propensity", propensity.get(), features);
  WriteProbability(w, "churn", churn.get(), features);

  // Next categories: the categories of the user's recent items (through the recommender's
  // catalogue), oldest first with consecutive repeats folded, and the direct category interests.
  w.Key("next_categories").BeginArray();
  if (auto model = next_category_.load()) {
    std::vector<std::string_view> recent;
    if (recommender_ != nullptr) {
      const ItemCatalog& catalog = recommender_->catalog();
      // The last 20 entries, read from the newest end (a sequence keeps up to 200), then walked
      // oldest first; an item repeated in a row (view, cart, purchase) is looked up once.
      uint32_t codes[20];
      size_t n = 0;
      p.sequence().ForEachCodeNewestFirst([&](uint32_t code) {
        codes[n++] = code;
        return n < std::size(codes);
      });
      for (size_t i = n; i-- > 0;) {
        if (i + 1 < n && codes[i] == codes[i + 1]) continue;
        const uint32_t item = catalog.Find(ctx.pool.Get(codes[i]));
        if (item == ItemCatalog::kNone) continue;
        const uint32_t c = catalog.CategoryOf(item);
        if (c == ItemCatalog::kNone) continue;
        const std::string_view name = catalog.CategoryName(c);
        if (recent.empty() || recent.back() != name) recent.push_back(name);
      }
    }
    std::vector<ScoredInterest> interests =
        p.TopInterests(InterestKind::kCategory, ctx, now_ms, 64);
    std::erase_if(interests, [](const ScoredInterest& s) { return !s.direct; });
    for (const auto& [category, score] : model->Predict(recent, interests, 5)) {
      w.BeginObject();
      w.Key("category").String(category);
      w.Key("score").Double(score);
      w.EndObject();
    }
  }
  w.EndArray();

  // The segment is assigned at read time as well (~1 us): a profile not updated since the model
  // changed (or loaded from a checkpoint written before) still gets the current model's segment,
  // which equals what the next update would store (the assignment depends on the profile alone).
  w.Key("segment");
  const auto segments = segments_.load();
  const int segment = segments ? segments->Assign(p, ctx) : -1;
  if (segment >= 0 && static_cast<size_t>(segment) < segments->segments().size()) {
    w.BeginObject();
    w.Key("id").Int(segment);
    w.Key("description").String(segments->segments()[segment].description);
    w.Key("model").String(segments->version());
    w.EndObject();
  } else {
    w.Null();
  }
  w.Key("satisfaction");
  if (std::isfinite(p.satisfaction())) {
    w.Double(p.satisfaction());
  } else {
    w.Null();
  }
  w.Key("anomalies").BeginArray();
  for (int i = 0; i < kAnomalyFlagCount; ++i) {
    const uint8_t bit = static_cast<uint8_t>(1u << i);
    if (p.anomaly_flags() & bit) w.String(AnomalyFlagName(bit));
  }
  w.EndArray();
  w.Key("keyword_categories").BeginArray();
  for (const ScoredInterest& k : p.TopInterests(InterestKind::kKeyword, ctx, now_ms, 3)) {
    auto categories = keywords_->Categories(k.key, 3);
    if (categories.empty()) continue;
    w.BeginObject();
    w.Key("keyword").String(k.key);
    w.Key("categories").BeginArray();
    for (const auto& [category, prob] : categories) {
      w.BeginObject();
      w.Key("category").String(category);
      w.Key("p").Double(prob);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
}

std::optional<std::string> Predictor::PredictionsJson(std::string_view user_id) const {
  std::optional<std::string> out;
  if (engine_ == nullptr) return out;
  const int64_t now = engine_->NowMs();
  engine_->ReadProfile(user_id, [&](const Profile& p, const ProfileContext& ctx) {
    JsonWriter w;
    w.BeginObject();
    w.Key("user_id").String(user_id);
    w.Key("as_of").String(FormatIsoTime(now));
    w.Key("as_of_ms").Int(now);
    WritePredictionMembers(w, p, ctx, now);
    w.EndObject();
    out = w.Take();
  });
  return out;
}

std::shared_ptr<const Predictor::PopulationScan> Predictor::Scan() const {
  const int64_t now = WallClockMs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (scan_ && now - scan_at_ms_ < 10'000) return scan_;
  }
  auto scan = std::make_shared<PopulationScan>();
  const auto model = segments_.load();
  if (model) scan->segment_sizes.assign(model->segments().size(), 0);
  if (engine_ != nullptr)
    engine_->ForEachProfile([&](std::string_view, const Profile& p, const ProfileContext& ctx) {
      ++scan->profiles;
      const int s = model ? model->Assign(p, ctx) : -1;
      if (s >= 0 && static_cast<size_t>(s) < scan->segment_sizes.size()) {
        ++scan->segment_sizes[s];
      } else {
        ++scan->unassigned;
      }
      for (int i = 0; i < kAnomalyFlagCount; ++i) {
        if (p.anomaly_flags() & (1u << i)) ++scan->flagged[i];
      }
    });
  scan->at_ms = now;
  std::lock_guard<std::mutex> lock(mu_);
  scan_ = scan;
  scan_at_ms_ = now;
  return scan;
}

std::string Predictor::SegmentsJson() const {
  const auto model = segments_.load();
  const auto scan = Scan();
  JsonWriter w;
  w.BeginObject();
  w.Key("model");
  if (model) {
    w.String(model->version());
    w.Key("silhouette").Double(model->silhouette());
  } else {
    w.Null();
  }
  w.Key("profiles").Uint(scan->profiles);
  w.Key("unassigned").Uint(scan->unassigned);
  w.Key("segments").BeginArray();
  if (model) {
    const auto& segments = model->segments();
    for (size_t i = 0; i < segments.size(); ++i) {
      w.BeginObject();
      w.Key("id").Int(segments[i].id);
      w.Key("description").String(segments[i].description);
      w.Key("size").Uint(i < scan->segment_sizes.size() ? scan->segment_sizes[i] : 0);
      w.Key("train_size").Uint(segments[i].train_size);
      w.Key("centroid").BeginObject();
      for (const auto& [name, value] : segments[i].centroid) {
        if (std::isfinite(value)) w.Key(name).Double(value);
      }
      w.EndObject();
      w.EndObject();
    }
  }
  w.EndArray();
  w.EndObject();
  return w.Take();
}

absl::StatusOr<std::string> Predictor::ForecastJson(std::string_view category,
                                                    std::string_view period_name, int horizon,
                                                    std::string_view metric_name) const {
  DemandPeriod period;
  DemandMetric metric;
  if (!ParseDemandPeriod(period_name, &period)) {
    return absl::InvalidArgumentError("period: expected hour or day, got '" +
                                      std::string(period_name) + "'");
  }
  if (!ParseDemandMetric(metric_name, &metric)) {
    return absl::InvalidArgumentError("metric: expected events or purchases, got '" +
                                      std::string(metric_name) + "'");
  }
  auto f = demand_->Forecast(category, period, horizon, metric);
  if (!f.ok()) {
    if (absl::IsNotFound(f.status())) {
      return absl::NotFoundError(category.empty()
                                     ? "no events counted yet"
                                     : "no events in category '" + std::string(category) + "'");
    }
    return f.status();
  }
  JsonWriter w;
  w.BeginObject();
  w.Key("category");
  if (category.empty()) {
    w.Null();
  } else {
    w.String(category);
  }
  w.Key("period").String(DemandPeriodName(period));
  w.Key("metric").String(DemandMetricName(metric));
  w.Key("method").String(SmoothingMethodName(f->model.method));
  w.Key("history_buckets").Int(f->history_buckets);
  w.Key("points").BeginArray();
  for (const DemandPoint& p : f->points) {
    w.BeginObject();
    w.Key("start").String(FormatIsoTime(p.start_ms));
    w.Key("start_ms").Int(p.start_ms);
    w.Key("mean").Double(p.mean);
    w.Key("lo").Double(p.lo);
    w.Key("hi").Double(p.hi);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Take();
}

std::string Predictor::ModelsJson() const {
  JsonWriter w;
  w.BeginObject();
  w.Key("models").BeginArray();
  for (const auto& model : {propensity_.load(), churn_.load()}) {
    if (!model) continue;
    w.BeginObject();
    w.Key("name").String(model->meta().name);
    w.Key("version").String(model->meta().version);
    WriteMetrics(w, model->meta().metrics);
    w.Key("importance").BeginArray();
    for (const auto& [feature, gain] : model->meta().importance) {
      w.BeginObject();
      w.Key("feature").String(feature);
      w.Key("gain").Double(gain);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  if (auto m = segments_.load()) {
    w.BeginObject();
    w.Key("name").String("segments");
    w.Key("version").String(m->version());
    WriteMetrics(
        w, {{"silhouette", m->silhouette()}, {"k", static_cast<double>(m->segments().size())}});
    w.EndObject();
  }
  if (auto m = next_category_.load()) {
    w.BeginObject();
    w.Key("name").String("next_category");
    w.Key("version").String(m->version());
    WriteMetrics(w, m->metrics());
    w.EndObject();
  }
  if (auto m = sentiment_.load()) {
    w.BeginObject();
    w.Key("name").String("sentiment");
    w.Key("version").String(m->version());
    std::vector<std::pair<std::string, double>> metrics;
    for (const SentimentAccuracy& a : m->metrics().held_out) {
      metrics.emplace_back(a.corpus + "_" + a.split + "_accuracy", a.accuracy);
    }
    WriteMetrics(w, metrics);
    w.EndObject();
  }
  w.EndArray();
  w.Key("errors").BeginArray();
  for (const std::string& e : load_errors()) w.String(e);
  w.EndArray();
  w.EndObject();
  return w.Take();
}

Predictor::Counters Predictor::counters() const {
  Counters c;
  std::shared_ptr<const PopulationScan> scan;
  {
    std::lock_guard<std::mutex> lock(mu_);
    scan = scan_;
  }
  if (scan) {
    for (int i = 0; i < kAnomalyFlagCount; ++i) c.flagged_users[i] = scan->flagged[i];
    c.profiles_scanned = scan->profiles;
  }
  c.flagged_transitions = flagged_transitions_.load(std::memory_order_relaxed);
  c.reviews_scored = reviews_scored_.load(std::memory_order_relaxed);
  c.segment_assignments = segment_assignments_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace persona
