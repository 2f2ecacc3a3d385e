#include "common/serial_worker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace persona {
namespace {

TEST(SerialWorkerTest, RunsCallsInOrderOffTheCallerThreadAndDrainsOnDestruction) {
  std::vector<int> order;
  std::atomic<bool> other_thread{true};
  const std::thread::id caller = std::this_thread::get_id();
  {
    SerialWorker worker;
    for (int i = 0; i < 100; ++i) {
      worker.Post([&, i] {
        if (std::this_thread::get_id() == caller) other_thread = false;
        order.push_back(i);  // one call at a time: no lock needed
      });
    }
  }  // the destructor runs the 100 posted calls before joining
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
  EXPECT_TRUE(other_thread);
}

}  // namespace
}  // namespace persona
