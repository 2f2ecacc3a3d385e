#include "predict/keyword_categories.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <shared_mutex>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/varint.h"
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

// Magic and format version of a part's encoding (see the header).
constexpr std::string_view kPartMagic("PKC\x01", 4);
constexpr size_t kChecksumSize = 8;

void AppendSigned(std::string* out, int64_t v) { AppendVarint64(out, ZigZagEncode64(v)); }
void AppendString(std::string* out, std::string_view s) {
  AppendVarint64(out, s.size());
  out->append(s);
}

// Bounds-checked reads from the front of a view; every method returns false at the first
// malformed or missing byte, and the decoder stops there.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool Varint(uint64_t* v) { return ReadVarint64(&in_, v); }
  bool Signed(int64_t* v) {
    uint64_t x;
    if (!Varint(&x)) return false;
    *v = ZigZagDecode64(x);
    return true;
  }
  bool String(std::string_view* v) {
    uint64_t n;
    if (!Varint(&n) || n > in_.size()) return false;
    *v = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  // A count of elements that take at least one byte each: more than the bytes left is corrupt.
  bool Count(uint64_t* n) { return Varint(n) && *n <= in_.size(); }
  bool Strings(std::vector<std::string>* out) {
    uint64_t n;
    if (!Count(&n)) return false;
    out->reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      std::string_view s;
      if (!String(&s)) return false;
      out->emplace_back(s);
    }
    return true;
  }
  bool Prefix(std::string_view p) {
    if (in_.substr(0, p.size()) != p) return false;
    in_.remove_prefix(p.size());
    return true;
  }
  size_t remaining() const { return in_.size(); }

 private:
  std::string_view in_;
};

// The entries of a map sorted by key, for a deterministic encoding.
template <typename Map>
std::vector<const typename Map::value_type*> SortedByKey(const Map& map) {
  std::vector<const typename Map::value_type*> sorted;
  sorted.reserve(map.size());
  for (const auto& kv : map) sorted.push_back(&kv);
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  return sorted;
}

[[noreturn]] void PartOutOfRange(uint32_t part, size_t parts) {
  std::fprintf(stderr, "KeywordCategories: part %u of %zu parts\n", part, parts);
  std::abort();
}

}  // namespace

KeywordCategories::Part::Part()
    : user_shards(std::make_unique<UserShard[]>(kShards)),
      keyword_shards(std::make_unique<KeywordShard[]>(kShards)) {}

KeywordCategories::KeywordCategories(KeywordCategoryOptions options, uint32_t parts)
    : options_(options) {
  parts_.resize(std::max<uint32_t>(parts, 1));
  for (auto& p : parts_) p = std::make_unique<Part>();
}

KeywordCategories::Part& KeywordCategories::PartAt(uint32_t part) {
  if (part >= parts_.size()) PartOutOfRange(part, parts_.size());
  return *parts_[part];
}

const KeywordCategories::Part& KeywordCategories::PartAt(uint32_t part) const {
  if (part >= parts_.size()) PartOutOfRange(part, parts_.size());
  return *parts_[part];
}

