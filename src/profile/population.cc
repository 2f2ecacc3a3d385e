#include "profile/population.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "common/time_util.h"
#include "profile/profile.h"

namespace persona {
namespace {

std::unique_ptr<std::atomic<uint32_t>[]> Counters(size_t n) {
  // std::atomic<uint32_t>[] value-initialises to zero.
  return std::make_unique<std::atomic<uint32_t>[]>(n);
}

uint64_t SumRange(const std::atomic<uint32_t>* counters, int begin, int end) {
  uint64_t sum = 0;
  for (int i = begin; i < end; ++i) sum += counters[i].load(std::memory_order_relaxed);
  return sum;
}

}  // namespace

Population::Population()
    : days_(Counters(kDays)),
      coarse_(Counters(kDays / kDaysPerCoarse)),
      orders_(Counters(kOrderBuckets)),
      money_(Counters(kMoneyBuckets)) {}

int Population::DayBucket(int64_t ms) {
  const int64_t day = FloorDiv(ms - kEpoch2000Ms, kDayMs);
  return static_cast<int>(std::clamp<int64_t>(day, 0, kDays - 1));
}

int Population::OrderBucket(uint32_t orders) {
  if (orders < 32) return static_cast<int>(orders);
  const int e = std::bit_width(orders) - 1;  // >= 5
  return 32 + (e - 5) * 8 + static_cast<int>((orders >> (e - 3)) & 7);
}

int Population::MoneyBucket(double monetary) {
  if (!(monetary > 0)) return 0;
  const double position = std::floor((std::log2(monetary) + 10.0) * 8.0) + 1.0;
  return static_cast<int>(std::clamp<double>(position, 1, kMoneyBuckets - 1));
}

void Population::Change(const RfmInputs& in, int delta) {
  if (!in.buyer) return;
  const int day = DayBucket(in.last_purchase_ms);
  // Relaxed is enough: counters are independent statistics, not a protocol between threads.
  if (delta > 0) {
    days_[day].fetch_add(1, std::memory_order_relaxed);
    coarse_[day / kDaysPerCoarse].fetch_add(1, std::memory_order_relaxed);
    orders_[OrderBucket(in.orders)].fetch_add(1, std::memory_order_relaxed);
    money_[MoneyBucket(in.monetary)].fetch_add(1, std::memory_order_relaxed);
    buyers_.fetch_add(1, std::memory_order_relaxed);
  } else {
    days_[day].fetch_sub(1, std::memory_order_relaxed);
    coarse_[day / kDaysPerCoarse].fetch_sub(1, std::memory_order_relaxed);
    orders_[OrderBucket(in.orders)].fetch_sub(1, std::memory_order_relaxed);
    money_[MoneyBucket(in.monetary)].fetch_sub(1, std::memory_order_relaxed);
    buyers_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void Population::Add(const RfmInputs& in) { Change(in, +1); }
void Population::Remove(const RfmInputs& in) { Change(in, -1); }
void Population::Add(const Profile& p) { Add(p.rfm_inputs()); }
void Population::Remove(const Profile& p) { Remove(p.rfm_inputs()); }

void Population::Update(const RfmInputs& before, const RfmInputs& after) {
  if (before == after) return;
  Remove(before);
  Add(after);
}

int Population::Score(uint64_t below, uint64_t same) const {
  const uint64_t n = buyers();
  if (n == 0) return 3;
  const double rank =
      (static_cast<double>(below) + 0.5 * static_cast<double>(same)) / static_cast<double>(n);
  return 1 + static_cast<int>(std::clamp(std::floor(rank * 5.0), 0.0, 4.0));
}

int Population::RecencyScore(int64_t last_purchase_ms, int64_t now_ms) const {
  (void)now_ms;
  if (last_purchase_ms <= 0) return 0;
  const int day = DayBucket(last_purchase_ms);
  const int coarse = day / kDaysPerCoarse;
  const uint64_t below =
      SumRange(coarse_.get(), 0, coarse) + SumRange(days_.get(), coarse * kDaysPerCoarse, day);
  return Score(below, days_[day].load(std::memory_order_relaxed));
}

int Population::FrequencyScore(uint32_t orders) const {
  if (orders == 0) return 0;
  const int b = OrderBucket(orders);
  return Score(SumRange(orders_.get(), 0, b), orders_[b].load(std::memory_order_relaxed));
}

int Population::MonetaryScore(double monetary) const {
  const int b = MoneyBucket(monetary);
  return Score(SumRange(money_.get(), 0, b), money_[b].load(std::memory_order_relaxed));
}

}  // namespace persona
