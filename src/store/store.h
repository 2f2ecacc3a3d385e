// Store: Persona's durable state on one RocksDB instance at <data_dir>/db. It holds, per partition,
// the log of accepted event batches and the checkpointed profiles, plus checkpoint metadata, small
// named values and the dead letters. Byte layouts: store/store_format.h and
// docs/checkpoint_format.md (which also argues why the checkpoint protocol is crash-safe).
//
// Threading: every method may be called from any thread at any time; RocksDB serialises writers
// internally and batches concurrent ones into one WAL write + fsync (group commit), so partition
// threads appending at once share fsyncs. The Store adds no lock of its own. LogIterators must be
// destroyed before the Store.
//
// RocksDB tuning. Measured with bench/store_append_bench.cc (64 KiB text-like records, release
// build) on the 2-core dev VM while other engineers' builds ran (load ~8): runs of the same
// configuration varied by up to 2x, so only large effects count. Roughly: Append sync=false
// ~0.6-1.2 ms (55-135 MB/s); sync=true 1 thread 3.4-6.4 ms (one fsync each); sync=true with 4
// partition threads 0.5-2 ms per append (group commit shares fsyncs: 3-9x more appends/s);
// GetLogRecord ~22 us from the memtable, ~28 us from an SST. Choices:
//  - WAL always on; durability chosen per write (Append's `sync`, SyncWal for the interval policy).
//  - log CF: 64 MiB write buffer, 3 buffers. 16 MiB was clearly slower with 4 writers (more
//    flushes competing for 2 cores), and a large memtable lets most of a log that is trimmed after
//    each checkpoint die before it reaches an SST. LZ4 when GetSupportedCompressions has it
//    (Debian's build does), else none: SSTs ~4.8x smaller on the bench records; the WAL is not
//    compressed, so LZ4 costs only background flush CPU (on/off differed less than the noise).
//    64 KiB blocks so that small records compress together; the log is read by scans.
//  - profiles CF: 10-bit bloom filter (about 1% false positives): HTTP reads of users not in
//    memory fall back to point reads here, and most of those users do not exist.
//  - max_background_jobs 2 (2 cores); bytes_per_sync and wal_bytes_per_sync 1 MiB (write back
//    steadily instead of in one stall at flush or fsync); avoid_flush_during_shutdown false;
//    max_total_wal_size 512 MiB (bounds WAL replay at open: the rarely written CFs would
//    otherwise pin old WAL files). enable_pipelined_write stays off: its effect was within the
//    noise; worth re-measuring on a quiet machine with many partitions.
//  - one shared 64 MiB LRU block cache; recovery scans bypass it (fill_cache = false) so that a
//    replay does not evict the profiles that serve reads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/dead_letter.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class WriteBatch;
}  // namespace rocksdb

namespace persona {

class Store {
 public:
  // Opens or creates <dir>/db (creating `dir` if needed). A new store records `partitions`
  // (1..65535; InvalidArgument otherwise); an existing one keeps the count it was created with,
  // whatever `partitions` says (partitions() tells). A directory that holds files but no RocksDB
  // database, a damaged database or one locked by another process yields an error, never a new
  // empty store.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& dir, uint32_t partitions);
  // Opens an existing store for reading only, also while a server holds it open: the view is the
  // state at open time (readers such as `persona eval-online`). Writes fail. NotFound when there
  // is no store in `dir`.
  static absl::StatusOr<std::unique_ptr<Store>> OpenReadOnly(const std::string& dir);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  uint32_t partitions() const { return partitions_; }
  const std::string& dir() const { return dir_; }

  // ---- Log --------------------------------------------------------------------------------------
  // Atomically appends log record `seq` (>= 1) of `partition` together with its dead letters: after
  // a crash either both are there or neither. `sync` = fsync before returning; without it the
  // write survives a process crash but not a power loss until the next sync. Appending an existing
  // seq overwrites it. InvalidArgument for a partition >= partitions() or seq 0.
  // `source_next` >= 0 also records, in the same atomic write, the partition's next source offset
  // (SourceOffset): the offsets before it are in the log or dead letters.
  absl::Status Append(uint32_t partition, uint64_t seq, std::string_view record,
                      std::span<const DeadLetter> dead_letters, bool sync,
                      int64_t source_next = -1);
  // Stores dead letters that belong to no log record (import/HTTP parse errors).
  absl::Status AddDeadLetters(std::span<const DeadLetter> letters, bool sync);
  // Stores dead letters of `partition` and its next source offset atomically (a batch of source
  // messages none of which reached the log: all rejected or duplicates).
  absl::Status AddSourceProgress(uint32_t partition, std::span<const DeadLetter> letters,
                                 int64_t source_next, bool sync);
  // The next source offset of `partition` (see Append), nullopt if it never consumed a source.
  absl::StatusOr<std::optional<int64_t>> SourceOffset(uint32_t partition);

