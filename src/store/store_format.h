// The byte layout of every key and value the Store writes to RocksDB, in one place. The format is
// persistent: changing any function here changes the meaning of existing data directories.
// docs/checkpoint_format.md describes the same layout in prose.
//
// Integers in keys are big-endian so that RocksDB's bytewise order equals numeric order: the log
// of a partition is a contiguous, seq-ordered key range, and dead letters sort by time.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace persona {

// Partitions are a u16 in keys; 65535 itself is kept free so that "partition + 1" (the exclusive
// upper bound of a partition's key range) is always encodable.
inline constexpr uint32_t kMaxPartitions = 65535;

inline constexpr size_t kPartitionPrefixSize = 2;
inline constexpr size_t kLogKeySize = 10;         // [partition u16 BE][seq u64 BE]
inline constexpr size_t kLabelSize = 8;           // profile value prefix: [label_seq u64 BE]
inline constexpr size_t kCheckpointSeqSize = 8;   // checkpoint value prefix: [seq u64 BE]
inline constexpr size_t kDeadLetterKeySize = 16;  // [received_ms u64 BE][counter u64 BE]

// Column family names.
inline constexpr std::string_view kLogFamily = "log";
inline constexpr std::string_view kProfilesFamily = "profiles";
inline constexpr std::string_view kMetaFamily = "meta";
inline constexpr std::string_view kDeadLetterFamily = "deadletter";

// Meta key under which the store records the partition count it was created with (decimal text).
inline constexpr std::string_view kPartitionCountKey = "config.partitions";
// Meta keys starting with this are checkpoints ("ckpt/<partition in decimal>").
inline constexpr std::string_view kCheckpointKeyPrefix = "ckpt/";

void PutFixed64BE(uint64_t v, char* out);
uint64_t GetFixed64BE(const char* in);
void AppendFixed64BE(uint64_t v, std::string* out);

using PartitionPrefix = std::array<char, kPartitionPrefixSize>;
using LogKey = std::array<char, kLogKeySize>;
using DeadLetterKey = std::array<char, kDeadLetterKeySize>;

// The 2-byte prefix shared by a partition's log and profile keys. `partition` must be <= 65535.
PartitionPrefix EncodePartitionPrefix(uint32_t partition);
LogKey EncodeLogKey(uint32_t partition, uint64_t seq);

struct LogKeyParts {
  uint32_t partition;
  uint64_t seq;
};
// nullopt unless `key` is exactly kLogKeySize bytes.
std::optional<LogKeyParts> DecodeLogKey(std::string_view key);

// Profiles are versioned by checkpoint generation: [partition u16 BE][generation u64 BE][user_id
// bytes], the user id being the rest of the key (any bytes allowed). A checkpoint at seq S writes
// the profiles it changed under generation S, so the committed state (every profile at its newest
// generation <= the committed seq) is never overwritten before the commit that replaces it.
inline constexpr size_t kProfileKeyPrefixSize = kPartitionPrefixSize + 8;
std::string EncodeProfileKey(uint32_t partition, uint64_t generation, std::string_view user_id);
// [partition u16 BE][generation u64 BE]: the first key of a generation (a range bound).
std::string EncodeProfileGenerationPrefix(uint32_t partition, uint64_t generation);
struct ProfileKeyParts {
  uint64_t generation;
  std::string_view user_id;
};
// nullopt if the key is shorter than the partition prefix and generation.
std::optional<ProfileKeyParts> DecodeProfileKey(std::string_view key);

// [label_seq u64 BE][profile blob]: the blob's state reflects the log up to label_seq.
std::string EncodeProfileValue(uint64_t label_seq, std::string_view blob);
struct ProfileValueParts {
  uint64_t label_seq;
  std::string_view blob;  // a view into the decoded value
};
// nullopt if `value` is shorter than the label.
std::optional<ProfileValueParts> DecodeProfileValue(std::string_view value);

// Meta key recording the store format (decimal text); absent in stores of format 1.
inline constexpr std::string_view kFormatKey = "config.format";
inline constexpr int kStoreFormat = 2;
// "attr/" + [partition u16 BE] + user id: the user's attribute object (JSON), written when it
// changes (attributes are not events, so they are not in the log).
inline constexpr std::string_view kAttributesKeyPrefix = "attr/";
std::string EncodeAttributesKey(uint32_t partition, std::string_view user_id);
// "op/<partition>/<operator name>": an operator's checkpointed state, committed with "ckpt/".
inline constexpr std::string_view kOperatorStateKeyPrefix = "op/";
std::string EncodeOperatorStateKey(uint32_t partition, std::string_view name);

// "src/<partition>": the next offset of the partition's external source (the Kafka partition it
// consumes) not yet in the log, a varint, written atomically with the log record or dead letters
// that took the offsets before it. Recovery resumes the source there.
inline constexpr std::string_view kSourceOffsetKeyPrefix = "src/";
std::string EncodeSourceOffsetKey(uint32_t partition);
// Meta keys with settings a data directory keeps for life ("config.<name>", text).
inline constexpr std::string_view kConfigKeyPrefix = "config.";

// "ckpt/<partition>" and its value [seq u64 BE][meta blob].
std::string EncodeCheckpointKey(uint32_t partition);
std::string EncodeCheckpointValue(uint64_t seq, std::string_view meta_blob);
struct CheckpointValueParts {
  uint64_t seq;
  std::string_view meta_blob;
};
std::optional<CheckpointValueParts> DecodeCheckpointValue(std::string_view value);

// Dead letters: [received_ms u64 BE][counter u64 BE]. Negative times (a clock before 1970) are
// clamped to 0 in the key so that they sort first instead of last; the value keeps the truth.
DeadLetterKey EncodeDeadLetterKey(int64_t received_ms, uint64_t counter);
struct DeadLetterKeyParts {
  uint64_t received_ms;
  uint64_t counter;
};
std::optional<DeadLetterKeyParts> DecodeDeadLetterKey(std::string_view key);

// Lower-case hex of `bytes` (dead letter ids are their key in hex: ordered like the keys).
std::string HexEncode(std::string_view bytes);
// Inverse of HexEncode (either case); nullopt on an odd length or a non-hex digit.
std::optional<std::string> HexDecode(std::string_view hex);

}  // namespace persona
