#include "recommend/recommender.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "common/hash.h"
#include "common/json_writer.h"
#include "common/varint.h"

namespace persona {
namespace {

// Reciprocal-rank fusion: an item at rank r (0-based) of a source adds weight / (kRrfOffset + r).
// The offset flattens the head so that a weaker source's first items cannot outrank the primary
// source's first items (weights 1, 1/2, 1/4 by position in the variant's source list).
constexpr double kRrfOffset = 20;
constexpr double kSourceWeights[] = {1.0, 0.5, 0.25};
// Candidates taken from each source before fusion and filters.
constexpr size_t kCandidateSlack = 50;
constexpr size_t kCategoryCandidates = 2000;

// The user's recent items, read from the live profile under its shard lock.
struct History {
  std::vector<std::string> recent;  // distinct, most recent first
  std::vector<std::string> purchased;
  std::vector<std::string> categories;  // top interest categories
};

struct Candidate {
  std::string item;
  double score;
  std::string because;
};

std::string HexId(uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[i] = kHex[v & 15];
  return s;
}

bool Contains(const std::vector<std::string>& sorted, std::string_view s) {
  return std::binary_search(sorted.begin(), sorted.end(), s);
}

}  // namespace

Recommender::Recommender(RecommendConfig config, std::string data_dir)
    : config_(std::move(config)),
      data_dir_(std::move(data_dir)),
      counters_(std::make_unique<VariantCounters[]>(config_.variants.size() + 1)) {
  OpenPartitions(1);  // replaced by the engine's count when it opens
  if (!config_.impressions_log.empty() && !data_dir_.empty()) {
    std::filesystem::path path = std::filesystem::path(data_dir_) / config_.impressions_log;
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    impressions_ = std::fopen(path.c_str(), "ae");
  }
}

Recommender::~Recommender() {
  Stop();
  if (impressions_ != nullptr) std::fclose(impressions_);
}

void Recommender::Stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stopping_.store(true);
  }
  stop_cv_.notify_all();
  if (watch_thread_.joinable()) watch_thread_.join();
  std::lock_guard<std::mutex> lock(impressions_mu_);
  if (impressions_ != nullptr) std::fflush(impressions_);
}

std::string Recommender::ModelDir() const {
  if (!config_.model_dir.empty()) return config_.model_dir;
  return (std::filesystem::path(data_dir_) / "models" / "sasrec").string();
}

// ---- event stream -------------------------------------------------------------------------------

void Recommender::OpenPartitions(uint32_t partitions) {
  trending_ = std::make_unique<Trending>(&catalog_, config_.trending, partitions);
  cf_ = std::make_unique<ItemCf>(config_.item_cf, partitions, &catalog_);
  code_to_item_.assign(partitions, {});
  items_of_.assign(partitions, {});
}

uint32_t Recommender::InternFor(uint32_t partition, std::string_view item,
                                std::string_view category) {
  const uint32_t id = catalog_.Intern(item, category);
  items_of_[partition].insert(id);
  return id;
}

