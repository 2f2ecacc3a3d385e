// The numeric feature vector of one profile at a point in time, the input of the gradient-boosted
// propensity and churn models. Every value is a plain function of the profile and `now`, so the
// same code serves training rows (replayed profiles at a cutoff) and live predictions (the live
// profile at the watermark): the definition cannot drift between the two. Undefined values
// (rates without a denominator, a price index without priced events) are NaN, which the trees
// route down their learned default branch.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "profile/profile.h"
#include "profile/profile_context.h"

namespace persona {

// Feature names, in vector order (about 30: counts, 1/7/30-day windows, recency, sessions,
// funnel rates, RFM, price index, interest concentration, active-hour spread, ...).
const std::vector<std::string>& ProfileVectorNames();

// Fills `out` (size ProfileVectorNames().size()) with the features of `profile` at `now_ms`.
// Safe on reader threads (reads the pool only through Get).
void ExtractProfileVector(const Profile& profile, const ProfileContext& ctx, int64_t now_ms,
                          std::span<float> out);

}  // namespace persona
