// State shared by all profiles of ONE partition, owned by the partition and mutated only by its
// writer thread (Profile::Apply). Reader threads may use `pool.Get` (codes never move) and
// `population` (atomics), and nothing else: `prices` and `pool.Intern/Find` are writer-only.
#pragma once

#include "common/string_pool.h"
#include "profile/category_price_stats.h"
#include "profile/population.h"
#include "profile/profile_config.h"

namespace persona {

struct ProfileContext {
  const ProfileConfig* config = nullptr;
  // Interns item ids, categories (and their ancestor prefixes), brands and keywords.
  StringPool pool;
  // Per-category price distributions for the price tier; persisted by the engine in checkpoints.
  CategoryPriceStats prices;
  // Shared by all partitions; may be null (then RFM scores are not maintained).
  Population* population = nullptr;
};

}  // namespace persona
