#include "store/store.h"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/varint.h"
#include "store/dead_letter_codec.h"
#include "store/store_format.h"

namespace persona {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMiB = 1 << 20;
// Deletes of an erasure are written in batches of this many keys, so that erasing a user with a
// huge number of dead letters does not build one unbounded WriteBatch.
constexpr size_t kEraseBatchKeys = 10000;

rocksdb::Slice ToSlice(std::string_view s) { return {s.data(), s.size()}; }
template <size_t N>
rocksdb::Slice ToSlice(const std::array<char, N>& a) {
  return {a.data(), N};
}
std::string_view ToView(const rocksdb::Slice& s) { return {s.data(), s.size()}; }
// Debian's Abseil has its own string_view type; std::string_view must be converted explicitly.
absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

// Maps a RocksDB status to an absl one, keeping RocksDB's text behind `context`.
absl::Status FromRocks(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return absl::OkStatus();
  std::string message = absl::StrCat("store: ", Absl(context), ": ", s.ToString());
  switch (s.code()) {
    case rocksdb::Status::kNotFound:
      return absl::NotFoundError(message);
    case rocksdb::Status::kCorruption:
      return absl::DataLossError(message);
    case rocksdb::Status::kNotSupported:
      return absl::UnimplementedError(message);
    case rocksdb::Status::kInvalidArgument:
      return absl::InvalidArgumentError(message);
    case rocksdb::Status::kIOError:
      if (s.subcode() == rocksdb::Status::kNoSpace || s.subcode() == rocksdb::Status::kSpaceLimit) {
        return absl::ResourceExhaustedError(message);
      }
      return absl::InternalError(message);
    case rocksdb::Status::kBusy:
    case rocksdb::Status::kTryAgain:
    case rocksdb::Status::kTimedOut:
    case rocksdb::Status::kShutdownInProgress:
      return absl::UnavailableError(message);
    case rocksdb::Status::kAborted:
      return absl::AbortedError(message);
    default:
      return absl::InternalError(message);
  }
}

// Inclusive lower and exclusive upper bound of one partition's keys. Held by the iterators that
// use them: RocksDB keeps pointers to the bound slices.
struct PartitionRange {
  PartitionRange(uint32_t partition, uint64_t from_seq)
      : lower(EncodeLogKey(partition, from_seq)), upper(EncodePartitionPrefix(partition + 1)) {}
  LogKey lower;
  PartitionPrefix upper;
};

// Files RocksDB writes before a new database has a CURRENT file; a directory holding only these is
// a creation that died early and is safe to create over.
bool IsCreationLeftover(const fs::path& file) {
  const std::string name = file.filename().string();
  return name == "LOCK" || name == "IDENTITY" || name.starts_with("LOG");
}

rocksdb::CompressionType BestCompression() {
  const auto supported = rocksdb::GetSupportedCompressions();
  const bool lz4 =
      std::find(supported.begin(), supported.end(), rocksdb::kLZ4Compression) != supported.end();
  return lz4 ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
}

rocksdb::DBOptions MakeDbOptions() {
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.max_background_jobs = 2;
  options.bytes_per_sync = kMiB;
  options.wal_bytes_per_sync = kMiB;
  options.avoid_flush_during_shutdown = false;
  options.max_total_wal_size = 512 * kMiB;
  options.keep_log_file_num = 10;
  return options;
}

rocksdb::ColumnFamilyOptions MakeFamilyOptions(std::string_view name,
                                               const std::shared_ptr<rocksdb::Cache>& cache,
                                               rocksdb::CompressionType compression) {
  rocksdb::ColumnFamilyOptions options;
  options.compression = compression;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  if (name == kLogFamily) {
    options.write_buffer_size = 64 * kMiB;
    options.max_write_buffer_number = 3;
    table.block_size = 64 * 1024;
  } else if (name == kProfilesFamily) {
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  } else if (name == kMetaFamily) {
    // Checkpoint metas and operator states: rarely written, but a checkpoint writes every
    // operator's state in one batch (item-CF alone is 10-150 MB per partition). With small
    // memtables that batch filled both at once and every later write of the database (profile
    // deletes, the next ingest batches) stalled until the flush finished: seconds of pause.
    // Enough memtables that one checkpoint's batch never makes the next write wait; the values
    // of large states go to blob files, so that flushes and compactions do not rewrite them.
    options.write_buffer_size = 64 * kMiB;
    options.max_write_buffer_number = 4;
    options.enable_blob_files = true;
    options.min_blob_size = 64 * 1024;
    options.blob_file_size = 256 * kMiB;
    options.enable_blob_garbage_collection = true;
  } else {
    // deadletter, default: small and rarely written.
    options.write_buffer_size = 4 * kMiB;
  }
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return options;
}

std::string PartitionContext(std::string_view what, uint32_t partition) {
  return absl::StrCat(Absl(what), " (partition ", partition, ")");
}

}  // namespace

