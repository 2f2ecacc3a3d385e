#include "gen/catalog.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "gen/shape.h"

namespace persona::gen {
namespace {

// Pronounceable lowercase pseudo-words ("kavori", "tessun"), unique within one catalog, so that
// brands and search keywords look like words in dashboards yet never collide between categories.
class WordMaker {
 public:
  std::string Make(Rng& rng) {
    static constexpr std::string_view kConsonants = "bdfgklmnprstvz";
    static constexpr std::string_view kVowels = "aeiou";
    for (;;) {
      std::string w;
      const int syllables = static_cast<int>(rng.Between(2, 3));
      for (int s = 0; s < syllables; ++s) {
        w.push_back(kConsonants[rng.Below(kConsonants.size())]);
        w.push_back(kVowels[rng.Below(kVowels.size())]);
      }
      if (rng.Bernoulli(0.3)) w.push_back(kConsonants[rng.Below(kConsonants.size())]);
      if (used_.insert(w).second) return w;
    }
  }

 private:
  absl::flat_hash_set<std::string> used_;
};

}  // namespace

SyntheticCatalog::SyntheticCatalog(uint64_t items, uint32_t top_categories, double zipf_exponent,
                                   uint64_t seed)
    : top_count_(std::max<uint32_t>(top_categories, 1)), zipf_exponent_(zipf_exponent) {
  items = std::max<uint64_t>(items, top_count_);
  Rng rng(seed);
  BuildHierarchy(items, rng);
  BuildNames(rng);
  BuildItems(items, rng);
}

void SyntheticCatalog::BuildHierarchy(uint64_t items, Rng& rng) {
  // Draw the hierarchy's fan-out first, then shrink it evenly if the catalog is too small to give
  // each leaf kMinItemsPerLeaf items.
  std::vector<std::vector<int>> leaves_per_mid(top_count_);
  uint64_t total = 0;
  for (auto& mids : leaves_per_mid) {
    mids.resize(rng.Between(shape::kMinMidPerTop, shape::kMaxMidPerTop));
    for (int& n : mids) {
      n = static_cast<int>(rng.Between(shape::kMinLeavesPerMid, shape::kMaxLeavesPerMid));
      total += n;
    }
  }
  const uint64_t budget = std::max<uint64_t>(top_count_, items / shape::kMinItemsPerLeaf);
  if (total > budget) {
    const double scale = std::sqrt(static_cast<double>(budget) / static_cast<double>(total));
    for (auto& mids : leaves_per_mid) {
      mids.resize(std::max<size_t>(1, static_cast<size_t>(mids.size() * scale)));
      for (int& n : mids) n = std::max(1, static_cast<int>(n * scale));
    }
  }

  for (uint32_t t = 0; t < top_count_; ++t) {
    const double mid_price_spread =
        std::sqrt(shape::kLeafLogPriceSpread * shape::kLeafLogPriceSpread - 0.4 * 0.4);
    for (size_t m = 0; m < leaves_per_mid[t].size(); ++m) {
      // Leaves of one second-level category have related prices (phones vs. phone cases differ
      // more than two kinds of phone case).
      const double mid_mu = shape::kLeafLogPriceMean + mid_price_spread * rng.Normal();
      for (int k = 0; k < leaves_per_mid[t][m]; ++k) {
        CatalogLeaf leaf;
        leaf.top = t;
        leaf.path =
            absl::StrCat("c", t + 1, ".c", t + 1, "_", m + 1, ".c", t + 1, "_", m + 1, "_", k + 1);
        leaf.number = absl::StrCat(leaves_.size() + 1);
        leaf.log_price_mu = mid_mu + 0.4 * rng.Normal();
        leaf.log_price_sigma =
            shape::kMinLeafLogPriceSigma +
            (shape::kMaxLeafLogPriceSigma - shape::kMinLeafLogPriceSigma) * rng.Uniform();
        leaf.premium_cents = static_cast<uint32_t>(std::min(
            1e9, std::round(
                     100 * std::exp(leaf.log_price_mu + shape::kPremiumZ * leaf.log_price_sigma))));
        leaves_.push_back(std::move(leaf));
      }
    }
  }
}

void SyntheticCatalog::BuildNames(Rng& rng) {
  WordMaker words;
  brand_names_.reserve(static_cast<size_t>(top_count_) * shape::kBrandsPerTop);
  for (size_t b = 0; b < static_cast<size_t>(top_count_) * shape::kBrandsPerTop; ++b) {
    brand_names_.push_back(words.Make(rng));
  }
  for (CatalogLeaf& leaf : leaves_) {
    // A partial shuffle of the top-level category's brand pool.
    std::vector<uint32_t> pool(shape::kBrandsPerTop);
    std::iota(pool.begin(), pool.end(), leaf.top * shape::kBrandsPerTop);
    const int n = static_cast<int>(rng.Between(shape::kMinBrandsPerLeaf, shape::kMaxBrandsPerLeaf));
    for (int i = 0; i < n; ++i) {
      std::swap(pool[i], pool[i + rng.Below(pool.size() - i)]);
      leaf.brands.push_back(pool[i]);
    }
    const int w = static_cast<int>(rng.Between(shape::kMinWordsPerLeaf, shape::kMaxWordsPerLeaf));
    for (int i = 0; i < w; ++i) leaf.words.push_back(words.Make(rng));
  }
}

void SyntheticCatalog::BuildItems(uint64_t items, Rng& rng) {
  const uint32_t leaf_count = static_cast<uint32_t>(leaves_.size());
  // Leaf sizes follow taobao's category Zipf over a random order of the leaves.
  std::vector<uint32_t> order(leaf_count);
  std::iota(order.begin(), order.end(), 0);
  for (uint32_t i = leaf_count; i > 1; --i) std::swap(order[i - 1], order[rng.Below(i)]);
  std::vector<double> size_weight(leaf_count);
  for (uint32_t j = 0; j < leaf_count; ++j) {
    size_weight[order[j]] = std::pow(j + 1.0, -shape::kLeafSizeZipf);
  }
  const AliasTable size_sampler(size_weight);

  // leaf_of_rank[r]: the leaf of the item with popularity rank r.
  std::vector<uint32_t> leaf_of_rank(items);
  std::vector<uint64_t> count(leaf_count, 0);
  for (uint64_t r = 0; r < items; ++r) {
    leaf_of_rank[r] = size_sampler.Sample(rng);
    ++count[leaf_of_rank[r]];
  }
  // Give empty leaves (every top-level category first) an item taken from the least popular end,
  // so that coverage does not disturb the head of the popularity curve.
  uint64_t tail = items;
  auto take_tail_item = [&](uint32_t leaf) {
    while (tail > 0) {
      const uint64_t r = --tail;
      if (count[leaf_of_rank[r]] > 1) {
        --count[leaf_of_rank[r]];
        leaf_of_rank[r] = leaf;
        ++count[leaf];
        return true;
      }
    }
    return false;
  };
  std::vector<uint64_t> top_items(top_count_, 0);
  for (uint32_t l = 0; l < leaf_count; ++l) top_items[leaves_[l].top] += count[l];
  for (uint32_t l = 0; l < leaf_count; ++l) {
    if (top_items[leaves_[l].top] == 0 && take_tail_item(l)) ++top_items[leaves_[l].top];
  }
  for (uint32_t l = 0; l < leaf_count; ++l) {
    if (count[l] == 0 && !take_tail_item(l)) break;
  }

  // Group items by leaf: item index = position in leaf order.
  uint32_t begin = 0;
  for (uint32_t l = 0; l < leaf_count; ++l) {
    leaves_[l].item_begin = leaves_[l].item_end = begin;
    begin += static_cast<uint32_t>(count[l]);
  }
  items_.resize(items);
  item_rank_.resize(items);
  leaf_begin_.resize(leaf_count);
  for (uint32_t l = 0; l < leaf_count; ++l) leaf_begin_[l] = leaves_[l].item_begin;
  for (uint64_t r = 0; r < items; ++r) {
    CatalogLeaf& leaf = leaves_[leaf_of_rank[r]];
    item_rank_[leaf.item_end++] = static_cast<uint32_t>(r);
  }

  // i -> (a * i + b) mod n is a bijection when gcd(a, n) = 1; a near n / phi scatters neighbours.
  number_multiplier_ = static_cast<uint64_t>(items * 0.6180339887) + rng.Below(items / 8 + 1);
  while (std::gcd(number_multiplier_, items) != 1) ++number_multiplier_;
  number_offset_ = rng.Below(items);
  std::vector<double> leaf_weight(leaf_count, 0.0);
  item_sampler_.resize(leaf_count);
  std::vector<double> weights;
  for (uint32_t l = 0; l < leaf_count; ++l) {
    const CatalogLeaf& leaf = leaves_[l];
    weights.clear();
    for (uint32_t i = leaf.item_begin; i < leaf.item_end; ++i) {
      const double cents = std::round(100 * rng.LogNormal(leaf.log_price_mu, leaf.log_price_sigma));
      items_[i].price_cents = static_cast<uint32_t>(std::clamp(cents, 1.0, 1e9));
      // Brands are skewed too: the leaf's first brands carry most of its items.
      const double u = rng.Uniform();
      items_[i].brand = rng.Bernoulli(shape::kUnbrandedItemShare)
                            ? kNoBrand
                            : leaf.brands[static_cast<size_t>(u * u * leaf.brands.size())];
      weights.push_back(std::pow(item_rank_[i] + 1.0, -zipf_exponent_));
      leaf_weight[l] += weights.back();
    }
    // Items of a leaf are in rank order, so the first kHeadItems are its most popular.
    const size_t head = std::min<size_t>(weights.size(), kHeadItems);
    const std::span<const double> all(weights);
    double head_weight = 0;
    for (size_t i = 0; i < head; ++i) head_weight += weights[i];
    LeafSampler& sampler = item_sampler_[l];
    sampler.head = AliasTable(all.first(head));
    sampler.tail = AliasTable(all.subspan(head));
    const double p_head = leaf_weight[l] > 0 ? head_weight / leaf_weight[l] : 1.0;
    sampler.head_threshold =
        p_head >= 1.0 ? ~uint64_t{0} : static_cast<uint64_t>(p_head * 0x1.0p64);
  }
  leaf_sampler_ = AliasTable(leaf_weight);
}

size_t SyntheticCatalog::MemoryBytes() const {
  size_t bytes = leaves_.capacity() * sizeof(CatalogLeaf) + leaf_sampler_.MemoryBytes();
  for (const CatalogLeaf& leaf : leaves_) {
    bytes += leaf.path.capacity() + leaf.number.capacity() + leaf.brands.capacity() * 4;
    for (const std::string& w : leaf.words) bytes += sizeof w + w.capacity();
  }
  for (const LeafSampler& s : item_sampler_) {
    bytes += sizeof s + s.head.MemoryBytes() + s.tail.MemoryBytes();
  }
  for (const std::string& b : brand_names_) bytes += sizeof b + b.capacity();
  bytes += items_.capacity() * sizeof(Item) +
           (item_rank_.capacity() + leaf_begin_.capacity()) * sizeof(uint32_t);
  return bytes;
}

}  // namespace persona::gen
