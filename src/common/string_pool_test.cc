#include "common/string_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

namespace persona {
namespace {

TEST(StringPoolTest, InternReturnsDenseStableCodes) {
  StringPool pool;
  EXPECT_EQ(pool.Intern("a"), 0u);
  EXPECT_EQ(pool.Intern("bb"), 1u);
  EXPECT_EQ(pool.Intern("a"), 0u);
  EXPECT_EQ(pool.Get(1), "bb");
  EXPECT_EQ(pool.Find("bb"), 1u);
  EXPECT_EQ(pool.Find("zz"), StringPool::kNone);
  EXPECT_EQ(pool.size(), 2u);
}

TEST(StringPoolTest, CodesSurviveManyChunksAndLargeStrings) {
  StringPool pool;
  const std::string big(100000, 'x');
  for (int i = 0; i < 200000; ++i) {
    ASSERT_EQ(pool.Intern("item" + std::to_string(i)), static_cast<uint32_t>(i + (i > 5000)));
    if (i == 5000) {
      EXPECT_EQ(pool.Intern(big), 5001u);
    }
  }
  EXPECT_EQ(pool.Get(5001), big);
  for (int i = 0; i < 200000; i += 997) {
    EXPECT_EQ(pool.Get(static_cast<uint32_t>(i + (i > 5000))), "item" + std::to_string(i));
  }
}

TEST(StringPoolTest, ReadersMayGetPublishedCodesWhileTheWriterInterns) {
  StringPool pool;
  std::atomic<uint32_t> published{0};
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) {
      const uint32_t n = published.load(std::memory_order_acquire);
      if (n == 0) continue;
      const uint32_t code = n - 1;
      ASSERT_EQ(pool.Get(code), "s" + std::to_string(code));
    }
  });
  for (uint32_t i = 0; i < 100000; ++i) {
    pool.Intern("s" + std::to_string(i));
    published.store(i + 1, std::memory_order_release);
  }
  done = true;
  reader.join();
}

TEST(StringPoolTest, SmallPoolMemoryIsSmall) {
  StringPool pool;
  pool.Intern("x");
  EXPECT_LT(pool.MemoryBytes(), 200u * 1024);
}

}  // namespace
}  // namespace persona
