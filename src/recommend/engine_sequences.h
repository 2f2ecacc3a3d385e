// Training sequences from a data directory's live profiles: each user's recent item sequence
// (ItemSequence, oldest first), for `persona train sasrec --data DIR`.
#pragma once

#include <cstdint>

#include "engine/engine.h"
#include "eval/sequence_data.h"

namespace persona {

// Every user's recent items as a SequenceDataset whose item names are the shop's item ids.
// Consecutive events on the same item (view, then cart, then purchase) count once. Users with
// fewer than `min_length` items after that are skipped (they give no training target).
SequenceDataset SequencesFromEngine(const Engine& engine, uint32_t min_length = 3);

}  // namespace persona