void Recommender::OnEvent(const AppliedEvent& applied) {
  const Event& e = applied.event;
  const uint32_t partition = applied.partition;
  if (!e.rec_id.empty() && !applied.replay) Attribute(e);
  if (e.item_id.empty()) return;
  // Catalogue ids by the partition's pool code: one hash lookup in the pool (writer-only, no
  // lock) instead of a catalogue lookup under a shard lock for every event and history item.
  const ProfileContext& ctx = applied.ctx;
  std::vector<uint32_t>& cache = code_to_item_[partition];
  const auto item_of_code = [&](uint32_t code, std::string_view category) {
    if (code >= cache.size())
      cache.resize(std::max<size_t>(code + 1, cache.size() * 2), ItemCatalog::kNone);
    uint32_t& id = cache[code];
    if (id == ItemCatalog::kNone) {
      id = InternFor(partition, ctx.pool.Get(code), category);
    } else if (!category.empty()) {
      catalog_.NoteCategory(id, category);
    }
    return id;
  };
  const uint32_t current_code = ctx.pool.Find(e.item_id);
  const uint32_t item = current_code == StringPool::kNone
                            ? InternFor(partition, e.item_id, e.category_key())
                            : item_of_code(current_code, e.category_key());
  // Users flagged as anomalous (bots, scrapers) teach neither trending nor item-CF; their items
  // stay in the catalogue. The flags are set by the predictor, which runs before this operator.
  const Profile& profile = applied.profile;
  if (profile.anomaly_flags() != 0) {
    if (!applied.replay) flagged_events_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  trending_->Add(partition, item, e.type, e.ts_ms);
  const float weight = config_.cf_weights[static_cast<int>(e.type)];
  if (weight <= 0) return;

  // The user's previous distinct items, most recent first: within the last window+1 runs of the
  // sequence (which ends with this event; repeats in a row count once), the items other than
  // this one. Read from the newest end: only the entries in the window are decoded.
  const uint32_t window = std::min<uint32_t>(config_.item_cf.window, 16);
  uint32_t previous[17];
  uint32_t n = 0, runs = 0;
  uint32_t last_code = StringPool::kNone;
  profile.sequence().ForEachCodeNewestFirst([&](uint32_t code) {
    if (code == last_code) return true;
    last_code = code;
    if (code != current_code) previous[n++] = item_of_code(code, {});
    return ++runs < window + 1 && n < window;
  });
  if (n > 0) cf_->Add(partition, item, std::span<const uint32_t>(previous, n), weight);
}

// State of one partition: the catalogue entries its parts may refer to (item, category), then
// the trending part and the item-CF part, each length-prefixed.
namespace {
constexpr char kStateFormat = 1;
}  // namespace

void Recommender::SaveState(uint32_t partition, std::string* out) {
  out->push_back(kStateFormat);
  std::vector<uint32_t> ids(items_of_[partition].begin(), items_of_[partition].end());
  // By item string, so that equal states encode to equal bytes whatever the catalogue ids.
  std::sort(ids.begin(), ids.end(),
            [&](uint32_t a, uint32_t b) { return catalog_.Item(a) < catalog_.Item(b); });
  AppendVarint64(out, ids.size());
  for (uint32_t id : ids) {
    const std::string_view item = catalog_.Item(id);
    const uint32_t c = catalog_.CategoryOf(id);
    const std::string_view category = c == ItemCatalog::kNone ? "" : catalog_.CategoryName(c);
    AppendVarint64(out, item.size());
    out->append(item);
    AppendVarint64(out, category.size());
    out->append(category);
  }
  std::string part;
  trending_->SavePart(partition, &part);
  AppendVarint64(out, part.size());
  out->append(part);
  part.clear();
  cf_->SavePart(partition, &part);
  AppendVarint64(out, part.size());
  out->append(part);
}

absl::Status Recommender::LoadState(uint32_t partition, std::string_view in) {
  auto corrupt = [](std::string_view what) {
    return absl::DataLossError("corrupt recommender state (" + std::string(what) + ")");
  };
  if (in.empty() || in[0] != kStateFormat) return corrupt("format");
  in.remove_prefix(1);
  uint64_t n;
  if (!ReadVarint64(&in, &n) || n > in.size()) return corrupt("items");
  // The state replaces the partition's (a foreign partition's shared state, then its own again).
  items_of_[partition].clear();
  code_to_item_[partition].clear();  // its ids are in items_of_ (OnEvent's cache)
  auto read_string = [&](std::string_view* s) {
    uint64_t len;
    if (!ReadVarint64(&in, &len) || len > in.size()) return false;
    *s = in.substr(0, len);
    in.remove_prefix(len);
    return true;
  };
  for (uint64_t i = 0; i < n; ++i) {
    std::string_view item, category;
    if (!read_string(&item) || !read_string(&category)) return corrupt("items");
    InternFor(partition, item, category);
  }
  std::string_view part;
  if (!read_string(&part)) return corrupt("trending");
  // A trending part saved under another half-life cannot be converted: the configured decay
  // wins and trending starts over for this partition (the operator of a config change wants it).
  if (absl::Status s = trending_->LoadPart(partition, part);
      !s.ok() && !absl::IsFailedPrecondition(s)) {
    return s;
  }
  if (!read_string(&part)) return corrupt("item-CF");
  if (absl::Status s = cf_->LoadPart(partition, part); !s.ok()) return s;
  return absl::OkStatus();
}

void Recommender::OnRecovered() {
  trending_->Invalidate();
  warmed_up_.store(true, std::memory_order_release);
}

void Recommender::Attribute(const Event& e) {
  const size_t dot = e.rec_id.find('.');
  const std::string_view name = e.rec_id.substr(0, dot == std::string_view::npos ? 0 : dot);
  size_t v = config_.variants.size();  // unknown variant
  for (size_t i = 0; i < config_.variants.size(); ++i) {
    if (config_.variants[i].name == name) v = i;
  }
  VariantCounters& c = counters_[v];
  switch (e.type) {
    case EventType::kView:
    case EventType::kClick:
      c.clicks.fetch_add(1, std::memory_order_relaxed);
      break;
    case EventType::kCart:
      c.carts.fetch_add(1, std::memory_order_relaxed);
      break;
    case EventType::kPurchase: {
      c.purchases.fetch_add(1, std::memory_order_relaxed);
      if (e.has_price() && e.price > 0) {
        const double amount = e.price * std::max<int32_t>(e.quantity, 1);
        c.revenue_cents.fetch_add(static_cast<uint64_t>(std::llround(amount * 100)),
                                  std::memory_order_relaxed);
      }
      break;
    }
    default:
      break;
  }
}

void Recommender::Start(Engine* engine, std::function<void(std::string_view)> log) {
  engine_ = engine;
  auto loaded = ReloadModel();
  if (log) {
    if (!loaded.ok()) {
      log("recommend: model not loaded: " + std::string(loaded.status().message()));
    } else if (loaded->empty()) {
      log("recommend: no SASRec model in " + ModelDir() + " (serving item-CF + trending)");
    } else {
      log("recommend: SASRec model " + *loaded);
    }
  }
  watch_thread_ = std::thread([this, log] {
    std::string last_error;
    std::unique_lock<std::mutex> lock(stop_mu_);
    while (!stopping_.load()) {
      const auto wait = config_.model_poll_seconds > 0
                            ? std::chrono::seconds(config_.model_poll_seconds)
                            : std::chrono::seconds(1);
      stop_cv_.wait_for(lock, wait, [&] { return stopping_.load(); });
      if (stopping_.load()) break;
      lock.unlock();
      {
        std::lock_guard<std::mutex> flush(impressions_mu_);
        if (impressions_ != nullptr) std::fflush(impressions_);
      }
      if (config_.model_poll_seconds > 0) {
        const std::string before = model() ? model()->version() : "";
        auto v = ReloadModel();
        if (!v.ok() && log && std::string(v.status().message()) != last_error) {
          last_error = std::string(v.status().message());
          log("recommend: " + last_error);
        } else if (v.ok() && *v != before && log) {
          log("recommend: swapped to SASRec model " + *v);
        }
      }
      lock.lock();
    }
  });
}

// ---- models
// ---------------------------------------------------------------------------------------

absl::StatusOr<std::string> Recommender::ReloadModel() {
  std::lock_guard<std::mutex> lock(reload_mu_);
  const std::string dir = ModelDir();
  std::error_code ec;
  std::string newest;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".psm" || !entry.is_regular_file(ec)) continue;
    if (entry.path().string() > newest) newest = entry.path().string();
  }
  auto current = model_.load();
  if (newest.empty() || newest == model_path_) return current ? current->version() : "";
  auto loaded = SasRecModel::Load(newest);
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(),
                        "model " + newest + ": " + std::string(loaded.status().message()));
  }
  model_.store(*loaded);
  model_path_ = newest;
  return (*loaded)->version();
}

