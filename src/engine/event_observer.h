// A hook for state derived from the whole event stream rather than one user's profile (trending,
// item-to-item co-occurrence, A/B attribution): the engine calls it for every accepted event right
// after the event was applied to its user's profile.
#pragma once

#include <cstdint>

#include "event/event.h"
#include "profile/profile.h"
#include "profile/profile_context.h"

namespace persona {

class EventObserver {
 public:
  virtual ~EventObserver() = default;
  // Runs on the writer thread of `partition` with the user's shard lock held: `profile` already
  // includes `event` (its sequence ends with the event when it names an item) and `ctx` is that
  // partition's context (its pool codes resolve the sequence's items). Called concurrently for
  // different partitions, never concurrently for the same one. Must be quick and must not call
  // back into the engine.
  virtual void OnEvent(uint32_t partition, const Event& event, const Profile& profile,
                       const ProfileContext& ctx) = 0;
};

}  // namespace persona
