// Time helpers: all times in Persona are Unix epoch milliseconds (UTC) unless a name says
// otherwise.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace persona {

inline constexpr int64_t kSecondMs = 1000;
inline constexpr int64_t kMinuteMs = 60 * kSecondMs;
inline constexpr int64_t kHourMs = 60 * kMinuteMs;
inline constexpr int64_t kDayMs = 24 * kHourMs;
// 2000-01-01T00:00:00Z: the earliest event time Persona accepts.
inline constexpr int64_t kEpoch2000Ms = 946684800000LL;

// Parses ISO-8601 / RFC 3339 ("2019-10-01T00:00:00Z", "2019-10-01 00:00:00 UTC",
// "2019-10-01T08:00:00.123+08:00", "2019-10-01") to epoch ms. A missing zone means UTC.
std::optional<int64_t> ParseIsoTime(std::string_view s);
// Formats epoch ms as "2019-10-01T00:00:00.000Z".
std::string FormatIsoTime(int64_t ms);
// Parses a duration such as "30m", "7d", "12h", "500ms", "45s", "2w" to milliseconds.
std::optional<int64_t> ParseDuration(std::string_view s);

// The wall clock in epoch milliseconds (receipt times of dead letters, retention ages).
int64_t WallClockMs();

// Floor division that rounds toward negative infinity (days/hours before 1970 stay consistent).
inline int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

}  // namespace persona