// ---- LogIterator --------------------------------------------------------------------------------

struct Store::LogIterator::Reader {
  Reader(uint32_t partition, uint64_t from_seq)
      : partition(partition), range(partition, from_seq) {}
  uint32_t partition;
  PartitionRange range;
  rocksdb::Slice lower;
  rocksdb::Slice upper;
  std::unique_ptr<rocksdb::Iterator> it;
};

Store::LogIterator::LogIterator(std::unique_ptr<Reader> reader, absl::Status status)
    : reader_(std::move(reader)), status_(std::move(status)) {
  if (!status_.ok()) return;
  reader_->it->Seek(reader_->lower);
  Settle();
}

Store::LogIterator::~LogIterator() = default;

std::string_view Store::LogIterator::record() const { return ToView(reader_->it->value()); }

void Store::LogIterator::Next() {
  if (!valid_) return;
  reader_->it->Next();
  Settle();
}

void Store::LogIterator::Settle() {
  valid_ = false;
  rocksdb::Iterator& it = *reader_->it;
  if (!it.Valid()) {
    status_ = FromRocks(it.status(), PartitionContext("reading the log", reader_->partition));
    return;
  }
  const std::optional<LogKeyParts> key = DecodeLogKey(ToView(it.key()));
  if (!key || key->partition != reader_->partition) {
    status_ =
        absl::DataLossError(absl::StrCat("store: reading the log (partition ", reader_->partition,
                                         "): malformed key ", HexEncode(ToView(it.key()))));
    return;
  }
  seq_ = key->seq;
  valid_ = true;
}

// ---- Open / close -------------------------------------------------------------------------------

Store::Store() = default;

Store::~Store() {
  if (db_ == nullptr) return;
  families_.clear();
  // Close reports background errors we could not act on any more; Flush() is the call that
  // reports shutdown problems to the caller.
  (void)db_->Close();
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& dir, uint32_t partitions) {
  return OpenImpl(dir, partitions, false);
}

absl::StatusOr<std::unique_ptr<Store>> Store::OpenReadOnly(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(fs::path(dir) / "db" / "CURRENT", ec)) {
    return absl::NotFoundError(absl::StrCat("store: no database in '", dir, "'"));
  }
  return OpenImpl(dir, 0, true);
}

