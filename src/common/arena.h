// A bump allocator for the strings of an event batch: events hold string_views into it, and the
// whole batch is freed at once when the last partition has applied it.
#pragma once

#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

namespace persona {

class StringArena {
 public:
  StringArena() = default;
  StringArena(const StringArena&) = delete;
  StringArena& operator=(const StringArena&) = delete;
  StringArena(StringArena&&) = default;
  StringArena& operator=(StringArena&&) = default;

  // Copies `s` into the arena and returns a view of the copy, valid for the arena's lifetime.
  std::string_view Copy(std::string_view s) {
    if (s.empty()) return {};
    char* p = Allocate(s.size());
    std::memcpy(p, s.data(), s.size());
    return {p, s.size()};
  }

  char* Allocate(size_t n) {
    if (used_ + n > size_) {
      size_ = n > kBlock / 2 ? n : kBlock;
      blocks_.push_back(std::make_unique<char[]>(size_));
      used_ = 0;
    }
    char* p = blocks_.back().get() + used_;
    used_ += n;
    return p;
  }

 private:
  static constexpr size_t kBlock = 256 * 1024;
  std::vector<std::unique_ptr<char[]>> blocks_;
  size_t used_ = 0;
  size_t size_ = 0;
};

}  // namespace persona