  // ---- Settings a data directory keeps for life -------------------------------------------------
  // The value of "config.<name>" (nullopt when unset), and writing it (synced).
  absl::StatusOr<std::optional<std::string>> GetSetting(std::string_view name);
  absl::Status PutSetting(std::string_view name, std::string_view value);
  // Makes everything written so far durable (the interval sync policy calls it periodically).
  absl::Status SyncWal();
  // Highest seq in the log of `partition`, 0 if the log is empty (or trimmed completely).
  absl::StatusOr<uint64_t> LastSeq(uint32_t partition);

  // Reads the log records of one partition in seq order, from a consistent snapshot taken when it
  // was created. record() is valid until Next(). When Valid() turns false, status() tells whether
  // the end was reached (OK) or reading failed; callers must check it.
  class LogIterator {
   public:
    ~LogIterator();
    bool Valid() const { return valid_; }
    uint64_t seq() const { return seq_; }
    std::string_view record() const;
    void Next();
    absl::Status status() const { return status_; }

   private:
    friend class Store;
    struct Reader;
    LogIterator(std::unique_ptr<Reader> reader, absl::Status status);
    void Settle();  // validates the position the reader is at

    std::unique_ptr<Reader> reader_;
    absl::Status status_;
    bool valid_ = false;
    uint64_t seq_ = 0;
  };
  // Iterates the records of `partition` with seq >= from_seq. Never null; an invalid partition
  // gives an iterator that is not Valid() and carries the error.
  std::unique_ptr<LogIterator> ReadLog(uint32_t partition, uint64_t from_seq);
  // The record `seq` of `partition`; NotFound if absent (never written, or trimmed).
  absl::StatusOr<std::string> GetLogRecord(uint32_t partition, uint64_t seq);
  // Replaces (or creates) record `seq`, e.g. to erase a user's events. Not synced: call SyncWal()
  // after a run of rewrites.
  absl::Status PutLogRecord(uint32_t partition, uint64_t seq, std::string_view record);
  // Deletes the records of `partition` with seq < below_seq (one range tombstone; space is
  // reclaimed by compaction). Not synced: a trim lost in a crash only leaves records to re-trim.
  absl::Status TrimLog(uint32_t partition, uint64_t below_seq);

  // ---- Checkpoints ------------------------------------------------------------------------------
  // Protocol (docs/checkpoint_format.md): PutProfiles, in as many calls as convenient, for every
  // profile changed since the last checkpoint, under the generation `seq` of the checkpoint being
  // written; then CommitCheckpoint(seq) with the partition's meta blob and its operators' states,
  // atomically; then DeleteProfile for the versions the new generation replaced. The committed
  // state is every profile at its newest generation <= the committed seq: a crash before the
  // commit leaves generations above it, which recovery ignores and deletes (DeleteProfilesAbove),
  // so what recovery loads is exactly the partition's state at the committed seq.

  // Writes the profiles (user_id, blob) of `partition` under `generation`, atomically per call.
  // Not synced: CommitCheckpoint syncs them. InvalidArgument for an empty user id.
  absl::Status PutProfiles(
      uint32_t partition, uint64_t generation,
      std::span<const std::pair<std::string_view, std::string_view>> user_blobs);
  // The same as PutProfiles for a bulk load (a partition restored from the changelog): writes the
  // versions into one SST file and ingests it, bypassing the write-ahead log and the memtable.
  // `user_blobs` must be sorted by user id (byte order) without duplicates; `generation` must be
  // above the committed checkpoint (recovery ignores the versions until CommitCheckpoint).
  absl::Status IngestProfiles(
      uint32_t partition, uint64_t generation,
      std::span<const std::pair<std::string_view, std::string_view>> user_blobs);
  // Removes one stored version of a profile (a replaced generation, or erasure). It is not an
  // error if there was none. Not synced: durable with the next sync or checkpoint commit.
  absl::Status DeleteProfile(uint32_t partition, std::string_view user_id, uint64_t generation);
  // DeleteProfile for many versions (user id, generation) in one write: a checkpoint replaces
  // the stored versions of every profile it rewrote (tens of thousands of keys), which one write
  // per key made a second of the writer's pause. Not synced.
  absl::Status DeleteProfiles(uint32_t partition,
                              std::span<const std::pair<std::string_view, uint64_t>> versions);
  // Removes every profile version of `partition` with a generation above `generation` (the
  // leftovers of a checkpoint that was never committed). Not synced.
  absl::Status DeleteProfilesAbove(uint32_t partition, uint64_t generation);
  // Records that `partition`'s state up to log seq `seq` is checkpointed, with `meta_blob` (opaque
  // partition state) and `operator_states` ((name, blob) pairs replacing the stored states of those
  // names), in one atomic write, and syncs the WAL so that the profiles written before are durable
  // too. States of operators not named are left as they are: the engine prefixes every state with
  // the seq it reflects and refuses, at recovery, one that is older than its checkpoint.
  // Re-committing the same seq is allowed; FailedPrecondition if `seq` is below the committed one.
  // A checkpoint that replaces the partition's whole state (a restore from the changelog): the
  // same write also deletes every profile version below `drop_profiles_below` and every attribute
  // object of the partition (the committed profiles carry their attributes), and sets its source
  // offset.
  struct CheckpointReplacement {
    uint64_t drop_profiles_below = 0;
    int64_t source_next = -1;  // -1: leave as it is
  };
  absl::Status CommitCheckpoint(
      uint32_t partition, uint64_t seq, std::string_view meta_blob,
      std::span<const std::pair<std::string_view, std::string_view>> operator_states = {},
      const CheckpointReplacement* replace = nullptr);
  struct CheckpointMeta {
    uint64_t seq = 0;
    std::string blob;
  };  // seq 0 + empty blob = none yet
  // The last committed checkpoint of `partition`; {0, ""} if there is none.
  absl::StatusOr<CheckpointMeta> LoadCheckpointMeta(uint32_t partition);
  // The state operator `name` committed with the partition's last checkpoint; nullopt if none.
  absl::StatusOr<std::optional<std::string>> LoadOperatorState(uint32_t partition,
                                                               std::string_view name);
  // Calls fn(user_id, generation, blob) for every stored profile version of the partition with a
  // generation <= max_generation, in generation order (then user id byte order), from a snapshot;
  // a user appears once per version still stored (the caller keeps the newest). Stops at and
  // returns the first error fn returns.
  absl::Status ForEachProfile(
      uint32_t partition, uint64_t max_generation,
      const std::function<absl::Status(std::string_view, uint64_t, std::string_view)>& fn);