absl::StatusOr<std::unique_ptr<Store>> Store::OpenImpl(const std::string& dir, uint32_t partitions,
                                                       bool read_only) {
  std::error_code ec;
  if (!read_only) fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(absl::StrCat("store: data directory '", dir,
                                                      "' cannot be created or is not a directory",
                                                      ec ? absl::StrCat(": ", ec.message()) : ""));
  }
  const std::string path = (fs::path(dir) / "db").string();
  const bool exists = fs::exists(fs::path(path) / "CURRENT", ec);
  if (!exists) {
    if (fs::is_directory(path, ec)) {
      for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
        if (!IsCreationLeftover(it->path())) {
          return absl::DataLossError(absl::StrCat(
              "store: '", path, "' holds files (e.g. '", it->path().filename().string(),
              "') but no CURRENT file: not a database or a damaged one; refusing to create a new "
              "store over it (move it away to start empty)"));
        }
      }
    }
    if (partitions == 0 || partitions > kMaxPartitions) {
      return absl::InvalidArgumentError(absl::StrCat("store: cannot create '", path, "' with ",
                                                     partitions, " partitions (1..", kMaxPartitions,
                                                     ")"));
    }
  }

  const rocksdb::DBOptions db_options = MakeDbOptions();
  std::vector<std::string> names = {rocksdb::kDefaultColumnFamilyName};
  if (exists) {
    names.clear();
    rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_options, path, &names);
    if (!s.ok()) return FromRocks(s, absl::StrCat("opening '", path, "'"));
  }
  for (std::string_view ours : {kLogFamily, kProfilesFamily, kMetaFamily, kDeadLetterFamily}) {
    if (std::find(names.begin(), names.end(), ours) == names.end()) names.emplace_back(ours);
  }
  const std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(64 * kMiB);
  const rocksdb::CompressionType compression = BestCompression();
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : names) {
    descriptors.emplace_back(name, MakeFamilyOptions(name, cache, compression));
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s =
      read_only ? rocksdb::DB::OpenForReadOnly(db_options, path, descriptors, &handles, &db)
                : rocksdb::DB::Open(db_options, path, descriptors, &handles, &db);
  if (!s.ok()) return FromRocks(s, absl::StrCat("opening '", path, "'"));

  std::unique_ptr<Store> store(new Store());
  store->dir_ = dir;
  store->db_.reset(db);
  for (rocksdb::ColumnFamilyHandle* handle : handles) store->families_.emplace_back(handle);
  store->log_ = store->Family(kLogFamily);
  store->profiles_ = store->Family(kProfilesFamily);
  store->meta_ = store->Family(kMetaFamily);
  store->dead_letters_ = store->Family(kDeadLetterFamily);

  std::string stored_count;
  s = db->Get(rocksdb::ReadOptions(), store->meta_, ToSlice(kPartitionCountKey), &stored_count);
  if (s.IsNotFound()) {
    // A new store, or one whose creation died before this write: record the count now.
    if (read_only)
      return absl::DataLossError(absl::StrCat("store: '", path, "' has no partition count"));
    if (partitions == 0 || partitions > kMaxPartitions) {
      return absl::InvalidArgumentError(absl::StrCat("store: '", path,
                                                     "' has no partition count and ", partitions,
                                                     " is not one (1..", kMaxPartitions, ")"));
    }
    rocksdb::WriteOptions sync;
    sync.sync = true;
    rocksdb::WriteBatch init;
    s = init.Put(store->meta_, ToSlice(kPartitionCountKey), ToSlice(std::to_string(partitions)));
    if (s.ok()) {
      s = init.Put(store->meta_, ToSlice(kFormatKey), ToSlice(std::to_string(kStoreFormat)));
    }
    if (s.ok()) s = db->Write(sync, &init);
    if (!s.ok()) return FromRocks(s, "recording the partition count");
    store->partitions_ = partitions;
  } else if (!s.ok()) {
    return FromRocks(s, "reading the partition count");
  } else if (!absl::SimpleAtoi(stored_count, &store->partitions_) || store->partitions_ == 0 ||
             store->partitions_ > kMaxPartitions) {
    return absl::DataLossError(absl::StrCat("store: '", path, "': stored partition count '",
                                            stored_count, "' is not a number in 1..",
                                            kMaxPartitions));
  }

  std::string format;
  s = db->Get(rocksdb::ReadOptions(), store->meta_, ToSlice(kFormatKey), &format);
  if (s.IsNotFound())
    format = "1";
  else if (!s.ok())
    return FromRocks(s, "reading the store format");
  if (format != std::to_string(kStoreFormat)) {
    return absl::FailedPreconditionError(
        absl::StrCat("store: '", path, "' has store format ", Absl(format),
                     "; this build reads format ", kStoreFormat,
                     " (versioned checkpoints). Re-import the events into a new data directory "
                     "(`persona import`), or run the Persona version that wrote it"));
  }

  std::unique_ptr<rocksdb::Iterator> last(
      db->NewIterator(rocksdb::ReadOptions(), store->dead_letters_));
  last->SeekToLast();
  if (last->Valid()) {
    if (auto key = DecodeDeadLetterKey(ToView(last->key()))) {
      store->next_dead_letter_counter_.store(key->counter + 1);
    }
  } else if (!last->status().ok()) {
    return FromRocks(last->status(), "reading the last dead letter");
  }
  return store;
}

rocksdb::ColumnFamilyHandle* Store::Family(std::string_view name) const {
  for (const auto& family : families_) {
    if (family->GetName() == name) return family.get();
  }
  return nullptr;
}

absl::Status Store::CheckPartition(uint32_t partition) const {
  if (partition < partitions_) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("store: partition ", partition, " out of range (", partitions_, " partitions)"));
}

// ---- Log ----------------------------------------------------------------------------------------

absl::Status Store::AddDeadLettersTo(std::span<const DeadLetter> letters,
                                     rocksdb::WriteBatch* batch) {
  if (letters.empty()) return absl::OkStatus();
  uint64_t counter = next_dead_letter_counter_.fetch_add(letters.size(), std::memory_order_relaxed);
  for (const DeadLetter& letter : letters) {
    const DeadLetterKey key = EncodeDeadLetterKey(letter.received_ms, counter++);
    rocksdb::Status s = batch->Put(dead_letters_, ToSlice(key), EncodeDeadLetter(letter));
    if (!s.ok()) return FromRocks(s, "adding a dead letter");
  }
  return absl::OkStatus();
}

absl::Status Store::Append(uint32_t partition, uint64_t seq, std::string_view record,
                           std::span<const DeadLetter> dead_letters, bool sync,
                           int64_t source_next) {
  if (absl::Status s = CheckPartition(partition); !s.ok()) return s;
  if (seq == 0) return absl::InvalidArgumentError("store: log seq 0 is reserved for 'empty'");
  rocksdb::WriteBatch batch(record.size() + 64);
  const LogKey key = EncodeLogKey(partition, seq);
  rocksdb::Status s = batch.Put(log_, ToSlice(key), ToSlice(record));
  if (!s.ok()) return FromRocks(s, PartitionContext("append", partition));
  if (absl::Status st = AddDeadLettersTo(dead_letters, &batch); !st.ok()) return st;
  if (source_next >= 0) {
    std::string value;
    AppendVarint64(&value, static_cast<uint64_t>(source_next));
    s = batch.Put(meta_, ToSlice(EncodeSourceOffsetKey(partition)), ToSlice(value));
    if (!s.ok()) return FromRocks(s, PartitionContext("append", partition));
  }
  rocksdb::WriteOptions options;
  options.sync = sync;
  return FromRocks(db_->Write(options, &batch),
                   absl::StrCat("append of seq ", seq, " (partition ", partition, ")"));
}

