// The recommenders' item dictionary: one dense 32-bit id per item string across ALL partitions
// (profiles intern items per partition; recommendations rank items globally), plus each item's
// category node and the category hierarchy ("a.b.c" has ancestors "a.b" and "a").
//
// Thread-safe: Intern/Find may be called by every partition writer and reader concurrently. Lookups
// of known items take a shared lock on one of 16 shards (most events hit known items); Item/
// Category/Ancestors are lock-free (storage never moves once published).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace persona {

class ItemCatalog {
 public:
  static constexpr uint32_t kNone = 0xffffffffu;

  ItemCatalog();
  ~ItemCatalog();
  ItemCatalog(const ItemCatalog&) = delete;
  ItemCatalog& operator=(const ItemCatalog&) = delete;

  // Returns the id of `item`, adding it when new. A non-empty `category` (a dotted path or a flat
  // id) sets the item's category (the latest non-empty one wins). Ids are dense from 0 in order of
  // first sight.
  uint32_t Intern(std::string_view item, std::string_view category);
  // Sets the category of `id` (returned by Intern) as Intern(item, category) would, for callers
  // that keep the id: a no-op for an empty category or the one already set.
  void NoteCategory(uint32_t id, std::string_view category);
  // The id of `item`, or kNone.
  uint32_t Find(std::string_view item) const;
  // The string of an id returned by Intern/Find.
  std::string_view Item(uint32_t id) const;
  // The item's category node id, or kNone when none was ever given.
  uint32_t CategoryOf(uint32_t id) const;
  size_t size() const;

  // Category nodes: every dotted prefix of a category path is a node of its own.
  uint32_t FindCategory(std::string_view path) const;
  std::string_view CategoryName(uint32_t category) const;
  // `category` itself followed by its ancestors, nearest first ("a.b.c", "a.b", "a").
  std::span<const uint32_t> CategoryLineage(uint32_t category) const;
  size_t category_count() const;

 private:
  struct State;
  std::unique_ptr<State> state_;  // pimpl keeps the sharded tables out of every includer
};

}  // namespace persona
