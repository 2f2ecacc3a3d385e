// Which categories a search keyword leads to, learnt online from behaviour: after a user searches,
// the categories of the items they then view, click, cart or buy in the same session are credited
// to each keyword of the query. The result, P(category | keyword), turns a search into category
// interest before the user has touched any item, and names what a keyword means in this shop
// ("apple" -> electronics.smartphone, not groceries).
//
// Thread-safe: Observe and Categories may be called from any number of threads (the partition
// writers observe, the read path asks). State is split into shards, each under its own lock, so
// writers of different users rarely meet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "event/event.h"

namespace persona {

struct KeywordCategoryOptions {
  // A search is credited with the categories the user reaches while their session lasts: until
  // an event more than this after the user's previous one.
  int64_t session_gap_ms = 30 * 60 * 1000;
  // Categories() answers only for keywords credited at least this many times: below that a
  // "probability" is one user's click.
  uint64_t min_support = 5;
  // Distinct categories one search can credit; a user browsing on after finding what they looked
  // for should not spread the keyword over the whole catalogue.
  uint32_t max_categories_per_search = 3;
  // Users with an open search remembered per shard; beyond it, users idle the longest are dropped.
  size_t max_users_per_shard = 1 << 16;
  // Categories counted per keyword; credits to others still count toward the keyword's total, so
  // probabilities stay honest (they just do not list the tail).
  size_t max_categories_per_keyword = 64;
  // Keywords counted per shard; new keywords are ignored beyond it (bounded memory under bot
  // traffic that searches random strings).
  size_t max_keywords_per_shard = 1 << 18;
};

class KeywordCategories {
 public:
  static constexpr size_t kShards = 16;

  explicit KeywordCategories(KeywordCategoryOptions options = {});

  // Feeds one event. A search (non-empty query) replaces the user's open search with its keywords
  // (TokenizeQuery); a view, click, cart or purchase of an item with a category credits that
  // category to the open search's keywords, once per search and category, if the session has not
  // lapsed. Events of one user should arrive in time order (as a partition writer sees them).
  void Observe(const Event& e);

  // The top `k` categories for one keyword (a token as TokenizeQuery produces it: lowercase
  // word or CJK bigram), with P(category | keyword), most probable first (ties by name). Empty
  // when the keyword has fewer than min_support credits.
  std::vector<std::pair<std::string, double>> Categories(std::string_view keyword, size_t k) const;
  // Same for a raw query: the average of its supported keywords' distributions, weighted by their
  // support. Empty when no keyword is supported.
  std::vector<std::pair<std::string, double>> CategoriesForQuery(std::string_view query,
                                                                 size_t k) const;

  // Credits seen for a keyword (0 when unknown).
  uint64_t Support(std::string_view keyword) const;
  // Users with an open search, summed over shards (for tests and metrics).
  size_t open_searches() const;

 private:
  struct OpenSearch {
    int64_t last_ts_ms = 0;
    std::vector<std::string> keywords;
    std::vector<std::string> credited;  // categories already credited to this search
  };
  struct UserShard {
    mutable std::mutex mu;
    absl::flat_hash_map<std::string, OpenSearch> users;
    int64_t max_ts_ms = 0;  // newest event seen in the shard: the clock idle users are judged by
  };
  struct KeywordStats {
    uint64_t total = 0;
    absl::flat_hash_map<std::string, uint64_t> by_category;
  };
  struct KeywordShard {
    mutable std::shared_mutex mu;
    absl::flat_hash_map<std::string, KeywordStats> keywords;
  };

  void Credit(std::span<const std::string> keywords, std::string_view category);
  // Drops users whose session lapsed; if that frees too little, the longest-idle half.
  void Evict(UserShard& shard);

  KeywordCategoryOptions options_;
  std::unique_ptr<UserShard[]> user_shards_;
  std::unique_ptr<KeywordShard[]> keyword_shards_;
};

}  // namespace persona