absl::Status Store::AddSourceProgress(uint32_t partition, std::span<const DeadLetter> letters,
                                      int64_t source_next, bool sync) {
  if (absl::Status s = CheckPartition(partition); !s.ok()) return s;
  rocksdb::WriteBatch batch;
  if (absl::Status s = AddDeadLettersTo(letters, &batch); !s.ok()) return s;
  if (source_next >= 0) {
    std::string value;
    AppendVarint64(&value, static_cast<uint64_t>(source_next));
    rocksdb::Status s = batch.Put(meta_, ToSlice(EncodeSourceOffsetKey(partition)), ToSlice(value));
    if (!s.ok()) return FromRocks(s, PartitionContext("source offset", partition));
  }
  rocksdb::WriteOptions options;
  options.sync = sync;
  return FromRocks(db_->Write(options, &batch), PartitionContext("source offset", partition));
}

absl::StatusOr<std::optional<int64_t>> Store::SourceOffset(uint32_t partition) {
  if (absl::Status s = CheckPartition(partition); !s.ok()) return s;
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), meta_, ToSlice(EncodeSourceOffsetKey(partition)), &value);
  if (s.IsNotFound()) return std::optional<int64_t>();
  if (!s.ok()) return FromRocks(s, PartitionContext("source offset", partition));
  std::string_view in = value;
  uint64_t next;
  if (!ReadVarint64(&in, &next) || !in.empty() || next > uint64_t{INT64_MAX}) {
    return absl::DataLossError(PartitionContext("corrupt source offset", partition));
  }
  return std::optional<int64_t>(static_cast<int64_t>(next));
}

absl::StatusOr<std::optional<std::string>> Store::GetSetting(std::string_view name) {
  std::string value;
  const std::string key = std::string(kConfigKeyPrefix) + std::string(name);
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_, ToSlice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "reading setting " + std::string(name));
  return std::optional<std::string>(std::move(value));
}

absl::Status Store::PutSetting(std::string_view name, std::string_view value) {
  rocksdb::WriteOptions sync;
  sync.sync = true;
  const std::string key = std::string(kConfigKeyPrefix) + std::string(name);
  return FromRocks(db_->Put(sync, meta_, ToSlice(key), ToSlice(value)),
                   "writing setting " + std::string(name));
}

absl::Status Store::AddDeadLetters(std::span<const DeadLetter> letters, bool sync) {
  if (letters.empty()) return absl::OkStatus();
  rocksdb::WriteBatch batch;
  if (absl::Status s = AddDeadLettersTo(letters, &batch); !s.ok()) return s;
  rocksdb::WriteOptions options;
  options.sync = sync;
  return FromRocks(db_->Write(options, &batch), "adding dead letters");
}

absl::Status Store::SyncWal() { return FromRocks(db_->SyncWAL(), "syncing the WAL"); }

absl::StatusOr<uint64_t> Store::LastSeq(uint32_t partition) {
  if (absl::Status s = CheckPartition(partition); !s.ok()) return s;
  const PartitionRange range(partition, 0);
  const rocksdb::Slice lower = ToSlice(range.lower);
  const rocksdb::Slice upper = ToSlice(range.upper);
  rocksdb::ReadOptions options;
  options.iterate_lower_bound = &lower;
  options.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, log_));
  it->SeekToLast();
  if (!it->Valid()) {
    if (!it->status().ok()) return FromRocks(it->status(), PartitionContext("last seq", partition));
    return 0;
  }
  const std::optional<LogKeyParts> key = DecodeLogKey(ToView(it->key()));
  if (!key) {
    return absl::DataLossError(absl::StrCat("store: last seq (partition ", partition,
                                            "): malformed log key ", HexEncode(ToView(it->key()))));
  }
  return key->seq;
}

std::unique_ptr<Store::LogIterator> Store::ReadLog(uint32_t partition, uint64_t from_seq) {
  auto reader = std::make_unique<LogIterator::Reader>(partition, from_seq);
  absl::Status status = CheckPartition(partition);
  if (status.ok()) {
    reader->lower = ToSlice(reader->range.lower);
    reader->upper = ToSlice(reader->range.upper);
    rocksdb::ReadOptions options;
    options.iterate_lower_bound = &reader->lower;
    options.iterate_upper_bound = &reader->upper;
    // A replay reads the tail once: keep it out of the cache that serves point reads.
    options.fill_cache = false;
    options.readahead_size = 2 * kMiB;
    reader->it.reset(db_->NewIterator(options, log_));
  }
  return std::unique_ptr<LogIterator>(new LogIterator(std::move(reader), std::move(status)));
}