void Recommender::SetModel(std::shared_ptr<const SasRecModel> model) {
  std::lock_guard<std::mutex> lock(reload_mu_);
  model_.store(std::move(model));
  model_path_.clear();
}

// ---- requests
// -------------------------------------------------------------------------------------

size_t Recommender::VariantOf(std::string_view user) const {
  uint64_t total = 0;
  for (const RecVariant& v : config_.variants) total += v.weight;
  std::string key = config_.experiment;
  key.push_back('/');
  key.append(user);
  uint64_t point = Hash64(key) % std::max<uint64_t>(total, 1);
  for (size_t i = 0; i < config_.variants.size(); ++i) {
    if (point < config_.variants[i].weight) return i;
    point -= config_.variants[i].weight;
  }
  return 0;
}

absl::StatusOr<Recommender::Response> Recommender::Recommend(const Request& request) {
  if (request.k == 0 || request.k > config_.max_k) {
    return absl::InvalidArgumentError("k must be in [1, " + std::to_string(config_.max_k) + "]");
  }
  std::vector<RecSource> sources;
  Response response;
  const size_t variant = VariantOf(request.user);
  response.variant = config_.variants[variant].name;
  if (!request.source.empty()) {
    RecSource s;
    if (!ParseRecSource(request.source, &s)) {
      return absl::InvalidArgumentError("source must be one of sasrec, item_cf, trending");
    }
    sources.push_back(s);
  } else {
    sources = config_.variants[variant].sources;
  }
  uint32_t category = ItemCatalog::kNone;
  if (!request.category.empty()) {
    category = catalog_.FindCategory(request.category);
    if (category == ItemCatalog::kNone) {
      return absl::NotFoundError("unknown category '" + std::string(request.category) + "'");
    }
  }
  if (engine_ == nullptr) return absl::FailedPreconditionError("the recommender is not started");
  const int64_t now = engine_->NowMs();

  History h;
  response.known_user =
      engine_->ReadProfile(request.user, [&](const Profile& p, const ProfileContext& ctx) {
        std::vector<ItemSequence::Item> seq;
        seq.reserve(p.sequence().size());
        p.sequence().ForEach([&](const ItemSequence::Item& it) { seq.push_back(it); });
        std::vector<uint32_t> seen;
        for (auto it = seq.rbegin(); it != seq.rend(); ++it) {
          if (it->type == EventType::kPurchase) h.purchased.emplace_back(ctx.pool.Get(it->code));
          if (h.recent.size() >= config_.history) continue;
          if (std::find(seen.begin(), seen.end(), it->code) != seen.end()) continue;
          seen.push_back(it->code);
          h.recent.emplace_back(ctx.pool.Get(it->code));
        }
        for (const ScoredInterest& s : p.TopInterests(InterestKind::kCategory, ctx, now, 3)) {
          h.categories.emplace_back(s.key);
        }
      });
  std::sort(h.purchased.begin(), h.purchased.end());
  h.purchased.erase(std::unique(h.purchased.begin(), h.purchased.end()), h.purchased.end());
  response.cold = h.recent.empty();

  const auto excluded = [&](std::string_view item) {
    return config_.exclude_purchased && Contains(h.purchased, item);
  };
  const auto in_category = [&](uint32_t item_id) {
    if (category == ItemCatalog::kNone) return true;
    if (item_id == ItemCatalog::kNone) return false;
    const uint32_t c = catalog_.CategoryOf(item_id);
    if (c == ItemCatalog::kNone) return false;
    for (uint32_t a : catalog_.CategoryLineage(c)) {
      if (a == category) return true;
    }
    return false;
  };
  const size_t want = request.k + kCandidateSlack;

  // Each source proposes a ranked candidate list.
  std::vector<std::pair<RecSource, std::vector<Candidate>>> lists;
  for (RecSource source : sources) {
    std::vector<Candidate> list;
    switch (source) {
      case RecSource::kSasRec: {
        auto model = model_.load();
        if (!model || h.recent.empty()) break;
        std::vector<uint32_t> seq;  // oldest first, as the model reads it
        for (auto it = h.recent.rbegin(); it != h.recent.rend(); ++it) {
          if (uint32_t idx = model->IndexOf(*it); idx != 0) seq.push_back(idx);
        }
        if (seq.empty()) break;
        thread_local std::vector<float> scores;
        scores.resize(model->num_items() + 1);
        model->ScoreAll(seq, scores);
        const size_t depth = std::min<size_t>(
            category == ItemCatalog::kNone ? want + h.purchased.size() : kCategoryCandidates,
            model->num_items());
        std::vector<uint32_t> order(model->num_items());
        for (uint32_t i = 0; i < order.size(); ++i) order[i] = i + 1;
        std::partial_sort(order.begin(), order.begin() + depth, order.end(),
                          [&](uint32_t a, uint32_t b) { return scores[a] > scores[b]; });
        response.model_version = model->version();
        for (size_t i = 0; i < depth && list.size() < want; ++i) {
          const std::string_view name = model->ItemAt(order[i]);
          if (excluded(name)) continue;
          if (category != ItemCatalog::kNone && !in_category(catalog_.Find(name))) continue;
          list.push_back({std::string(name), scores[order[i]], {}});
        }
        break;
      }
      case RecSource::kItemCf: {
        std::vector<uint32_t> hist;
        for (const std::string& s : h.recent) {
          if (uint32_t id = catalog_.Find(s); id != ItemCatalog::kNone) hist.push_back(id);
        }
        if (hist.empty()) break;
        std::vector<uint32_t> exclude;
        if (config_.exclude_purchased) {
          for (const std::string& s : h.purchased) {
            if (uint32_t id = catalog_.Find(s); id != ItemCatalog::kNone) exclude.push_back(id);
          }
          std::sort(exclude.begin(), exclude.end());
        }
        const size_t depth = category == ItemCatalog::kNone ? want : kCategoryCandidates;
        for (const ItemCf::Scored& s : cf_->Recommend(hist, depth, exclude)) {
          if (!in_category(s.item)) continue;
          list.push_back(
              {std::string(catalog_.Item(s.item)), s.score, std::string(catalog_.Item(s.because))});
          if (list.size() >= want) break;
        }
        break;
      }
      case RecSource::kTrending: {
        // Cold users without a category filter get their own top categories first.
        std::vector<uint32_t> nodes;
        if (category != ItemCatalog::kNone) {
          nodes.push_back(category);
        } else {
          for (const std::string& c : h.categories) {
            if (uint32_t node = catalog_.FindCategory(c); node != ItemCatalog::kNone) {
              nodes.push_back(node);
            }
          }
          nodes.push_back(ItemCatalog::kNone);
        }
        std::vector<std::vector<Trending::Scored>> tops;
        for (uint32_t node : nodes)
          tops.push_back(trending_->Top(want + h.purchased.size(), node, now));
        // Interleave the lists (user's categories first), skipping repeats.
        std::vector<uint32_t> taken;
        for (size_t rank = 0; list.size() < want; ++rank) {
          bool any = false;
          for (const auto& top : tops) {
            if (rank >= top.size()) continue;
            any = true;
            const Trending::Scored& s = top[rank];
            if (std::find(taken.begin(), taken.end(), s.item) != taken.end()) continue;
            taken.push_back(s.item);
            const std::string_view name = catalog_.Item(s.item);
            if (excluded(name)) continue;
            list.push_back({std::string(name), s.score, {}});
          }
          if (!any) break;
        }
        break;
      }
    }
    if (!list.empty()) lists.emplace_back(source, std::move(list));
  }

  // Fuse. A single source keeps its own scores; several are fused by weighted reciprocal rank.
  if (lists.size() == 1) {
    for (Candidate& c : lists[0].second) {
      if (response.items.size() >= request.k) break;
      Item item;
      item.item = std::move(c.item);
      item.score = c.score;
      item.source = lists[0].first;
      item.sources = static_cast<uint8_t>(1u << static_cast<int>(lists[0].first));
      item.because = std::move(c.because);
      response.items.push_back(std::move(item));
    }
  } else if (!lists.empty()) {
    absl::flat_hash_map<std::string, size_t> index;
    std::vector<Item> fused;
    std::vector<double> best_part;
    for (size_t li = 0; li < lists.size(); ++li) {
      // Weight by the source's position in the variant (not by which lists were non-empty).
      const size_t position =
          std::find(sources.begin(), sources.end(), lists[li].first) - sources.begin();
      const double w = kSourceWeights[std::min<size_t>(position, 2)];
      for (size_t r = 0; r < lists[li].second.size(); ++r) {
        Candidate& c = lists[li].second[r];
        const double part = w / (kRrfOffset + static_cast<double>(r));
        auto [pos, inserted] = index.try_emplace(c.item, fused.size());
        if (inserted) {
          Item item;
          item.item = c.item;
          fused.push_back(std::move(item));
          best_part.push_back(0);
        }
        Item& item = fused[pos->second];
        item.score += part;
        item.sources |= static_cast<uint8_t>(1u << static_cast<int>(lists[li].first));
        if (part > best_part[pos->second]) {
          best_part[pos->second] = part;
          item.source = lists[li].first;
          item.because = std::move(c.because);
        }
      }
    }
    const size_t n = std::min<size_t>(request.k, fused.size());
    std::partial_sort(fused.begin(), fused.begin() + n, fused.end(),
                      [](const Item& a, const Item& b) {
                        return a.score != b.score ? a.score > b.score : a.item < b.item;
                      });
    fused.resize(n);
    response.items = std::move(fused);
  }

  const uint64_t serial = rec_counter_.fetch_add(1, std::memory_order_relaxed);
  std::string seed(request.user);
  seed.append(reinterpret_cast<const char*>(&serial), sizeof(serial));
  seed.append(reinterpret_cast<const char*>(&now), sizeof(now));
  response.rec_id = response.variant + "." + HexId(Hash64(seed));
  VariantCounters& c = counters_[variant];
  c.responses.fetch_add(1, std::memory_order_relaxed);
  c.items.fetch_add(response.items.size(), std::memory_order_relaxed);
  if (impressions_ != nullptr) {
    JsonWriter w;
    w.BeginObject();
    w.Key("ts").Int(std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count());
    w.Key("rec_id").String(response.rec_id);
    w.Key("variant").String(response.variant);
    w.Key("items").BeginArray();
    for (const Item& item : response.items) w.String(item.item);
    w.EndArray();
    w.EndObject();
    std::lock_guard<std::mutex> lock(impressions_mu_);
    std::fwrite(w.str().data(), 1, w.str().size(), impressions_);
    std::fputc('\n', impressions_);
  }
  return response;
}

