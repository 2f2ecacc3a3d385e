#include "predict/segment_model.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/json_writer.h"
#include "common/model_artifact.h"
#include "common/time_util.h"

namespace persona {
namespace {

constexpr std::array<std::string_view, SegmentObservation::kBaseFeatures> kBaseNames = {
    "monetary",    "orders",   "days_since_purchase",
    "events_30d",  "sessions", "events_per_session",
    "price_index", "cart_rate"};
// Features stored as log1p(x): shown as expm1 in human units.
constexpr std::array<bool, SegmentObservation::kBaseFeatures> kLogScaled = {
    true, true, false, true, true, true, false, false};
constexpr double kRecencyCapDays = 30;
constexpr char kSharePrefix[] = "share:";

// The words a centroid coordinate earns when it lies this many standard deviations from the
// training mean; closer than that the segment is "average" on it and says nothing.
constexpr double kDescribeZ = 0.5;
struct Wording {
  size_t feature;
  std::string_view high, low;
};
constexpr Wording kWording[] = {
    {0, "high spend", "low spend"},
    {3, "high frequency", "low frequency"},
    {1, "many orders", "few orders"},
    {2, "lapsed buyers", "recent buyers"},
    {4, "many sessions", "few sessions"},
    {5, "long sessions", "short sessions"},
    {6, "premium", "budget"},
    {7, "cart-heavy", "rarely carts"},
};

void FillBase(const Profile& p, std::span<double> out) {
  const int64_t now = p.last_seen_ms();
  out[0] = std::log1p(std::max(0.0, p.monetary()));
  out[1] = std::log1p(static_cast<double>(p.orders()));
  double days = kRecencyCapDays;
  if (p.last_purchase_ms() > 0) {
    days = std::min(kRecencyCapDays,
                    static_cast<double>(std::max<int64_t>(0, now - p.last_purchase_ms())) /
                        static_cast<double>(kDayMs));
  }
  out[2] = days;
  out[3] = std::log1p(static_cast<double>(p.Window(now, 30).events()));
  out[4] = std::log1p(static_cast<double>(p.sessions().count()));
  const double per_session = p.avg_session_events();
  out[5] = std::log1p(std::isfinite(per_session) ? per_session : 0.0);
  const double price = p.price_index();
  out[6] = std::isfinite(price) ? price : 0.5;
  const double cart = p.cart_rate();
  out[7] = std::isfinite(cart) ? cart : 0.0;
}

// ---- payload encoding (docs/model_format.md); model_artifact.h wraps it in the envelope.
constexpr char kKind[] = "segments";
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
  // A count of items that each take at least `min_bytes`: refuses counts the bytes cannot hold.
  bool Count(size_t min_bytes, uint32_t* n) { return U32(n) && *n <= rest_.size() / min_bytes; }
  bool done() const { return rest_.empty(); }