absl::StatusOr<std::string> Store::GetLogRecord(uint32_t partition, uint64_t seq) {
  if (absl::Status s = CheckPartition(partition); !s.ok()) return s;
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), log_, ToSlice(EncodeLogKey(partition, seq)), &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(
        absl::StrCat("store: no log record ", seq, " in partition ", partition));
  }
  if (!s.ok())
    return FromRocks(s, absl::StrCat("reading log record ", seq, " (partition ", partition, ")"));
  return value;
}

absl::Status Store::PutLogRecord(uint32_t partition, uint64_t seq, std::string_view record) {
  if (absl::Status s = CheckPartition(partition); !s.ok()) return s;
  if (seq == 0) return absl::InvalidArgumentError("store: log seq 0 is reserved for 'empty'");
  return FromRocks(db_->Put(rocksdb::WriteOptions(), log_, ToSlice(EncodeLogKey(partition, seq)),
                            ToSlice(record)),
                   absl::StrCat("rewriting log record ", seq, " (partition ", partition, ")"));
}

absl::Status Store::TrimLog(uint32_t partition, uint64_t below_seq) {
  if (absl::Status s = CheckPartition(partition); !s.ok()) return s;
  if (below_seq <= 1) return absl::OkStatus();  // nothing below seq 1
  const LogKey begin = EncodeLogKey(partition, 0);
  const LogKey end = EncodeLogKey(partition, below_seq);
  if (absl::Status s =
          FromRocks(db_->DeleteRange(rocksdb::WriteOptions(), log_, ToSlice(begin), ToSlice(end)),
                    PartitionContext("trimming the log", partition));
      !s.ok()) {
    return s;
  }
  // SST files wholly inside the trimmed range are dropped now (like deleting a Kafka segment)
  // rather than when compaction reaches them; the tombstone covers the rest until then.
  const rocksdb::Slice b = ToSlice(begin), e = ToSlice(end);
  return FromRocks(rocksdb::DeleteFilesInRange(db_.get(), log_, &b, &e, /*include_end=*/false),
                   PartitionContext("deleting trimmed log files", partition));
}

// ---- Checkpoints --------------------------------------------------------------------------------

absl::Status Store::PutProfiles(
    uint32_t partition, uint64_t generation,
    std::span<const std::pair<std::string_view, std::string_view>> user_blobs) {
  if (absl::Status s = CheckPartition(partition); !s.ok()) return s;
  if (user_blobs.empty()) return absl::OkStatus();
  rocksdb::WriteBatch batch;
  std::string value;
  for (const auto& [user_id, blob] : user_blobs) {
    if (user_id.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("store: profile with an empty user id (partition ", partition, ")"));
    }
    value.clear();
    AppendFixed64BE(generation, &value);
    value.append(blob);
    rocksdb::Status s = batch.Put(
        profiles_, ToSlice(EncodeProfileKey(partition, generation, user_id)), ToSlice(value));
    if (!s.ok()) return FromRocks(s, PartitionContext("writing profiles", partition));
  }
  return FromRocks(db_->Write(rocksdb::WriteOptions(), &batch),
                   PartitionContext("writing profiles", partition));
}

absl::Status Store::IngestProfiles(
    uint32_t partition, uint64_t generation,
    std::span<const std::pair<std::string_view, std::string_view>> user_blobs) {
  if (absl::Status s = CheckPartition(partition); !s.ok()) return s;
  if (user_blobs.empty()) return absl::OkStatus();
  const std::string context = PartitionContext("bulk-loading profiles", partition);
  rocksdb::ColumnFamilyDescriptor descriptor;
  if (rocksdb::Status s = profiles_->GetDescriptor(&descriptor); !s.ok()) {
    return FromRocks(s, context);
  }
  rocksdb::Options options(db_->GetDBOptions(), descriptor.options);
  rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), options, profiles_);
  const std::string path =
      dir_ + "/restore-" + std::to_string(partition) + "-" + std::to_string(generation) + ".sst";
  if (rocksdb::Status s = writer.Open(path); !s.ok()) return FromRocks(s, context);
  std::string value;
  for (const auto& [user_id, blob] : user_blobs) {
    if (user_id.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("store: profile with an empty user id (", context, ")"));
    }
    value.clear();
    AppendFixed64BE(generation, &value);
    value.append(blob);
    if (rocksdb::Status s =
            writer.Put(ToSlice(EncodeProfileKey(partition, generation, user_id)), ToSlice(value));
        !s.ok()) {
      std::filesystem::remove(path);
      return FromRocks(s, context);
    }
  }
  if (rocksdb::Status s = writer.Finish(); !s.ok()) {
    std::filesystem::remove(path);
    return FromRocks(s, context);
  }
  rocksdb::IngestExternalFileOptions ingest;
  ingest.move_files = true;
  rocksdb::Status s = db_->IngestExternalFile(profiles_, {path}, ingest);
  std::error_code ignored;
  std::filesystem::remove(path, ignored);  // moved on success (hard link), left on failure
  return FromRocks(s, context);
}

