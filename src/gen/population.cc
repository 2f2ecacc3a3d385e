#include "gen/population.h"

#include <algorithm>
#include <cmath>
#include <span>

#include "common/json_writer.h"
#include "gen/random.h"

namespace persona::gen {
namespace {

uint32_t DrawIndex(Rng& rng, std::span<const double> shares) {
  double u = rng.Uniform();
  for (size_t i = 0; i + 1 < shares.size(); ++i) {
    if (u < shares[i]) return static_cast<uint32_t>(i);
    u -= shares[i];
  }
  return static_cast<uint32_t>(shares.size() - 1);
}

// Turns a user's expected event count into session timing (see gen_shape for the constants).
void PlanTiming(double span_ms, PlannedUser& user, Rng& rng) {
  const double events = std::max<double>(user.expected_events, 1e-6);
  if (user.role == UserRole::kBot) {
    user.bot_period_ms =
        static_cast<uint32_t>(rng.Between(shape::kMinBotPeriodMs, shape::kMaxBotPeriodMs));
    user.bot_burst = static_cast<uint32_t>(
        std::clamp<double>(events / 8, shape::kMinBotBurst, shape::kMaxBotBurst));
    const double cycle = span_ms * user.bot_burst / events;
    const double busy =
        shape::kSessionGapMs + static_cast<double>(user.bot_burst) * user.bot_period_ms;
    user.mean_cycle_ms = static_cast<float>(cycle);
    user.mean_idle_ms = static_cast<float>(std::max(cycle - busy, 10.0 * kMinuteMs));
    return;
  }
  double cycle = span_ms * shape::kMeanSessionLength / events;
  if (cycle < shape::kMinMeanSessionCycleMs) {
    user.session_scale = static_cast<float>(shape::kMinMeanSessionCycleMs / cycle);
    cycle = shape::kMinMeanSessionCycleMs;
  }
  // A session lasts about (length - 1) gaps; longer sessions of heavy users have shorter gaps,
  // so a session's duration does not depend on the scale.
  const double session_ms = (shape::kMeanSessionLength - 1) * shape::kMeanInSessionGapMs;
  user.mean_cycle_ms = static_cast<float>(cycle);
  user.mean_idle_ms =
      static_cast<float>(std::max(cycle - shape::kSessionGapMs - session_ms, 10.0 * kMinuteMs));
}

}  // namespace

std::string_view UserRoleName(UserRole role) {
  switch (role) {
    case UserRole::kBrowser:
      return "browser";
    case UserRole::kShift:
      return "shift";
    case UserRole::kHighSpender:
      return "high_spender";
    case UserRole::kBot:
      return "bot";
  }
  return "browser";
}

SyntheticPopulation::SyntheticPopulation(const GenOptions& options,
                                         const SyntheticCatalog& catalog) {
  Rng rng(SplitMix64(options.seed ^ 0x706f70756c617465ULL));  // "populate"
  users_.resize(options.users);
  std::vector<double> activity(options.users);
  double total_activity = 0;
  const double span = static_cast<double>(options.span_ms);
  for (uint32_t u = 0; u < users_.size(); ++u) {
    PlannedUser& user = users_[u];
    const double r = rng.Uniform();
    if (r < options.bot_fraction) {
      user.role = UserRole::kBot;
    } else if (r < options.bot_fraction + options.shift_fraction) {
      user.role = UserRole::kShift;
    } else if (r < options.bot_fraction + options.shift_fraction + options.high_spender_fraction) {
      user.role = UserRole::kHighSpender;
    }
    double a =
        rng.LogNormal(-shape::kActivitySigma * shape::kActivitySigma / 2, shape::kActivitySigma);
    switch (user.role) {
      case UserRole::kBrowser:
        break;
      case UserRole::kShift:
        a = std::max(a, shape::kShiftMinActivity);
        break;
      case UserRole::kHighSpender:
        a = std::max(a, shape::kHighSpenderMinActivity);
        break;
      case UserRole::kBot:
        a = shape::kBotActivity;
        break;
    }
    activity[u] = a;
    total_activity += a;

    user.device = user.role == UserRole::kBot
                      ? 2  // desktop
                      : static_cast<uint8_t>(DrawIndex(rng, shape::kDeviceShare));
    for (uint32_t& leaf : user.favourite_leaves) leaf = catalog.SampleLeaf(rng);
    if (user.role == UserRole::kShift) {
      user.shift_from_leaf = catalog.SampleLeaf(rng);
      // Another top-level branch; every top-level category has items, so this ends quickly.
      do {
        user.shift_to_leaf = catalog.SampleLeaf(rng);
      } while (catalog.leaf(user.shift_to_leaf).top == catalog.leaf(user.shift_from_leaf).top);
      const double at =
          shape::kShiftEarliest + (shape::kShiftLatest - shape::kShiftEarliest) * rng.Uniform();
      user.shift_at_ms = options.start_ms + static_cast<int64_t>(at * span);
    }
  }
  for (uint32_t u = 0; u < users_.size(); ++u) {
    users_[u].expected_events =
        static_cast<float>(static_cast<double>(options.events) * activity[u] / total_activity);
    PlanTiming(span, users_[u], rng);
  }
}

void SyntheticPopulation::AppendGroundTruth(uint32_t u, const SyntheticCatalog& catalog,
                                            std::string* out) const {
  const PlannedUser& user = users_[u];
  if (user.role == UserRole::kBrowser) return;
  JsonWriter json;
  json.BeginObject();
  json.Key("user_id").String(std::to_string(UserNumber(u)));
  json.Key("kind").String(UserRoleName(user.role));
  if (user.role == UserRole::kShift) {
    json.Key("from").String(catalog.leaf(user.shift_from_leaf).path);
    json.Key("to").String(catalog.leaf(user.shift_to_leaf).path);
    json.Key("at_ms").Int(user.shift_at_ms);
  }
  json.EndObject();
  out->append(json.str());
  out->push_back('\n');
}

}  // namespace persona::gen