 private:
  std::string_view rest_;
};

std::string VersionNow() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "segments-%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace

SegmentObservation ObserveSegmentInputs(const Profile& profile, const ProfileContext& ctx) {
  SegmentObservation o;
  FillBase(profile, o.base);
  // Shares are ratios of anchor-relative scores: the decay factor to any `now` cancels out.
  absl::flat_hash_map<std::string_view, double> top;
  double total = 0;
  for (const InterestTable::Entry& e : profile.interests(InterestKind::kCategory).entries()) {
    const std::string_view key = ctx.pool.Get(e.code());
    if (key.find('.') != std::string_view::npos) continue;  // not a top-level category
    top[key] += e.score;
    total += e.score;
  }
  if (total > 0) {
    for (const auto& [key, score] : top) {
      if (score > 0) o.top_level_shares.emplace_back(std::string(key), score / total);
    }
    std::sort(o.top_level_shares.begin(), o.top_level_shares.end());
  }
  return o;
}

void SegmentModel::Features(const SegmentObservation& o, std::span<double> out) const {
  for (size_t j = 0; j < SegmentObservation::kBaseFeatures; ++j) out[j] = o.base[j];
  for (size_t m = 0; m < top_categories_.size(); ++m) {
    double share = 0;
    for (const auto& [name, s] : o.top_level_shares) {
      if (name == top_categories_[m]) share = s;
    }
    out[SegmentObservation::kBaseFeatures + m] = share;
  }
  for (size_t j = 0; j < dim(); ++j) out[j] = (out[j] - mean_[j]) / stddev_[j];
}

void SegmentModel::Features(const Profile& profile, const ProfileContext& ctx,
                            std::span<double> out) const {
  constexpr size_t kBase = SegmentObservation::kBaseFeatures;
  FillBase(profile, out.first(kBase));
  const size_t m_count = top_categories_.size();
  for (size_t m = 0; m < m_count; ++m) out[kBase + m] = 0;
  double total = 0;
  for (const InterestTable::Entry& e : profile.interests(InterestKind::kCategory).entries()) {
    const std::string_view key = ctx.pool.Get(e.code());
    if (key.find('.') != std::string_view::npos) continue;
    total += e.score;
    for (size_t m = 0; m < m_count; ++m) {
      if (key == top_categories_[m]) {
        out[kBase + m] += e.score;
        break;
      }
    }
  }
  for (size_t m = 0; m < m_count; ++m) out[kBase + m] = total > 0 ? out[kBase + m] / total : 0;
  for (size_t j = 0; j < dim(); ++j) out[j] = (out[j] - mean_[j]) / stddev_[j];
}

int SegmentModel::Assign(const Profile& profile, const ProfileContext& ctx) const {
  std::array<double, kMaxFeatures> features;
  const std::span<double> x(features.data(), dim());
  Features(profile, ctx, x);
  return NearestCentroid(centroids_, dim(), x);
}

absl::StatusOr<SegmentModel> SegmentModel::Train(std::span<const SegmentObservation> observations,
                                                 const SegmentTrainOptions& options) {
  if (options.top_categories > kMaxTopCategories) {
    return absl::InvalidArgumentError(absl::StrCat(
        "at most ", kMaxTopCategories, " top categories, got ", options.top_categories));
  }
  if (options.k_min < 2 || options.k_min > options.k_max) {
    return absl::InvalidArgumentError(absl::StrCat("k range must satisfy 2 <= k_min <= k_max, got ",
                                                   options.k_min, "..", options.k_max));
  }
  if (observations.size() < static_cast<size_t>(options.k_min)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "segments need at least k_min = ", options.k_min, " profiles, got ", observations.size()));
  }
  SegmentModel model;
  // The most common top-level categories by summed share (a user's attention, not their events,
  // so one heavy user does not make a category "common").
  absl::flat_hash_map<std::string, double> popularity;
  for (const SegmentObservation& o : observations) {
    for (const auto& [name, share] : o.top_level_shares) popularity[name] += share;
  }
  std::vector<std::pair<std::string, double>> ranked(popularity.begin(), popularity.end());
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  for (size_t m = 0; m < std::min(options.top_categories, ranked.size()); ++m) {
    model.top_categories_.push_back(ranked[m].first);
  }
  for (std::string_view name : kBaseNames) model.names_.emplace_back(name);
  for (const std::string& c : model.top_categories_) {
    model.names_.push_back(absl::StrCat(kSharePrefix, c));
  }

  const size_t dim = model.dim();
  const size_t n = observations.size();
  model.mean_.assign(dim, 0.0);
  model.stddev_.assign(dim, 1.0);
  std::vector<double> points(n * dim);
  for (size_t i = 0; i < n; ++i) model.Features(observations[i], {&points[i * dim], dim});
  // Features() standardised with mean 0 / std 1, i.e. returned raw values: now fit the scaler.
  std::vector<double> sum(dim, 0.0), sum_sq(dim, 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < dim; ++j) sum[j] += points[i * dim + j];
  }
  for (size_t j = 0; j < dim; ++j) model.mean_[j] = sum[j] / static_cast<double>(n);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < dim; ++j) {
      const double d = points[i * dim + j] - model.mean_[j];
      sum_sq[j] += d * d;
    }
  }
  for (size_t j = 0; j < dim; ++j) {
    const double sd = std::sqrt(sum_sq[j] / static_cast<double>(n));
    // A constant feature (taobao has no prices) carries no distance: keep it at 0 after scaling.
    model.stddev_[j] = sd > 1e-12 ? sd : 1.0;
    for (size_t i = 0; i < n; ++i) {
      points[i * dim + j] = (points[i * dim + j] - model.mean_[j]) / model.stddev_[j];
    }
  }

  KMeansOptions km;
  km.seed = options.seed;
  km.restarts = options.restarts;
  auto choice = ChooseK(points, dim, options.k_min, options.k_max, km, options.silhouette_sample);
  if (!choice.ok()) return choice.status();
  model.centroids_ = std::move(choice->best.centroids);
  model.silhouette_ = choice->silhouette;
  model.silhouette_by_k_ = std::move(choice->silhouettes);
  model.Describe(choice->best.sizes);
  model.version_ = VersionNow();

  JsonWriter w;
  w.BeginObject();
  w.Key("model").String("segments");
  w.Key("data_source").String(options.data_source);
  w.Key("profiles").Uint(n);
  w.Key("k").Int(static_cast<int64_t>(model.segments_.size()));
  w.Key("k_min").Int(options.k_min);
  w.Key("k_max").Int(options.k_max);
  w.Key("seed").Uint(options.seed);
  w.Key("restarts").Int(options.restarts);
  w.Key("silhouette_sample").Uint(options.silhouette_sample);
  w.Key("silhouette").Double(model.silhouette_);
  w.Key("silhouette_by_k").BeginObject();
  for (const auto& [k, s] : model.silhouette_by_k_) w.Key(std::to_string(k)).Double(s);
  w.EndObject();
  w.Key("trained_at")
      .String(FormatIsoTime(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count()));
  w.EndObject();
  model.metadata_json_ = w.Take();
  return model;
}

