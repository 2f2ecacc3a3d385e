// A hook for state kept about whole profiles rather than single events (saved audiences): the
// engine calls it once per profile a batch changed, after every event of the batch was applied
// and the tag rules were evaluated, and when a profile's attributes change or it is erased. Each
// profile carries 64 bits of listener-owned state ("membership") in the engine's entry, so a
// listener can tell what changed without a lookup of its own.
#pragma once

#include <cstdint>
#include <string_view>

#include "profile/profile.h"
#include "profile/profile_context.h"

namespace persona {

class ProfileChangeListener {
 public:
  virtual ~ProfileChangeListener() = default;
  // Runs on the writer thread of `partition` with the user's shard lock held; `profile` is the
  // state after the batch (tags evaluated) and `now_ms` the engine's "now" at that point.
  // `membership` is this profile's listener-owned bits (0 for a new profile); the listener may
  // rewrite them. Called concurrently for different partitions, never concurrently for the same
  // one. Must be quick (it is on the ingest path) and must not call back into the engine.
  virtual void OnProfileChanged(uint32_t partition, std::string_view user_id,
                                const Profile& profile, const ProfileContext& ctx, int64_t now_ms,
                                uint64_t& membership) = 0;
  // The profile of `user_id` was erased; `membership` is its bits at that moment. Same thread
  // rules as OnProfileChanged (writer thread, shard lock held).
  virtual void OnProfileErased(uint32_t partition, std::string_view user_id,
                               uint64_t membership) = 0;
};

// One profile as a scan sees it (Engine::ScanProfiles): valid only during the callback, which
// runs with the profile's shard lock held.
struct ProfileScanItem {
  uint32_t partition;
  std::string_view user_id;
  const Profile& profile;
  const ProfileContext& ctx;
  uint64_t& membership;  // the ProfileChangeListener's bits; a scan may rewrite them
};

}  // namespace persona
