#include "model/keyword_categories.h"

#include <algorithm>

#include "common/hash.h"
#include "profile/query_tokenizer.h"

namespace persona {
namespace {

// Abseil here has its own string_view type; heterogeneous lookups need that one.
absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

size_t ShardOf(std::string_view key) { return Hash64(key) % KeywordCategories::kShards; }

bool CreditsCategory(EventType t) {
  return t == EventType::kView || t == EventType::kClick || t == EventType::kCart ||
         t == EventType::kPurchase;
}

using Ranked = std::vector<std::pair<std::string, double>>;

void SortAndCut(Ranked* ranked, size_t k) {
  std::sort(ranked->begin(), ranked->end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (ranked->size() > k) ranked->resize(k);
}

}  // namespace

KeywordCategories::KeywordCategories(KeywordCategoryOptions options)
    : options_(options),
      user_shards_(std::make_unique<UserShard[]>(kShards)),
      keyword_shards_(std::make_unique<KeywordShard[]>(kShards)) {}

void KeywordCategories::Observe(const Event& e) {
  if (e.user_id.empty()) return;
  const bool search = e.type == EventType::kSearch && !e.query.empty();
  const std::string_view category = e.category_key();
  if (!search && (!CreditsCategory(e.type) || category.empty())) return;

  std::vector<std::string> to_credit;
  {
    UserShard& shard = user_shards_[ShardOf(e.user_id)];
    std::lock_guard lock(shard.mu);
    shard.max_ts_ms = std::max(shard.max_ts_ms, e.ts_ms);
    auto it = shard.users.find(Av(e.user_id));
    if (it != shard.users.end() && e.ts_ms - it->second.last_ts_ms > options_.session_gap_ms) {
      shard.users.erase(it);  // the session lapsed: its search no longer explains anything
      it = shard.users.end();
    }
    if (search) {
      QueryTokens tokens;
      TokenizeQuery(e.query, &tokens);
      if (tokens.count == 0) {
        if (it != shard.users.end()) shard.users.erase(it);
        return;
      }
      if (it == shard.users.end()) {
        if (shard.users.size() >= options_.max_users_per_shard) Evict(shard);
        it = shard.users.try_emplace(std::string(e.user_id)).first;
      }
      OpenSearch& open = it->second;
      open.last_ts_ms = e.ts_ms;
      open.keywords.assign(tokens.tokens.begin(), tokens.tokens.begin() + tokens.count);
      open.credited.clear();
      return;
    }
    if (it == shard.users.end()) return;
    OpenSearch& open = it->second;
    open.last_ts_ms = std::max(open.last_ts_ms, e.ts_ms);
    if (open.credited.size() >= options_.max_categories_per_search) return;
    if (std::find(open.credited.begin(), open.credited.end(), category) != open.credited.end()) {
      return;
    }
    open.credited.emplace_back(category);
    to_credit = open.keywords;
  }
  // Outside the user lock: keyword shards are shared by all users.
  Credit(to_credit, category);
}

void KeywordCategories::Credit(std::span<const std::string> keywords, std::string_view category) {
  for (const std::string& keyword : keywords) {
    KeywordShard& shard = keyword_shards_[ShardOf(keyword)];
    std::unique_lock lock(shard.mu);
    auto it = shard.keywords.find(Av(keyword));
    if (it == shard.keywords.end()) {
      if (shard.keywords.size() >= options_.max_keywords_per_shard) continue;
      it = shard.keywords.try_emplace(keyword).first;
    }
    KeywordStats& stats = it->second;
    ++stats.total;
    auto cat = stats.by_category.find(Av(category));
    if (cat != stats.by_category.end()) {
      ++cat->second;
    } else if (stats.by_category.size() < options_.max_categories_per_keyword) {
      stats.by_category.emplace(std::string(category), 1);
    }
  }
}

void KeywordCategories::Evict(UserShard& shard) {
  const int64_t horizon = shard.max_ts_ms - options_.session_gap_ms;
  absl::erase_if(shard.users, [horizon](const auto& kv) { return kv.second.last_ts_ms < horizon; });
  if (shard.users.size() < options_.max_users_per_shard * 3 / 4) return;
  // Everyone is active (or the clock is odd): drop the longest-idle half so that the next
  // eviction is far away and the cost per event stays constant.
  std::vector<int64_t> times;
  times.reserve(shard.users.size());
  for (const auto& [user, open] : shard.users) times.push_back(open.last_ts_ms);
  auto mid = times.begin() + times.size() / 2;
  std::nth_element(times.begin(), mid, times.end());
  const int64_t cut = *mid;
  absl::erase_if(shard.users, [cut](const auto& kv) { return kv.second.last_ts_ms <= cut; });
}

std::vector<std::pair<std::string, double>> KeywordCategories::Categories(std::string_view keyword,
                                                                          size_t k) const {
  Ranked ranked;
  if (k == 0) return ranked;
  const KeywordShard& shard = keyword_shards_[ShardOf(keyword)];
  std::shared_lock lock(shard.mu);
  auto it = shard.keywords.find(Av(keyword));
  if (it == shard.keywords.end() || it->second.total < options_.min_support) return ranked;
  const double total = static_cast<double>(it->second.total);
  ranked.reserve(it->second.by_category.size());
  for (const auto& [category, count] : it->second.by_category) {
    ranked.emplace_back(category, count / total);
  }
  lock.unlock();
  SortAndCut(&ranked, k);
  return ranked;
}

std::vector<std::pair<std::string, double>> KeywordCategories::CategoriesForQuery(
    std::string_view query, size_t k) const {
  QueryTokens tokens;
  TokenizeQuery(query, &tokens);
  absl::flat_hash_map<std::string, double> mass;
  uint64_t support = 0;
  for (size_t i = 0; i < tokens.count; ++i) {
    const uint64_t s = Support(tokens.tokens[i]);
    if (s < options_.min_support) continue;
    // Full distributions (not top k) so that the mixture is exact.
    for (auto& [category, p] : Categories(tokens.tokens[i], options_.max_categories_per_keyword)) {
      mass[category] += p * static_cast<double>(s);
    }
    support += s;
  }
  Ranked ranked;
  if (support == 0 || k == 0) return ranked;
  for (auto& [category, m] : mass) ranked.emplace_back(category, m / static_cast<double>(support));
  SortAndCut(&ranked, k);
  return ranked;
}

uint64_t KeywordCategories::Support(std::string_view keyword) const {
  const KeywordShard& shard = keyword_shards_[ShardOf(keyword)];
  std::shared_lock lock(shard.mu);
  auto it = shard.keywords.find(Av(keyword));
  return it == shard.keywords.end() ? 0 : it->second.total;
}

size_t KeywordCategories::open_searches() const {
  size_t n = 0;
  for (size_t i = 0; i < kShards; ++i) {
    std::lock_guard lock(user_shards_[i].mu);
    n += user_shards_[i].users.size();
  }
  return n;
}

}  // namespace persona