absl::Status Store::DeleteProfile(uint32_t partition, std::string_view user_id,
                                  uint64_t generation) {
  if (absl::Status s = CheckPartition(partition); !s.ok()) return s;
  return FromRocks(db_->Delete(rocksdb::WriteOptions(), profiles_,
                               ToSlice(EncodeProfileKey(partition, generation, user_id))),
                   PartitionContext("deleting a profile", partition));
}

absl::Status Store::DeleteProfiles(
    uint32_t partition, std::span<const std::pair<std::string_view, uint64_t>> versions) {
  if (absl::Status s = CheckPartition(partition); !s.ok()) return s;
  if (versions.empty()) return absl::OkStatus();
  rocksdb::WriteBatch batch;
  for (const auto& [user, generation] : versions) {
    rocksdb::Status s =
        batch.Delete(profiles_, ToSlice(EncodeProfileKey(partition, generation, user)));
    if (!s.ok()) return FromRocks(s, PartitionContext("deleting replaced profiles", partition));
  }
  return FromRocks(db_->Write(rocksdb::WriteOptions(), &batch),
                   PartitionContext("deleting replaced profiles", partition));
}

absl::Status Store::DeleteProfilesAbove(uint32_t partition, uint64_t generation) {
  if (absl::Status s = CheckPartition(partition); !s.ok()) return s;
  if (generation == UINT64_MAX) return absl::OkStatus();
  const PartitionPrefix next = EncodePartitionPrefix(partition + 1);
  return FromRocks(
      db_->DeleteRange(rocksdb::WriteOptions(), profiles_,
                       ToSlice(EncodeProfileGenerationPrefix(partition, generation + 1)),
                       ToSlice(next)),
      PartitionContext("deleting uncommitted profiles", partition));
}

absl::Status Store::CommitCheckpoint(
    uint32_t partition, uint64_t seq, std::string_view meta_blob,
    std::span<const std::pair<std::string_view, std::string_view>> operator_states,
    const CheckpointReplacement* replace) {
  absl::StatusOr<CheckpointMeta> current = LoadCheckpointMeta(partition);
  if (!current.ok()) return current.status();
  if (seq < current->seq) {
    return absl::FailedPreconditionError(
        absl::StrCat("store: checkpoint of partition ", partition, " at seq ", seq,
                     " is older than the committed one at seq ", current->seq));
  }
  rocksdb::WriteBatch batch;
  rocksdb::Status s = batch.Put(meta_, ToSlice(EncodeCheckpointKey(partition)),
                                ToSlice(EncodeCheckpointValue(seq, meta_blob)));
  for (const auto& [name, blob] : operator_states) {
    if (!s.ok()) break;
    s = batch.Put(meta_, ToSlice(EncodeOperatorStateKey(partition, name)), ToSlice(blob));
  }
  if (replace != nullptr && s.ok()) {
    if (replace->drop_profiles_below > 0) {
      s = batch.DeleteRange(
          profiles_, ToSlice(EncodeProfileGenerationPrefix(partition, 0)),
          ToSlice(EncodeProfileGenerationPrefix(partition, replace->drop_profiles_below)));
    }
    const std::string lower_key = EncodeAttributesKey(partition, "");
    const std::string upper_key = EncodeAttributesKey(partition + 1, "");
    if (s.ok()) s = batch.DeleteRange(meta_, lower_key, upper_key);
    if (s.ok() && replace->source_next >= 0) {
      std::string value;
      AppendVarint64(&value, static_cast<uint64_t>(replace->source_next));
      s = batch.Put(meta_, ToSlice(EncodeSourceOffsetKey(partition)), ToSlice(value));
    }
  }
  if (!s.ok()) return FromRocks(s, PartitionContext("committing a checkpoint", partition));
  rocksdb::WriteOptions sync;
  sync.sync = true;
  return FromRocks(db_->Write(sync, &batch),
                   PartitionContext("committing a checkpoint", partition));
}

absl::StatusOr<Store::CheckpointMeta> Store::LoadCheckpointMeta(uint32_t partition) {
  if (absl::Status s = CheckPartition(partition); !s.ok()) return s;
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), meta_, ToSlice(EncodeCheckpointKey(partition)), &value);
  if (s.IsNotFound()) return CheckpointMeta{};
  if (!s.ok()) return FromRocks(s, PartitionContext("loading the checkpoint", partition));
  const std::optional<CheckpointValueParts> parts = DecodeCheckpointValue(value);
  if (!parts) {
    return absl::DataLossError(absl::StrCat("store: checkpoint of partition ", partition, " is ",
                                            value.size(), " bytes, shorter than its seq"));
  }
  return CheckpointMeta{parts->seq, std::string(parts->meta_blob)};
}