void KeywordCategories::Observe(uint32_t part, const Event& e) {
  Part& p = PartAt(part);
  if (e.user_id.empty()) return;
  const bool search = e.type == EventType::kSearch && !e.query.empty();
  const std::string_view category = e.category_key();
  if (!search && (!CreditsCategory(e.type) || category.empty())) return;

  std::vector<std::string> to_credit;
  {
    UserShard& shard = p.user_shards[ShardOf(e.user_id)];
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
  // Outside the user lock: keyword shards are shared by all users of the part.
  Credit(p, to_credit, category);
}

void KeywordCategories::Forget(uint32_t part, std::string_view user_id) {
  UserShard& shard = PartAt(part).user_shards[ShardOf(user_id)];
  std::lock_guard lock(shard.mu);
  shard.users.erase(Av(user_id));
}

void KeywordCategories::Credit(Part& p, std::span<const std::string> keywords,
                               std::string_view category) {
  for (const std::string& keyword : keywords) {
    KeywordShard& shard = p.keyword_shards[ShardOf(keyword)];
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
  if (shard.users.size() < options_.max_users_per_shard * 3 / 4 || shard.users.empty()) return;
  // Everyone is active (or the clock is odd): drop the longest-idle half so that the next
  // eviction is far away and the cost per event stays constant. The half is the first one in
  // (last_ts_ms, user id) order, a total order: which users survive depends on the shard's
  // content only, never on the hash map's iteration order (which differs between two instances
  // holding the same users, e.g. after LoadPart), and ties in time cannot drop more than half.
  std::vector<std::pair<int64_t, std::string_view>> idle;
  idle.reserve(shard.users.size());
  for (const auto& [user, open] : shard.users) idle.emplace_back(open.last_ts_ms, user);
  const auto cut = idle.begin() + static_cast<std::ptrdiff_t>((idle.size() + 1) / 2);
  std::nth_element(idle.begin(), cut - 1, idle.end());
  // Erasing leaves the other keys in place, so the views in `idle` stay valid.
  for (auto it = idle.begin(); it != cut; ++it) shard.users.erase(Av(it->second));
}

uint64_t KeywordCategories::Collect(
    std::string_view keyword, std::vector<std::pair<std::string, uint64_t>>* by_category) const {
  const size_t s = ShardOf(keyword);
  uint64_t total = 0;
  for (const auto& p : parts_) {
    const KeywordShard& shard = p->keyword_shards[s];
    std::shared_lock lock(shard.mu);
    auto it = shard.keywords.find(Av(keyword));
    if (it == shard.keywords.end()) continue;
    total += it->second.total;
    if (by_category == nullptr) continue;
    for (const auto& [category, count] : it->second.by_category) {
      by_category->emplace_back(category, count);
    }
  }
  if (by_category != nullptr && parts_.size() > 1) {
    // Sum the counts of a category that several parts credited.
    std::sort(by_category->begin(), by_category->end());
    size_t kept = 0;
    for (size_t i = 0; i < by_category->size(); ++i) {
      if (kept > 0 && (*by_category)[kept - 1].first == (*by_category)[i].first) {
        (*by_category)[kept - 1].second += (*by_category)[i].second;
      } else {
        if (kept != i) (*by_category)[kept] = std::move((*by_category)[i]);
        ++kept;
      }
    }
    by_category->resize(kept);
  }
  return total;
}

std::vector<std::pair<std::string, double>> KeywordCategories::Categories(std::string_view keyword,
                                                                          size_t k) const {
  Ranked ranked;
  if (k == 0) return ranked;
  // Every part's shard of the keyword, read-locked together in part order (writers hold one
  // shard lock at a time, LoadPart the shards of one part only: no cycle), so that the counts are
  // summed by category name without copying a string, and only the k best are copied out. This
  // runs on every profile read with predictions: the copies and the string sort were a fifth of
  // its cost.
  const size_t s = ShardOf(keyword);
  absl::InlinedVector<std::shared_lock<std::shared_mutex>, 4> locks;
  thread_local absl::flat_hash_map<std::string_view, uint64_t> sums;
  sums.clear();
  uint64_t support = 0;
  for (const auto& p : parts_) {
    const KeywordShard& shard = p->keyword_shards[s];
    locks.emplace_back(shard.mu);
    auto it = shard.keywords.find(Av(keyword));
    if (it == shard.keywords.end()) continue;
    support += it->second.total;
    for (const auto& [category, count] : it->second.by_category) sums[category] += count;
  }
  if (support == 0 || support < options_.min_support) return ranked;
  // By count (= by share, the total being common), then by name: SortAndCut's order.
  thread_local std::vector<std::pair<std::string_view, uint64_t>> top;
  top.assign(sums.begin(), sums.end());
  const size_t n = std::min(k, top.size());
  std::partial_sort(top.begin(), top.begin() + n, top.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  const double total = static_cast<double>(support);
  ranked.reserve(n);
  for (size_t i = 0; i < n; ++i)
    ranked.emplace_back(std::string(top[i].first), top[i].second / total);
  return ranked;
}

std::vector<std::pair<std::string, double>> KeywordCategories::CategoriesForQuery(
    std::string_view query, size_t k) const {
  QueryTokens tokens;
  TokenizeQuery(query, &tokens);
  absl::flat_hash_map<std::string, double> mass;
  uint64_t support = 0;
  std::vector<std::pair<std::string, uint64_t>> counts;
  for (size_t i = 0; i < tokens.count; ++i) {
    counts.clear();
    // Full distributions (not top k) so that the mixture is exact.
    const uint64_t s = Collect(tokens.tokens[i], &counts);
    if (s == 0 || s < options_.min_support) continue;
    const double total = static_cast<double>(s);
    for (const auto& [category, count] : counts) {
      const double p = count / total;  // as Categories() reports it
      mass[category] += p * total;
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
  return Collect(keyword, nullptr);
}

size_t KeywordCategories::open_searches() const {
  size_t n = 0;
  for (const auto& p : parts_) {
    for (size_t i = 0; i < kShards; ++i) {
      std::lock_guard lock(p->user_shards[i].mu);
      n += p->user_shards[i].users.size();
    }
  }
  return n;
}

void KeywordCategories::SavePart(uint32_t part, std::string* out) const {
  const Part& p = PartAt(part);
  const size_t begin = out->size();
  out->append(kPartMagic);
  AppendVarint64(out, kShards);
  for (size_t s = 0; s < kShards; ++s) {
    const UserShard& shard = p.user_shards[s];
    std::lock_guard lock(shard.mu);
    AppendSigned(out, shard.max_ts_ms);
    AppendVarint64(out, shard.users.size());
    for (const auto* entry : SortedByKey(shard.users)) {
      const OpenSearch& open = entry->second;
      AppendString(out, entry->first);
      AppendSigned(out, open.last_ts_ms);
      AppendVarint64(out, open.keywords.size());
      for (const std::string& keyword : open.keywords) AppendString(out, keyword);
      AppendVarint64(out, open.credited.size());
      for (const std::string& category : open.credited) AppendString(out, category);
    }
  }
  for (size_t s = 0; s < kShards; ++s) {
    const KeywordShard& shard = p.keyword_shards[s];
    std::shared_lock lock(shard.mu);
    AppendVarint64(out, shard.keywords.size());
    for (const auto* entry : SortedByKey(shard.keywords)) {
      AppendString(out, entry->first);
      AppendVarint64(out, entry->second.total);
      AppendVarint64(out, entry->second.by_category.size());
      for (const auto* category : SortedByKey(entry->second.by_category)) {
        AppendString(out, category->first);
        AppendVarint64(out, category->second);
      }
    }
  }
  AppendFixed64(out, Hash64(std::string_view(*out).substr(begin)));
}

absl::Status KeywordCategories::LoadPart(uint32_t part, std::string_view in) {
  if (part >= parts_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("keyword categories part ", part, " of ", parts_.size(), " parts"));
  }
  auto corrupt = [](std::string_view what) {
    return absl::DataLossError(absl::StrCat("keyword categories part: ", Av(what)));
  };
  if (in.size() < kPartMagic.size() + kChecksumSize) return corrupt("truncated");
  const std::string_view body = in.substr(0, in.size() - kChecksumSize);
  std::string_view tail = in.substr(body.size());
  uint64_t checksum = 0;
  if (!ReadFixed64(&tail, &checksum) || checksum != Hash64(body)) {
    return corrupt("checksum mismatch");
  }
  Reader r(body);
  if (!r.Prefix(kPartMagic)) return corrupt("bad magic or unknown version");
  uint64_t shards;
  if (!r.Varint(&shards)) return corrupt("truncated header");
  if (shards != kShards) {
    return corrupt(absl::StrCat("written with ", shards, " shards, this build has ", kShards));
  }

  std::vector<UserMap> users(kShards);
  std::vector<int64_t> max_ts(kShards);
  for (size_t s = 0; s < kShards; ++s) {
    uint64_t n;
    if (!r.Signed(&max_ts[s]) || !r.Count(&n)) return corrupt("truncated user shard");
    std::string_view previous;
    for (uint64_t i = 0; i < n; ++i) {
      std::string_view user;
      if (!r.String(&user) || user.empty()) return corrupt("bad user id");
      if (i > 0 && !(previous < user)) return corrupt("users out of order");
      if (ShardOf(user) != s) return corrupt("user in the wrong shard");
      previous = user;
      OpenSearch open;
      if (!r.Signed(&open.last_ts_ms) || !r.Strings(&open.keywords) || !r.Strings(&open.credited)) {
        return corrupt("truncated open search");
      }
      users[s].emplace(std::string(user), std::move(open));
    }
  }
  std::vector<KeywordMap> keywords(kShards);
  for (size_t s = 0; s < kShards; ++s) {
    uint64_t n;
    if (!r.Count(&n)) return corrupt("truncated keyword shard");
    std::string_view previous;
    for (uint64_t i = 0; i < n; ++i) {
      std::string_view keyword;
      KeywordStats stats;
      uint64_t m;
      if (!r.String(&keyword) || !r.Varint(&stats.total) || !r.Count(&m)) {
        return corrupt("truncated keyword");
      }
      if (i > 0 && !(previous < keyword)) return corrupt("keywords out of order");
      if (ShardOf(keyword) != s) return corrupt("keyword in the wrong shard");
      previous = keyword;
      // Credits beyond max_categories_per_keyword count in the total only: the listed counts
      // never add up to more than it.
      uint64_t listed = 0;
      std::string_view previous_category;
      for (uint64_t j = 0; j < m; ++j) {
        std::string_view category;
        uint64_t count;
        if (!r.String(&category) || !r.Varint(&count)) return corrupt("truncated category");
        if (j > 0 && !(previous_category < category)) return corrupt("categories out of order");
        if (count == 0 || count > stats.total - listed) return corrupt("bad category count");
        previous_category = category;
        listed += count;
        stats.by_category.emplace(std::string(category), count);
      }
      keywords[s].emplace(std::string(keyword), std::move(stats));
    }
  }
  if (r.remaining() != 0) return corrupt("trailing bytes");

  Part& p = *parts_[part];
  // All of the part's locks at once, in a fixed order: nobody else holds two of them.
  std::vector<std::unique_lock<std::mutex>> user_locks;
  std::vector<std::unique_lock<std::shared_mutex>> keyword_locks;
  user_locks.reserve(kShards);
  keyword_locks.reserve(kShards);
  for (size_t s = 0; s < kShards; ++s) user_locks.emplace_back(p.user_shards[s].mu);
  for (size_t s = 0; s < kShards; ++s) keyword_locks.emplace_back(p.keyword_shards[s].mu);
  for (size_t s = 0; s < kShards; ++s) {
    p.user_shards[s].users.swap(users[s]);
    p.user_shards[s].max_ts_ms = max_ts[s];
    p.keyword_shards[s].keywords.swap(keywords[s]);
  }
  return absl::OkStatus();
}

}  // namespace persona
