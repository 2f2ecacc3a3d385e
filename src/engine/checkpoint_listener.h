// What a partition's checkpoint hands to a listener that mirrors it elsewhere (the Kafka changelog,
// kafka/changelog.h), and what a restore from such a mirror installs (Engine::RestorePartition).
//
// A checkpoint of partition p calls, on p's writer thread and after the local commit:
//   Begin(p, full) · Erased(p, users)* · Profiles(p, chunk)* · Commit(p, image)
// `full` (asked for through NeedsFull) carries every profile of the partition, otherwise only those
// changed since the previous checkpoint, and the users erased since it. Commit gets the partition
// meta and every operator's state. A listener that fails to publish one checkpoint answers
// NeedsFull at the next one, so what it holds is always one whole checkpoint. Only checkpoints of
// a partition this instance owns are published (never those of a foreign partition).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace persona {

using NamedBlobs = std::span<const std::pair<std::string_view, std::string_view>>;

// One partition's checkpointed state as a mirror holds it.
struct PartitionImage {
  uint64_t seq = 0;          // the writer's checkpoint seq (its own log's numbering)
  int64_t source_next = -1;  // the source offset the state covers: consumption resumes there
  std::string meta;          // the partition meta blob (Partition::EncodeMeta)
  std::vector<std::pair<std::string, std::string>> states;    // operator name, SaveState bytes
  std::vector<std::pair<std::string, std::string>> profiles;  // user id, EncodeProfile bytes
};

class CheckpointListener {
 public:
  virtual ~CheckpointListener() = default;
  virtual bool NeedsFull(uint32_t partition) = 0;
  virtual void Begin(uint32_t partition, bool full) = 0;
  virtual void Erased(uint32_t partition, std::span<const std::string> users) = 0;
  virtual void Profiles(uint32_t partition, NamedBlobs user_blobs) = 0;
  // `states` are the operators' SaveState bytes (without the engine's seq prefix).
  virtual void Commit(uint32_t partition, uint64_t seq, int64_t source_next, std::string_view meta,
                      NamedBlobs states) = 0;
};

}  // namespace persona