absl::StatusOr<std::optional<std::string>> Store::LoadOperatorState(uint32_t partition,
                                                                    std::string_view name) {
  if (absl::Status s = CheckPartition(partition); !s.ok()) return s;
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_,
                               ToSlice(EncodeOperatorStateKey(partition, name)), &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return FromRocks(s, PartitionContext("loading an operator's state", partition));
  return value;
}

absl::Status Store::ForEachProfile(
    uint32_t partition, uint64_t max_generation,
    const std::function<absl::Status(std::string_view, uint64_t, std::string_view)>& fn) {
  if (absl::Status s = CheckPartition(partition); !s.ok()) return s;
  const PartitionPrefix prefix = EncodePartitionPrefix(partition);
  const std::string next =
      max_generation == UINT64_MAX
          ? std::string(EncodePartitionPrefix(partition + 1).data(), kPartitionPrefixSize)
          : EncodeProfileGenerationPrefix(partition, max_generation + 1);
  const rocksdb::Slice lower = ToSlice(prefix);
  const rocksdb::Slice upper = ToSlice(next);
  rocksdb::ReadOptions options;
  options.iterate_lower_bound = &lower;
  options.iterate_upper_bound = &upper;
  options.fill_cache = false;  // a bulk load at recovery, read once
  options.readahead_size = 2 * kMiB;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, profiles_));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    const std::optional<ProfileKeyParts> key = DecodeProfileKey(ToView(it->key()));
    const std::optional<ProfileValueParts> value = DecodeProfileValue(ToView(it->value()));
    if (!key || !value) {
      return absl::DataLossError(absl::StrCat("store: a profile key or value of partition ",
                                              partition, " is shorter than its header"));
    }
    if (absl::Status s = fn(key->user_id, key->generation, value->blob); !s.ok()) return s;
  }
  return FromRocks(it->status(), PartitionContext("reading profiles", partition));
}

// ---- Attributes ---------------------------------------------------------------------------------

absl::Status Store::PutAttributes(uint32_t partition, std::string_view user_id,
                                  std::string_view json, bool sync) {
  if (absl::Status s = CheckPartition(partition); !s.ok()) return s;
  rocksdb::WriteOptions options;
  options.sync = sync;
  return FromRocks(
      db_->Put(options, meta_, ToSlice(EncodeAttributesKey(partition, user_id)), ToSlice(json)),
      PartitionContext("writing attributes", partition));
}

absl::Status Store::DeleteAttributes(uint32_t partition, std::string_view user_id) {
  if (absl::Status s = CheckPartition(partition); !s.ok()) return s;
  return FromRocks(
      db_->Delete(rocksdb::WriteOptions(), meta_, ToSlice(EncodeAttributesKey(partition, user_id))),
      PartitionContext("deleting attributes", partition));
}

absl::Status Store::ForEachAttributes(
    uint32_t partition, const std::function<absl::Status(std::string_view, std::string_view)>& fn) {
  if (absl::Status s = CheckPartition(partition); !s.ok()) return s;
  const std::string lower_key = EncodeAttributesKey(partition, "");
  std::string upper_key = EncodeAttributesKey(partition + 1, "");
  const rocksdb::Slice lower = ToSlice(lower_key);
  const rocksdb::Slice upper = ToSlice(upper_key);
  rocksdb::ReadOptions options;
  options.iterate_lower_bound = &lower;
  options.iterate_upper_bound = &upper;
  options.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, meta_));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    const std::string_view user = ToView(it->key()).substr(lower_key.size());
    if (absl::Status s = fn(user, ToView(it->value())); !s.ok()) return s;
  }
  return FromRocks(it->status(), PartitionContext("reading attributes", partition));
}

// ---- Dead letters -------------------------------------------------------------------------------

absl::StatusOr<std::vector<StoredDeadLetter>> Store::ListDeadLetters(std::string_view after_id,
                                                                     size_t limit) {
  std::vector<StoredDeadLetter> letters;
  std::optional<std::string> after;
  if (!after_id.empty()) {
    after = HexDecode(after_id);
    if (!after || after->size() != kDeadLetterKeySize) {
      return absl::InvalidArgumentError(
          absl::StrCat("store: '", Absl(after_id), "' is not a dead letter id"));
    }
  }
  if (limit == 0) return letters;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), dead_letters_));
  if (after) {
    it->Seek(ToSlice(*after));
    if (it->Valid() && ToView(it->key()) == *after) it->Next();
  } else {
    it->SeekToFirst();
  }
  for (; it->Valid() && letters.size() < limit; it->Next()) {
    StoredDeadLetter& stored = letters.emplace_back();
    stored.id = HexEncode(ToView(it->key()));
    absl::StatusOr<DeadLetter> letter = DecodeDeadLetter(ToView(it->value()));
    if (letter.ok()) {
      stored.letter = *std::move(letter);
      continue;
    }
    if (auto key = DecodeDeadLetterKey(ToView(it->key()))) {
      stored.letter.received_ms = static_cast<int64_t>(key->received_ms);
    }
    stored.letter.source = "store";
    stored.letter.rule =
        absl::StrCat("undecodable stored dead letter: ", letter.status().message());
    stored.letter.raw = std::string(TruncateUtf8(ToView(it->value()), kMaxDeadLetterRawBytes));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "listing dead letters");
  return letters;
}