absl::StatusOr<std::vector<Recommender::Similar>> Recommender::SimilarItems(std::string_view item,
                                                                            uint32_t k) const {
  if (k == 0 || k > config_.max_k) {
    return absl::InvalidArgumentError("k must be in [1, " + std::to_string(config_.max_k) + "]");
  }
  std::vector<Similar> out;
  const uint32_t id = catalog_.Find(item);
  if (id != ItemCatalog::kNone) {
    for (const ItemCf::Neighbour& n : cf_->Similar(id, k)) {
      out.push_back({std::string(catalog_.Item(n.item)), n.similarity, RecSource::kItemCf});
    }
  }
  if (!out.empty()) return out;
  // No co-occurrence yet: the nearest items in the model's embedding space (cosine).
  auto model = model_.load();
  const uint32_t idx = model ? model->IndexOf(item) : 0;
  if (idx == 0) {
    if (id != ItemCatalog::kNone) return out;  // known item without neighbours yet
    return absl::NotFoundError("unknown item '" + std::string(item) + "'");
  }
  const uint32_t d = model->hyper().dim;
  const std::vector<float>& emb = model->weights().item_emb;
  const float* q = emb.data() + static_cast<size_t>(idx) * d;
  std::vector<std::pair<float, uint32_t>> scored;
  scored.reserve(model->num_items());
  float qn = 0;
  for (uint32_t j = 0; j < d; ++j) qn += q[j] * q[j];
  qn = std::sqrt(std::max(qn, 1e-12f));
  for (uint32_t i = 1; i <= model->num_items(); ++i) {
    if (i == idx) continue;
    const float* r = emb.data() + static_cast<size_t>(i) * d;
    float dot = 0, rn = 0;
    for (uint32_t j = 0; j < d; ++j) {
      dot += q[j] * r[j];
      rn += r[j] * r[j];
    }
    scored.emplace_back(dot / (qn * std::sqrt(std::max(rn, 1e-12f))), i);
  }
  const size_t n = std::min<size_t>(k, scored.size());
  std::partial_sort(scored.begin(), scored.begin() + n, scored.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t i = 0; i < n; ++i) {
    out.push_back(
        {std::string(model->ItemAt(scored[i].second)), scored[i].first, RecSource::kSasRec});
  }
  return out;
}

