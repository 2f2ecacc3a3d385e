// Helpers shared by the engine tests: temp data dirs, batches from JSON text, profile comparison.
#pragma once

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "event/json_event.h"

namespace persona::testing_util {

// A fresh directory under the test temp dir, removed on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& name);
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Parses NDJSON text into a batch; fails the test on parse issues.
std::shared_ptr<EventBatch> BatchFromJson(const std::string& ndjson);

// Reads a taobao-format file's first `max_lines` lines into one batch (all events, in order).
std::shared_ptr<EventBatch> ReadTaobao(const std::string& path, size_t max_lines);

// Copies events [begin, end) of `src` (views stay valid while src lives) into a new batch that
// keeps `src` alive.
std::shared_ptr<EventBatch> Slice(const std::shared_ptr<EventBatch>& src, size_t begin, size_t end,
                                  const std::vector<size_t>* order = nullptr);

// Compares two JSON documents; numbers equal within relative `tolerance`. Returns "" when equal,
// else the path of the first difference.
std::string JsonDiff(const std::string& a, const std::string& b, double tolerance);

// All user ids held by the engine.
std::vector<std::string> AllUsers(const Engine& engine);

}  // namespace persona::testing_util
