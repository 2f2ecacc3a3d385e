// The synthetic store the generated users shop in: a 3-level category hierarchy
// ("c3.c3_12.c3_12_4") whose leaves hold the items, brands per leaf, a search vocabulary per
// leaf, a log-normal price distribution per leaf, and Zipf item popularity. Built once from a
// seed; immutable afterwards, so its string views stay valid for the catalog's lifetime.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gen/alias_table.h"
#include "gen/random.h"

namespace persona::gen {

struct CatalogLeaf {
  std::string path;    // "c3.c3_12.c3_12_4"
  std::string number;  // decimal category id, for formats without paths (taobao)
  uint32_t top = 0;    // index of the top-level category (0-based; its name is "c<top+1>")
  // Items of this leaf are the catalog items [item_begin, item_end).
  uint32_t item_begin = 0;
  uint32_t item_end = 0;
  double log_price_mu = 0;
  double log_price_sigma = 0;
  uint32_t premium_cents = 0;      // price at the leaf's 80th percentile
  std::vector<uint32_t> brands;    // indices into the catalog's brand names
  std::vector<std::string> words;  // search vocabulary
};

class SyntheticCatalog {
 public:
  static constexpr uint32_t kNoBrand = 0xffffffffu;

  // Builds a catalog of `items` items under `top_categories` top-level categories, item
  // popularity proportional to rank^-zipf_exponent. Requires items >= top_categories >= 1; every
  // top-level category gets at least one item, and leaves without items are never sampled.
  SyntheticCatalog(uint64_t items, uint32_t top_categories, double zipf_exponent, uint64_t seed);
  SyntheticCatalog(const SyntheticCatalog&) = delete;
  SyntheticCatalog& operator=(const SyntheticCatalog&) = delete;

  uint32_t item_count() const { return static_cast<uint32_t>(items_.size()); }
  uint32_t leaf_count() const { return static_cast<uint32_t>(leaves_.size()); }
  uint32_t top_count() const { return top_count_; }
  const CatalogLeaf& leaf(uint32_t l) const { return leaves_[l]; }

  // Item attributes, by item index (0 .. item_count-1, grouped by leaf).
  // Items are grouped by leaf, so the leaf is a search over the (small, cache-resident) leaf
  // starts instead of a load from a multi-megabyte array.
  uint32_t item_leaf(uint32_t i) const {
    return static_cast<uint32_t>(std::upper_bound(leaf_begin_.begin(), leaf_begin_.end(), i) -
                                 leaf_begin_.begin() - 1);
  }
  // The public item id (a number, like taobao's): a bijection of 0..item_count-1 onto
  // 1..item_count scattering neighbours, so ids hint at neither popularity nor category.
  // Computed, not stored: the fastest output formats then never load an item record.
  uint32_t item_number(uint32_t i) const {
    return static_cast<uint32_t>((number_multiplier_ * i + number_offset_) % items_.size()) + 1;
  }
  uint32_t item_price_cents(uint32_t i) const { return items_[i].price_cents; }
  uint32_t item_brand(uint32_t i) const { return items_[i].brand; }
  // 0 = the most popular item of the catalog.
  uint32_t item_popularity_rank(uint32_t i) const { return item_rank_[i]; }
  std::string_view brand_name(uint32_t b) const { return brand_names_[b]; }
  double zipf_exponent() const { return zipf_exponent_; }

  // A leaf with probability proportional to the total popularity of its items.
  uint32_t SampleLeaf(Rng& rng) const { return leaf_sampler_.Sample(rng); }
  // An item of non-empty leaf `l`, with probability proportional to its popularity. Picking the
  // leaf first and then the item gives exactly the global Zipf distribution.
  uint32_t SampleItemInLeaf(uint32_t l, Rng& rng) const {
    const LeafSampler& s = item_sampler_[l];
    if (s.tail.empty() || rng.Next() < s.head_threshold) {
      return leaves_[l].item_begin + s.head.Sample(rng);
    }
    return leaves_[l].item_begin + kHeadItems + s.tail.Sample(rng);
  }
  // Any item, uniformly (what a crawler sees).
  uint32_t SampleUniformItem(Rng& rng) const {
    return static_cast<uint32_t>(rng.Below(items_.size()));
  }
  bool LeafHasItems(uint32_t l) const { return leaves_[l].item_end > leaves_[l].item_begin; }

  // Approximate heap bytes held: constant once built.
  size_t MemoryBytes() const;

 private:
  void BuildHierarchy(uint64_t items, Rng& rng);
  void BuildItems(uint64_t items, Rng& rng);
  void BuildNames(Rng& rng);

  uint32_t top_count_;
  double zipf_exponent_;
  std::vector<CatalogLeaf> leaves_;
  std::vector<std::string> brand_names_;
  // An item's price and brand side by side: rendering an event touches one cache line.
  struct Item {
    uint32_t price_cents;
    uint32_t brand;
  };
  std::vector<Item> items_;
  std::vector<uint32_t> leaf_begin_;  // leaf_begin_[l] = leaves_[l].item_begin
  uint64_t number_multiplier_ = 1;    // coprime with the item count
  uint64_t number_offset_ = 0;
  std::vector<uint32_t> item_rank_;
  // A leaf's items, most popular first, are sampled in two parts: the head (its kHeadItems most
  // popular items, chosen with their exact total probability) and the tail. Under Zipf the head
  // takes a large share of the picks, and its small table stays in cache, while a single table
  // over a big leaf would cost a cache miss on nearly every pick.
  static constexpr uint32_t kHeadItems = 128;
  struct LeafSampler {
    AliasTable head;
    AliasTable tail;
    uint64_t head_threshold = 0;  // P(head) * 2^64
  };
  AliasTable leaf_sampler_;
  std::vector<LeafSampler> item_sampler_;  // per leaf
};

}  // namespace persona::gen