absl::StatusOr<std::vector<Trending::Scored>> Recommender::TrendingItems(std::string_view category,
                                                                         uint32_t k) const {
  if (k == 0 || k > config_.max_k) {
    return absl::InvalidArgumentError("k must be in [1, " + std::to_string(config_.max_k) + "]");
  }
  uint32_t node = ItemCatalog::kNone;
  if (!category.empty()) {
    node = catalog_.FindCategory(category);
    if (node == ItemCatalog::kNone) {
      return absl::NotFoundError("unknown category '" + std::string(category) + "'");
    }
  }
  return trending_->Top(k, node, engine_ != nullptr ? engine_->NowMs() : 0);
}

std::string Recommender::StatsJson() const {
  JsonWriter w;
  w.BeginObject();
  w.Key("warmed_up").Bool(warmed_up());
  w.Key("catalog_items").Uint(catalog_.size());
  w.Key("categories").Uint(catalog_.category_count());
  w.Key("trending_events").Uint(trending_->events());
  w.Key("item_cf_items").Uint(cf_->items());
  w.Key("item_cf_pairs").Uint(cf_->pairs());
  w.Key("item_cf_bytes").Uint(cf_->MemoryBytes());
  w.Key("flagged_events_skipped").Uint(flagged_events());
  w.Key("model");
  if (auto m = model_.load()) {
    w.BeginObject();
    w.Key("version").String(m->version());
    w.Key("items").Uint(m->num_items());
    w.Key("metadata").Raw(m->metadata_json().empty() ? "{}" : m->metadata_json());
    w.EndObject();
  } else {
    w.Null();
  }
  w.Key("variants").BeginArray();
  for (size_t i = 0; i <= config_.variants.size(); ++i) {
    const VariantCounters& c = counters_[i];
    const uint64_t responses = c.responses.load(), clicks = c.clicks.load();
    const uint64_t purchases = c.purchases.load();
    if (i == config_.variants.size() && clicks + c.carts.load() + purchases == 0) break;
    w.BeginObject();
    w.Key("name").String(i < config_.variants.size() ? config_.variants[i].name : "(unknown)");
    if (i < config_.variants.size()) {
      w.Key("weight").Uint(config_.variants[i].weight);
      w.Key("sources").BeginArray();
      for (RecSource s : config_.variants[i].sources) w.String(RecSourceName(s));
      w.EndArray();
    }
    w.Key("responses").Uint(responses);
    w.Key("items").Uint(c.items.load());
    w.Key("clicks").Uint(clicks);
    w.Key("carts").Uint(c.carts.load());
    w.Key("purchases").Uint(purchases);
    w.Key("revenue").Double(static_cast<double>(c.revenue_cents.load()) / 100.0);
    w.Key("ctr");
    if (responses > 0) {
      w.Double(static_cast<double>(clicks) / static_cast<double>(responses));
    } else {
      w.Null();
    }
    w.Key("conversion");
    if (responses > 0) {
      w.Double(static_cast<double>(purchases) / static_cast<double>(responses));
    } else {
      w.Null();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Take();
}

}  // namespace persona