absl::StatusOr<uint64_t> Store::CountDeadLetters() {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), dead_letters_));
  uint64_t count = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++count;
  if (!it->status().ok()) return FromRocks(it->status(), "counting dead letters");
  return count;
}

absl::StatusOr<uint64_t> Store::EraseDeadLettersOfUser(std::string_view user_id) {
  if (user_id.empty()) {
    return absl::InvalidArgumentError("store: erasing dead letters needs a user id");
  }
  rocksdb::ReadOptions read;
  read.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, dead_letters_));
  rocksdb::WriteBatch batch;
  rocksdb::WriteOptions sync;
  sync.sync = true;
  uint64_t erased = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    absl::StatusOr<DeadLetter> letter = DecodeDeadLetter(ToView(it->value()));
    if (!letter.ok() || letter->user_id != user_id) continue;
    rocksdb::Status s = batch.Delete(dead_letters_, it->key());
    if (!s.ok()) return FromRocks(s, "erasing dead letters");
    ++erased;
    if (batch.Count() >= static_cast<uint32_t>(kEraseBatchKeys)) {
      s = db_->Write(rocksdb::WriteOptions(), &batch);
      if (!s.ok()) return FromRocks(s, "erasing dead letters");
      batch.Clear();
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "erasing dead letters");
  // The final write syncs, and with it every earlier batch of this erasure.
  rocksdb::Status s = batch.Count() > 0 ? db_->Write(sync, &batch)
                      : erased > 0      ? db_->SyncWAL()
                                        : rocksdb::Status::OK();
  if (!s.ok()) return FromRocks(s, "erasing dead letters");
  return erased;
}

absl::Status Store::PurgeDeadLetters() {
  // Every key is kDeadLetterKeySize bytes, so one more 0xff byte sorts after all of them.
  const std::string end(kDeadLetterKeySize + 1, '\xff');
  rocksdb::WriteOptions sync;
  sync.sync = true;
  return FromRocks(db_->DeleteRange(sync, dead_letters_, rocksdb::Slice(), ToSlice(end)),
                   "purging dead letters");
}

// ---- Meta and maintenance -----------------------------------------------------------------------

absl::Status Store::PutMeta(std::string_view key, std::string_view value) {
  if (key == kPartitionCountKey || key == kFormatKey || key.starts_with(kCheckpointKeyPrefix) ||
      key.starts_with(kAttributesKeyPrefix) || key.starts_with(kOperatorStateKeyPrefix)) {
    return absl::InvalidArgumentError(
        absl::StrCat("store: meta key '", Absl(key), "' is the store's own; it cannot be put"));
  }
  rocksdb::WriteOptions sync;
  sync.sync = true;
  return FromRocks(db_->Put(sync, meta_, ToSlice(key), ToSlice(value)),
                   absl::StrCat("writing meta '", Absl(key), "'"));
}

absl::StatusOr<std::optional<std::string>> Store::GetMeta(std::string_view key) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_, ToSlice(key), &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return FromRocks(s, absl::StrCat("reading meta '", Absl(key), "'"));
  return value;
}

absl::Status Store::Flush() {
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  for (const auto& family : families_) handles.push_back(family.get());
  rocksdb::FlushOptions options;
  options.wait = true;
  return FromRocks(db_->Flush(options, handles), "flushing memtables");
}

std::string Store::Property(std::string_view rocksdb_property) {
  std::string value;
  if (const size_t colon = rocksdb_property.find(':'); colon != std::string_view::npos) {
    rocksdb::ColumnFamilyHandle* family = Family(rocksdb_property.substr(0, colon));
    if (family == nullptr ||
        !db_->GetProperty(family, ToSlice(rocksdb_property.substr(colon + 1)), &value)) {
      return "";
    }
    return value;
  }
  uint64_t sum = 0;
  if (db_->GetAggregatedIntProperty(ToSlice(rocksdb_property), &sum)) return std::to_string(sum);
  if (!db_->GetProperty(log_, ToSlice(rocksdb_property), &value)) return "";
  return value;
}

}  // namespace persona
