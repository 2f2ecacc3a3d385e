// A hook for profile features that come from trained models rather than from the event alone
// (review sentiment, K-means segment, anomaly flags): the engine calls it for every accepted
// event right after the event was applied to its user's profile, before tag rules and the
// EventObserver run, so both see the enriched profile. What it writes is persisted with the
// profile like any other feature.
#pragma once

#include <cstdint>

#include "event/event.h"
#include "profile/profile.h"
#include "profile/profile_context.h"

namespace persona {

class ProfileEnricher {
 public:
  virtual ~ProfileEnricher() = default;
  // Runs on the writer thread of `partition` with the user's shard lock held; `profile` already
  // includes `event`. Called concurrently for different partitions, never concurrently for the
  // same one. Must be quick (it is on the ingest path) and must not call back into the engine.
  // Events replayed from the log at Engine::Open run before any enricher can be attached, so the
  // profiles they touch are enriched from their next event on.
  virtual void Enrich(uint32_t partition, const Event& event, Profile& profile,
                      ProfileContext& ctx) = 0;
  // Runs just before `event` is applied to `profile` (an empty profile for a new user), on the
  // same thread and under the same lock as the Enrich call that follows, so an enricher that keeps
  // population statistics can take the profile's "before" state.
  virtual void BeforeApply(uint32_t partition, const Event& event, const Profile& profile) {
    (void)partition;
    (void)event;
    (void)profile;
  }
};

}  // namespace persona
