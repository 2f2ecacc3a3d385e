// For tests: a fresh directory under testing::TempDir(), removed with everything in it when the
// object goes out of scope. Unique per process and per instance, so tests can run in parallel.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "gtest/gtest.h"

namespace persona {

class ScopedTempDir {
 public:
  explicit ScopedTempDir(std::string_view name) {
    static std::atomic<int> instances{0};
    path_ = testing::TempDir() + "persona_" + std::string(name) + "_" + std::to_string(getpid()) +
            "_" + std::to_string(instances++);
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    std::filesystem::create_directories(path_, ec);
  }
  ~ScopedTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace persona
