// The engine's statistics as one JSON object (`persona stats`, GET /v1/stats): per partition
// (profiles, outcomes, log and checkpoint positions, queue, memory) and totals.
#pragma once

#include <cstdint>
#include <string>

#include "engine/engine.h"

namespace persona {

// Walks every profile for memory figures (each shard lock in turn) and counts dead letters with a
// scan: an operator's call, not a hot path.
std::string EngineStatsJson(Engine& engine);

// The process's resident set, from /proc/self/statm (0 where unavailable).
uint64_t ResidentBytes();

}  // namespace persona
