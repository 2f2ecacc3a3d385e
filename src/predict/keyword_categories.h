// Which categories a search keyword leads to, learnt online from behaviour: after a user searches,
// the categories of the items they then view, click, cart or buy in the same session are credited
// to each keyword of the query. The result, P(category | keyword), turns a search into category
// interest before the user has touched any item, and names what a keyword means in this shop
// ("apple" -> electronics.smartphone, not groceries).
//
// Parts: the state is kept as `parts` independent parts, one per engine partition, each with its
// own open searches (user shards) and keyword counts (keyword shards). A part's content depends
// only on the events observed in it and their order, so a partition that replays its own log
// after a crash rebuilds exactly its part, and each part is checkpointed and restored on its own
// (SavePart / LoadPart). Reads sum a keyword's total and per-category counts over the parts. When
// the stream is split over parts by user, reads equal those of one part fed everything, as long
// as no cap is reached (the caps hold per part).
//
// Thread-safety: each part expects one writer thread (Observe(part, ...)); several writers on one
// part are safe but make the part depend on their interleaving. Readers may run on any number of
// threads. State is split into shards, each under its own lock; nobody but LoadPart holds two.
//
// Part encoding (SavePart), version 1. Integers are varints, signed ones ZigZag-encoded first;
// a string is its length and its bytes:
//   "PKC" 0x01                                 magic and format version
//   kShards                                    the shard count it was written with
//   kShards x user shard:    max_ts_ms (signed), n, then n open searches in byte order of user:
//                              user, last_ts_ms (signed), k, k keywords, c, c credited categories
//   kShards x keyword shard: n, then n keywords in byte order:
//                              keyword, total, m, m x (category, count) in byte order of category
//   fixed64 checksum                           xxHash64 (common/hash.h) of everything before it
// Users and keywords sit in shard Hash64(key) % kShards. The encoding is deterministic: equal
// parts encode to equal bytes.
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

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
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
  // Users with an open search remembered per shard (of each part); beyond it, users whose
  // session lapsed are dropped, then if needed the longest-idle half (by last event time, ties by
  // user id, so the choice does not depend on hash-map iteration order).
  size_t max_users_per_shard = 1 << 16;
  // Categories counted per keyword; credits to others still count toward the keyword's total, so
  // probabilities stay honest (they just do not list the tail).
  size_t max_categories_per_keyword = 64;
  // Keywords counted per shard (of each part); new keywords are ignored beyond it (bounded memory
  // under bot traffic that searches random strings).
  size_t max_keywords_per_shard = 1 << 18;
};

class KeywordCategories {
 public:
  static constexpr size_t kShards = 16;

  // An instance of `parts` parts (0 is taken as 1), all empty.
  explicit KeywordCategories(KeywordCategoryOptions options = {}, uint32_t parts = 1);

  // Feeds one event to `part`. A search (non-empty query) replaces the user's open search with
  // its keywords (TokenizeQuery); a view, click, cart or purchase of an item with a category
  // credits that category to the open search's keywords, once per search and category, if the
  // session has not lapsed. Events of one user should arrive in time order and always in the
  // same part (as a partition writer sees them). REQUIRES: part < parts() (the process aborts
  // otherwise). Observe(e) is Observe(0, e).
  void Observe(uint32_t part, const Event& e);
  void Observe(const Event& e) { Observe(0, e); }

  // Drops `user_id`'s open search in `part` (it holds their recent query keywords), for erasure.
  // What the user's searches already credited stays in the keyword counts, which name no user.
  // It is not an error if the user has no open search. REQUIRES: part < parts().
  void Forget(uint32_t part, std::string_view user_id);

  // The top `k` categories for one keyword (a token as TokenizeQuery produces it: lowercase
  // word or CJK bigram), with P(category | keyword), most probable first (ties by name). Empty
  // when the keyword has fewer than min_support credits over all parts.
  std::vector<std::pair<std::string, double>> Categories(std::string_view keyword, size_t k) const;
  // Same for a raw query: the average of its supported keywords' distributions, weighted by their
  // support. Empty when no keyword is supported.
  std::vector<std::pair<std::string, double>> CategoriesForQuery(std::string_view query,
                                                                 size_t k) const;

  // Credits seen for a keyword over all parts (0 when unknown).
  uint64_t Support(std::string_view keyword) const;
  // Users with an open search, summed over parts and shards (for tests and metrics).
  size_t open_searches() const;
  uint32_t parts() const { return static_cast<uint32_t>(parts_.size()); }

  // Appends the encoding of `part` (format above) to *out. Readers and the other parts' writers
  // may run concurrently; the snapshot is consistent when the part's own writer is not observing
  // at the same time (call it from that writer, between events). REQUIRES: part < parts().
  void SavePart(uint32_t part, std::string* out) const;

  // Replaces the content of `part` with the one encoded in `in` (a whole SavePart output).
  // DataLoss when `in` is truncated, corrupt, has trailing bytes or was written with another
  // shard count; the part is then left unchanged. Never reads outside `in`. InvalidArgument when
  // part >= parts(). The part must have no writer while it loads; readers may run concurrently.
  // Caps are not applied to the loaded content: they only stop it from growing further.
  absl::Status LoadPart(uint32_t part, std::string_view in);

 private:
  struct OpenSearch {
    int64_t last_ts_ms = 0;
    std::vector<std::string> keywords;
    std::vector<std::string> credited;  // categories already credited to this search
  };
  using UserMap = absl::flat_hash_map<std::string, OpenSearch>;
  struct UserShard {
    mutable std::mutex mu;
    UserMap users ABSL_GUARDED_BY(mu);
    // Newest event seen in the shard: the clock idle users are judged by.
    int64_t max_ts_ms ABSL_GUARDED_BY(mu) = 0;
  };
  struct KeywordStats {
    uint64_t total = 0;
    absl::flat_hash_map<std::string, uint64_t> by_category;
  };
  using KeywordMap = absl::flat_hash_map<std::string, KeywordStats>;
  struct KeywordShard {
    mutable std::shared_mutex mu;
    KeywordMap keywords ABSL_GUARDED_BY(mu);
  };
  // One partition's state.
  struct Part {
    Part();
    std::unique_ptr<UserShard[]> user_shards;        // kShards
    std::unique_ptr<KeywordShard[]> keyword_shards;  // kShards
  };

  // The part, or aborts the process when part >= parts().
  Part& PartAt(uint32_t part);
  const Part& PartAt(uint32_t part) const;
  void Credit(Part& p, std::span<const std::string> keywords, std::string_view category);
  // Drops users whose session lapsed; if that frees too little, the longest-idle half.
  // REQUIRES: shard.mu is held.
  void Evict(UserShard& shard);
  // A keyword's total over the parts; with `by_category`, also its per-category counts summed
  // over the parts (in no particular order).
  uint64_t Collect(std::string_view keyword,
                   std::vector<std::pair<std::string, uint64_t>>* by_category) const;

  KeywordCategoryOptions options_;
  std::vector<std::unique_ptr<Part>> parts_;
};

}  // namespace persona