  // ---- Attributes -------------------------------------------------------------------------------
  // A user's attribute object (JSON text): not an event, so kept beside the log rather than in it.
  // PutAttributes replaces it and syncs when `sync`; DeleteAttributes removes it (not synced).
  absl::Status PutAttributes(uint32_t partition, std::string_view user_id, std::string_view json,
                             bool sync);
  absl::Status DeleteAttributes(uint32_t partition, std::string_view user_id);
  // Calls fn(user_id, json) for every stored attribute object of `partition`.
  absl::Status ForEachAttributes(
      uint32_t partition,
      const std::function<absl::Status(std::string_view, std::string_view)>& fn);

  // ---- Dead letters -----------------------------------------------------------------------------
  // Dead letters in key order (received time, then arrival), oldest first / newest last: up to
  // `limit` after the one with id `after_id` ("" = from the start). InvalidArgument for an
  // after_id that is not an id. A stored value that cannot be decoded is listed with rule
  // "undecodable stored dead letter" and its bytes as `raw`, so that one bad row cannot hide
  // the others.
  absl::StatusOr<std::vector<StoredDeadLetter>> ListDeadLetters(std::string_view after_id,
                                                                size_t limit);
  // Exact count; a scan of the dead-letter keys (fine for the thousands it is meant to hold).
  absl::StatusOr<uint64_t> CountDeadLetters();
  // Deletes every dead letter whose user_id is `user_id` (GDPR erasure) and syncs; returns how
  // many. InvalidArgument for an empty user id (that would match every letter without one).
  // Letters whose stored value cannot be decoded are not matched (PurgeDeadLetters removes them).
  absl::StatusOr<uint64_t> EraseDeadLettersOfUser(std::string_view user_id);
  // Deletes all dead letters and syncs.
  absl::Status PurgeDeadLetters();

  // ---- Small named values -----------------------------------------------------------------------
  // Stores `value` under `key` and syncs. Keys the store owns ("config.partitions",
  // "config.format", "ckpt/...", "op/...", "attr/...") are refused with InvalidArgument: they
  // change only through the calls above.
  absl::Status PutMeta(std::string_view key, std::string_view value);
  // The value under `key` (including the store's own keys), nullopt if absent.
  absl::StatusOr<std::optional<std::string>> GetMeta(std::string_view key);

  // Writes all memtables to SST files and waits (used at clean shutdown: the next open then has
  // no WAL to replay).
  absl::Status Flush();
  // A RocksDB property. A plain integer property ("rocksdb.estimate-live-data-size") is summed over
  // the column families; "<family>:<property>" ("log:rocksdb.estimate-num-keys") asks one; other
  // plain properties ("rocksdb.stats") are those of the log family. "" if unknown.
  std::string Property(std::string_view rocksdb_property);

 private:
  Store();
  static absl::StatusOr<std::unique_ptr<Store>> OpenImpl(const std::string& dir,
                                                         uint32_t partitions, bool read_only);
  absl::Status CheckPartition(uint32_t partition) const;
  rocksdb::ColumnFamilyHandle* Family(std::string_view name) const;
  // Adds the puts of `letters` to `batch`, with fresh keys.
  absl::Status AddDeadLettersTo(std::span<const DeadLetter> letters, rocksdb::WriteBatch* batch);

  std::string dir_;
  uint32_t partitions_ = 0;
  // Column family handles must be released before the DB; ~Store does it in that order.
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<std::unique_ptr<rocksdb::ColumnFamilyHandle>> families_;
  rocksdb::ColumnFamilyHandle* log_ = nullptr;
  rocksdb::ColumnFamilyHandle* profiles_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* dead_letters_ = nullptr;
  // Second half of dead-letter keys: unique and increasing within this store, initialised past the
  // last stored key at open, so that ids never repeat and letters of the same millisecond keep
  // their arrival order.
  std::atomic<uint64_t> next_dead_letter_counter_{0};
};

}  // namespace persona
