#include "engine/dedup_window.h"

#include <algorithm>
#include <cstring>

#include "common/varint.h"

namespace persona {

uint32_t DedupWindow::SecondsUp(int64_t ts_ms) {
  if (ts_ms <= 0) return 0;
  const int64_t s = ts_ms / 1000 + (ts_ms % 1000 != 0);
  return s > int64_t{UINT32_MAX} ? UINT32_MAX : static_cast<uint32_t>(s);
}

bool DedupWindow::CheckAndInsert(uint64_t id_hash, int64_t ts_ms, int64_t watermark_ms) {
  auto [it, inserted] = seen_.try_emplace(id_hash, Make(ts_ms));
  if (!inserted) {
    if (!Expired(it->second, watermark_ms)) return true;
    it->second = Make(ts_ms);  // forgotten already: accept it anew
  }
  ++accepted_;
  MaybeSweep(watermark_ms);
  return false;
}

void DedupWindow::Insert(uint64_t id_hash, int64_t ts_ms, int64_t watermark_ms) {
  seen_.insert_or_assign(id_hash, Make(ts_ms));
  ++accepted_;
  MaybeSweep(watermark_ms);
}

void DedupWindow::MaybeSweep(int64_t watermark_ms) {
  if (seen_.size() < sweep_at_) return;
  absl::erase_if(seen_, [&](const auto& kv) { return Expired(kv.second, watermark_ms); });
  // Next sweep when the map doubles from what survived: each sweep is paid for by as many inserts.
  sweep_at_ = std::max<size_t>(1 << 16, seen_.size() * 2);
}

void DedupWindow::Encode(std::string* out) const {
  AppendVarint64(out, accepted_);
  AppendVarint64(out, seen_.size());
  for (const auto& [id, s] : seen_) {
    out->append(reinterpret_cast<const char*>(&id), sizeof id);
    // The format of the 64-bit entries: time in ms, age in arrivals.
    AppendVarint64(out, uint64_t{s.ts_s} * 1000);
    AppendVarint64(out, static_cast<uint32_t>(static_cast<uint32_t>(accepted_) - s.arrival));
  }
}

bool DedupWindow::Decode(std::string_view* in) {
  seen_.clear();
  uint64_t n;
  if (!ReadVarint64(in, &accepted_) || !ReadVarint64(in, &n) || n > in->size()) return false;
  seen_.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    if (in->size() < sizeof(uint64_t)) return false;
    uint64_t id;
    std::memcpy(&id, in->data(), sizeof id);
    in->remove_prefix(sizeof id);
    uint64_t ts, age;
    if (!ReadVarint64(in, &ts) || !ReadVarint64(in, &age) || age > accepted_) return false;
    // Times were written as the two's complement of int64 milliseconds.
    seen_[id] = Seen{SecondsUp(static_cast<int64_t>(ts)), static_cast<uint32_t>(accepted_ - age)};
  }
  sweep_at_ = std::max<size_t>(1 << 16, seen_.size() * 2);
  return true;
}

}  // namespace persona
