// Binary encoding of a profile for checkpoints: self-contained (pool codes are resolved to
// strings, so a blob decodes into any partition's pool), versioned, deterministic (the same
// profile always encodes to the same bytes) and checksummed. The layout, version 1:
//
//   "PRF" 0x01                       magic and format version
//   varint n, n x (varint len, bytes) string table: every item/category/brand/keyword the
//                                     profile references, in first-use order
//   body                              fields in declaration order; references into the string
//                                     table are varint indexes (see profile_codec.cc for the
//                                     field-by-field list; docs/profile.md summarises it)
//   fixed32 checksum                  low 32 bits of xxHash64 of everything before it
//
// Integers are varints (ZigZag for signed ones), doubles and floats their IEEE-754 bits, little
// endian. A new field means a new version; DecodeProfile keeps reading older versions.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "profile/profile.h"
#include "profile/profile_context.h"

namespace persona {

// Appends the encoding of `p` to `out`. Resolves codes through ctx.pool.
void EncodeProfile(const Profile& p, const ProfileContext& ctx, std::string* out);

// Replaces *p with the profile encoded in `in`, interning its strings into ctx.pool. Truncated,
// corrupt or unknown-version input returns DataLoss and leaves *p unchanged; it never reads out
// of bounds. Tables larger than the configured capacities are cut to them (smallest scores
// dropped, counted as evictions). Does not touch ctx.population: the caller adds the profile.
absl::Status DecodeProfile(std::string_view in, ProfileContext& ctx, Profile* p);

// Sets the timeline head stored in an encoded profile (and its checksum) without decoding it: the
// same bytes EncodeProfile would give for the profile with that head. DataLoss for a blob that is
// not a valid encoding.
absl::Status SetEncodedTimelineHead(std::string* blob, uint64_t head);

}  // namespace persona
