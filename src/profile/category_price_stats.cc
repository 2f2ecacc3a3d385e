#include "profile/category_price_stats.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/varint.h"
#include "profile/compact_bytes.h"

namespace persona {
namespace {

constexpr uint64_t kFormatVersion = 1;

// Debian's Abseil has its own string_view type; heterogeneous lookup needs that one.
absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

int CategoryPriceStats::BucketOf(double price) {
  if (!(price >= 0x1p-7)) return 0;
  const double position = (std::log2(price) + 7.0) * 4.0;
  return static_cast<int>(std::min<double>(kBuckets - 1, std::floor(position)));
}

void CategoryPriceStats::Add(std::string_view category, double price) {
  if (!(price >= 0) || !std::isfinite(price)) return;
  auto it = histograms_.find(AbslView(category));
  if (it == histograms_.end()) {
    it = histograms_.emplace(std::string(category), std::make_unique<Histogram>()).first;
  }
  Histogram& h = *it->second;
  const int b = BucketOf(price);
  if (h.counts[b] == UINT32_MAX) {
    h.total = 0;
    for (uint32_t& c : h.counts) h.total += (c >>= 1);
  }
  ++h.counts[b];
  ++h.total;
}

std::optional<double> CategoryPriceStats::Percentile(std::string_view category,
                                                     double price) const {
  if (!(price >= 0) || !std::isfinite(price)) return std::nullopt;
  auto it = histograms_.find(AbslView(category));
  if (it == histograms_.end() || it->second->total < kMinSamples) return std::nullopt;
  const Histogram& h = *it->second;
  const int b = BucketOf(price);
  uint64_t below = 0;
  for (int i = 0; i < b; ++i) below += h.counts[i];
  return (static_cast<double>(below) + 0.5 * h.counts[b]) / static_cast<double>(h.total);
}

uint64_t CategoryPriceStats::count(std::string_view category) const {
  auto it = histograms_.find(AbslView(category));
  return it == histograms_.end() ? 0 : it->second->total;
}

void CategoryPriceStats::Encode(std::string* out) const {
  std::vector<const std::pair<const std::string, std::unique_ptr<Histogram>>*> sorted;
  sorted.reserve(histograms_.size());
  for (const auto& entry : histograms_) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  AppendVarint64(out, kFormatVersion);
  AppendVarint64(out, sorted.size());
  for (const auto* entry : sorted) {
    AppendVarint64(out, entry->first.size());
    out->append(entry->first);
    const Histogram& h = *entry->second;
    uint64_t nonzero = 0;
    for (uint32_t c : h.counts) nonzero += c != 0;
    AppendVarint64(out, nonzero);
    for (int i = 0; i < kBuckets; ++i) {
      if (h.counts[i] == 0) continue;
      AppendVarint64(out, static_cast<uint64_t>(i));
      AppendVarint64(out, h.counts[i]);
    }
  }
}

absl::Status CategoryPriceStats::Decode(std::string_view in) {
  auto corrupt = [](std::string_view what) {
    return absl::DataLossError(std::string("category price stats: ") + std::string(what));
  };
  uint64_t version, n;
  if (!ReadVarint64(&in, &version) || version != kFormatVersion) {
    return corrupt("unknown format version");
  }
  if (!ReadVarint64(&in, &n) || n > in.size()) return corrupt("bad category count");
  absl::flat_hash_map<std::string, std::unique_ptr<Histogram>> decoded;
  decoded.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t length, nonzero;
    if (!ReadVarint64(&in, &length) || length > in.size()) return corrupt("truncated category");
    std::string category(in.substr(0, length));
    in.remove_prefix(length);
    if (!ReadVarint64(&in, &nonzero) || nonzero > kBuckets) return corrupt("bad bucket count");
    auto h = std::make_unique<Histogram>();
    int64_t previous = -1;
    for (uint64_t j = 0; j < nonzero; ++j) {
      uint64_t bucket, count;
      if (!ReadVarint64(&in, &bucket) || !ReadVarint64(&in, &count)) {
        return corrupt("truncated bucket");
      }
      if (static_cast<int64_t>(bucket) <= previous || bucket >= kBuckets || count == 0 ||
          count > UINT32_MAX) {
        return corrupt("bad bucket");
      }
      previous = static_cast<int64_t>(bucket);
      h->counts[bucket] = static_cast<uint32_t>(count);
      h->total += count;
    }
    if (!decoded.emplace(std::move(category), std::move(h)).second) {
      return corrupt("duplicate category");
    }
  }
  if (!in.empty()) return corrupt("trailing bytes");
  histograms_ = std::move(decoded);
  return absl::OkStatus();
}

size_t CategoryPriceStats::MemoryBytes() const {
  size_t bytes = histograms_.capacity() * (sizeof(std::string) + sizeof(void*) + 1);
  for (const auto& [category, h] : histograms_) {
    bytes += MallocChunkBytes(sizeof(Histogram));
    if (category.capacity() > 15) bytes += MallocChunkBytes(category.capacity() + 1);
  }
  return bytes;
}

}  // namespace persona
