#include "recommend/item_catalog.h"

#include <array>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "common/arena.h"
#include "common/stable_slots.h"

namespace persona {
namespace {

// A string stored once, with the hash that chose its shard: the map reuses that hash instead of
// hashing the string a second time.
struct HashedName {
  std::string_view name;
  size_t hash;
};
struct HashedNameHash {
  size_t operator()(const HashedName& k) const { return k.hash; }
};
struct HashedNameEq {
  bool operator()(const HashedName& a, const HashedName& b) const {
    return a.hash == b.hash && a.name == b.name;
  }
};
using NameIndex = absl::flat_hash_map<HashedName, uint32_t, HashedNameHash, HashedNameEq>;

size_t HashName(std::string_view s) { return absl::Hash<std::string_view>{}(s); }

struct ItemRecord {
  // Points at a length-prefixed copy of the item string (4-byte length, then the bytes), so that a
  // reader who learnt the id through any path (e.g. a trending snapshot) sees the whole string or
  // nothing; null until published.
  std::atomic<const char*> name{nullptr};
  std::atomic<uint32_t> category{ItemCatalog::kNone};
};

struct CategoryNode {
  // Written once before the node's id is published (through an item's category or the index).
  std::string name;
  std::vector<uint32_t> lineage;  // self, parent, ..., root
};

struct alignas(64) Shard {
  mutable std::shared_mutex mu;
  NameIndex index;
  StringArena names;
};

constexpr int kShardBits = 4;

}  // namespace

struct ItemCatalog::State {
  Shard& ShardOf(size_t hash) { return shards[hash >> (64 - kShardBits)]; }
  const Shard& ShardOf(size_t hash) const { return shards[hash >> (64 - kShardBits)]; }

  // The node of a category path, creating it and its missing ancestors (ancestors first, so that
  // a node's lineage only names existing nodes).
  uint32_t InternCategory(std::string_view path) {
    const size_t hash = HashName(path);
    {
      std::shared_lock lock(category_mu);
      auto it = category_index.find(HashedName{path, hash});
      if (it != category_index.end()) return it->second;
    }
    std::unique_lock lock(category_mu);
    // Every prefix that ends before a '.' is an ancestor; empty segments ("a..b") add no node.
    std::vector<uint32_t> chain;  // root first
    for (size_t end = 0; end <= path.size(); ++end) {
      if (end < path.size() && path[end] != '.') continue;
      if (end == 0 || path[end - 1] == '.') continue;
      const std::string_view prefix = path.substr(0, end);
      const size_t h = end == path.size() ? hash : HashName(prefix);
      auto it = category_index.find(HashedName{prefix, h});
      if (it != category_index.end()) {
        chain.push_back(it->second);
        continue;
      }
      const uint32_t id = category_count.load(std::memory_order_relaxed);
      CategoryNode& node = categories.Get(id);
      node.name.assign(prefix);
      node.lineage.assign(chain.rbegin(), chain.rend());
      node.lineage.insert(node.lineage.begin(), id);
      category_index.emplace(HashedName{node.name, h}, id);
      category_count.store(id + 1, std::memory_order_release);
      chain.push_back(id);
    }
    // A path made only of dots has no node of its own.
    return chain.empty() ? kNone : chain.back();
  }

  std::array<Shard, 1u << kShardBits> shards;
  std::atomic<uint32_t> next_id{0};
  StableSlots<ItemRecord> items;

  // Categories are few and change rarely: one reader-writer lock is enough, and the hot path
  // (an item seen again with its known category) does not take it.
  mutable std::shared_mutex category_mu;
  NameIndex category_index;
  std::atomic<uint32_t> category_count{0};
  StableSlots<CategoryNode> categories;
};

ItemCatalog::ItemCatalog() : state_(std::make_unique<State>()) {}
ItemCatalog::~ItemCatalog() = default;

uint32_t ItemCatalog::Intern(std::string_view item, std::string_view category) {
  State& s = *state_;
  const size_t hash = HashName(item);
  Shard& shard = s.ShardOf(hash);
  uint32_t id = kNone;
  {
    std::shared_lock lock(shard.mu);
    auto it = shard.index.find(HashedName{item, hash});
    if (it != shard.index.end()) id = it->second;
  }
  if (id == kNone) {
    std::unique_lock lock(shard.mu);
    auto it = shard.index.find(HashedName{item, hash});
    if (it != shard.index.end()) {
      id = it->second;
    } else {
      const uint32_t size = static_cast<uint32_t>(item.size());
      char* stored = shard.names.Allocate(sizeof(size) + item.size());
      std::memcpy(stored, &size, sizeof(size));
      if (!item.empty()) std::memcpy(stored + sizeof(size), item.data(), item.size());
      id = s.next_id.fetch_add(1, std::memory_order_relaxed);
      s.items.Get(id).name.store(stored, std::memory_order_release);
      shard.index.emplace(HashedName{{stored + sizeof(size), item.size()}, hash}, id);
    }
  }
  NoteCategory(id, category);
  return id;
}

void ItemCatalog::NoteCategory(uint32_t id, std::string_view category) {
  if (category.empty()) return;
  State& s = *state_;
  ItemRecord* record = s.items.Find(id);
  if (record == nullptr) return;
  // Most events repeat the item's known category: compare before touching the category index.
  const uint32_t current = record->category.load(std::memory_order_acquire);
  if (current == kNone || CategoryName(current) != category) {
    const uint32_t node = s.InternCategory(category);
    if (node != kNone) record->category.store(node, std::memory_order_release);
  }
}

uint32_t ItemCatalog::Find(std::string_view item) const {
  const size_t hash = HashName(item);
  const Shard& shard = state_->ShardOf(hash);
  std::shared_lock lock(shard.mu);
  auto it = shard.index.find(HashedName{item, hash});
  return it == shard.index.end() ? kNone : it->second;
}

std::string_view ItemCatalog::Item(uint32_t id) const {
  const ItemRecord* record = state_->items.Find(id);
  if (record == nullptr) return {};
  const char* stored = record->name.load(std::memory_order_acquire);
  if (stored == nullptr) return {};
  uint32_t size;
  std::memcpy(&size, stored, sizeof(size));
  return {stored + sizeof(size), size};
}

uint32_t ItemCatalog::CategoryOf(uint32_t id) const {
  const ItemRecord* record = state_->items.Find(id);
  return record == nullptr ? kNone : record->category.load(std::memory_order_acquire);
}

size_t ItemCatalog::size() const { return state_->next_id.load(std::memory_order_acquire); }

uint32_t ItemCatalog::FindCategory(std::string_view path) const {
  const State& s = *state_;
  std::shared_lock lock(s.category_mu);
  auto it = s.category_index.find(HashedName{path, HashName(path)});
  return it == s.category_index.end() ? kNone : it->second;
}

std::string_view ItemCatalog::CategoryName(uint32_t category) const {
  if (category >= category_count()) return {};
  return state_->categories.Find(category)->name;
}

std::span<const uint32_t> ItemCatalog::CategoryLineage(uint32_t category) const {
  if (category >= category_count()) return {};
  return state_->categories.Find(category)->lineage;
}

size_t ItemCatalog::category_count() const {
  return state_->category_count.load(std::memory_order_acquire);
}

}  // namespace persona