// Descriptions and human-unit centroids from the standardised centroids.
void SegmentModel::Describe(const std::vector<size_t>& sizes) {
  const size_t dim = this->dim();
  const size_t k = centroids_.size() / dim;
  segments_.clear();
  for (size_t c = 0; c < k; ++c) {
    const double* z = &centroids_[c * dim];
    Segment s;
    s.id = static_cast<int>(c);
    s.train_size = c < sizes.size() ? sizes[c] : 0;
    for (size_t j = 0; j < dim; ++j) {
      double value = mean_[j] + z[j] * stddev_[j];
      if (j < kLogScaled.size() && kLogScaled[j]) value = std::max(0.0, std::expm1(value));
      s.centroid.emplace_back(names_[j], value);
    }
    // Spend and frequency lead when notable; the rest by how far they stand out; at most three
    // behaviour terms, then the category that stands out most.
    std::vector<std::pair<double, std::string_view>> terms;
    for (size_t w = 0; w < std::size(kWording); ++w) {
      const double zj = z[kWording[w].feature];
      if (std::abs(zj) < kDescribeZ) continue;
      const double rank = (w < 2 ? 100.0 : 0.0) + std::abs(zj);
      terms.emplace_back(rank, zj > 0 ? kWording[w].high : kWording[w].low);
    }
    std::stable_sort(terms.begin(), terms.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    if (terms.size() > 3) terms.resize(3);
    for (const auto& [rank, word] : terms) {
      if (!s.description.empty()) s.description += ", ";
      s.description += word;
    }
    size_t best_category = dim;
    for (size_t j = SegmentObservation::kBaseFeatures; j < dim; ++j) {
      if (z[j] >= kDescribeZ && (best_category == dim || z[j] > z[best_category])) {
        best_category = j;
      }
    }
    if (best_category < dim) {
      if (!s.description.empty()) s.description += ", ";
      const std::string& name = top_categories_[best_category - SegmentObservation::kBaseFeatures];
      // A bare id ("4801426", taobao) reads as a number unless it says what it is.
      const bool numeric =
          std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
      s.description += numeric ? "category " + name : name;
    }
    if (s.description.empty()) s.description = "average";
    segments_.push_back(std::move(s));
  }
}

absl::Status SegmentModel::Save(const std::string& path) const {
  std::string payload;
  PutString(&payload, kKind);
  PutU32(&payload, kLayoutVersion);
  PutString(&payload, version_);
  PutString(&payload, metadata_json_);
  PutF64(&payload, silhouette_);
  PutU32(&payload, static_cast<uint32_t>(silhouette_by_k_.size()));
  for (const auto& [k, s] : silhouette_by_k_) {
    PutU32(&payload, static_cast<uint32_t>(k));
    PutF64(&payload, s);
  }
  PutU32(&payload, static_cast<uint32_t>(top_categories_.size()));
  for (const std::string& c : top_categories_) PutString(&payload, c);
  PutU32(&payload, static_cast<uint32_t>(dim()));
  for (size_t j = 0; j < dim(); ++j) {
    PutString(&payload, names_[j]);
    PutF64(&payload, mean_[j]);
    PutF64(&payload, stddev_[j]);
  }
  PutU32(&payload, static_cast<uint32_t>(segments_.size()));
  for (size_t c = 0; c < segments_.size(); ++c) {
    PutString(&payload, segments_[c].description);
    PutU64(&payload, segments_[c].train_size);
    for (size_t j = 0; j < dim(); ++j) PutF64(&payload, centroids_[c * dim() + j]);
  }
  return WriteModelArtifact(path, payload);
}

absl::StatusOr<std::shared_ptr<const SegmentModel>> SegmentModel::Load(const std::string& path) {
  auto payload = ReadModelArtifact(path);
  if (!payload.ok()) return payload.status();
  auto bad = [&path](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("segment model ", path, ": ", what));
  };

  // The checksum matched: a failure below is a writer bug or a foreign layout.
  Reader in(*payload);
  std::string kind;
  uint32_t layout = 0;
  if (!in.String(&kind) || kind != kKind) return bad(absl::StrCat("model kind is not ", kKind));
  if (!in.U32(&layout) || layout != kLayoutVersion) {
    return absl::InvalidArgumentError(absl::StrCat("segment model ", path, ": layout version ",
                                                   layout, " is not supported (this build reads ",
                                                   kLayoutVersion, ")"));
  }
  std::shared_ptr<SegmentModel> m(new SegmentModel());
  uint32_t tried = 0, top = 0, dim = 0, k = 0;
  if (!in.String(&m->version_) || !in.String(&m->metadata_json_) || !in.F64(&m->silhouette_) ||
      !in.Count(12, &tried)) {
    return bad("payload ends inside the header fields");
  }
  for (uint32_t i = 0; i < tried; ++i) {
    uint32_t kk = 0;
    double s = 0;
    if (!in.U32(&kk) || !in.F64(&s)) return bad("payload ends inside the silhouettes");
    m->silhouette_by_k_.emplace_back(static_cast<int>(kk), s);
  }
  if (!in.Count(4, &top) || top > kMaxTopCategories) return bad("bad top-category count");
  m->top_categories_.resize(top);
  for (std::string& c : m->top_categories_) {
    if (!in.String(&c)) return bad("payload ends inside the top categories");
  }
  if (!in.Count(20, &dim) || dim != SegmentObservation::kBaseFeatures + top) {
    return bad(absl::StrCat("feature count ", dim, " does not match ", top, " top categories"));
  }
  m->names_.resize(dim);
  m->mean_.resize(dim);
  m->stddev_.resize(dim);
  for (uint32_t j = 0; j < dim; ++j) {
    if (!in.String(&m->names_[j]) || !in.F64(&m->mean_[j]) || !in.F64(&m->stddev_[j])) {
      return bad("payload ends inside the feature scaler");
    }
    const std::string expected =
        j < SegmentObservation::kBaseFeatures
            ? std::string(kBaseNames[j])
            : absl::StrCat(kSharePrefix, m->top_categories_[j - kBaseNames.size()]);
    if (m->names_[j] != expected) {
      return bad(absl::StrCat("feature ", j, " is '", m->names_[j], "', this build computes '",
                              expected, "'"));
    }
    if (!std::isfinite(m->mean_[j]) || !(m->stddev_[j] > 0) || !std::isfinite(m->stddev_[j])) {
      return bad(absl::StrCat("feature '", m->names_[j], "' has a bad mean or deviation"));
    }
  }
  if (!in.Count(12 + 8 * static_cast<size_t>(dim), &k) || k < 1) return bad("bad segment count");
  m->centroids_.resize(static_cast<size_t>(k) * dim);
  std::vector<std::string> descriptions(k);
  std::vector<size_t> sizes(k);
  for (uint32_t c = 0; c < k; ++c) {
    uint64_t size = 0;
    if (!in.String(&descriptions[c]) || !in.U64(&size)) return bad("payload ends inside segments");
    sizes[c] = size;
    for (uint32_t j = 0; j < dim; ++j) {
      double& v = m->centroids_[static_cast<size_t>(c) * dim + j];
      if (!in.F64(&v) || !std::isfinite(v)) return bad("bad centroid value");
    }
  }
  if (!in.done()) return bad("unexpected bytes after the segments");
  m->Describe(sizes);
  // Keep the descriptions as trained: a later build may word centroids differently.
  for (uint32_t c = 0; c < k; ++c) m->segments_[c].description = std::move(descriptions[c]);
  return std::shared_ptr<const SegmentModel>(std::move(m));
}

}  // namespace persona
