#include "common/time_util.h"

#include <charconv>
#include <chrono>
#include <cstdio>

namespace persona {
namespace {

// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool ReadInt(std::string_view s, size_t& pos, size_t digits, int& out) {
  if (pos + digits > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < digits; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  pos += digits;
  out = v;
  return true;
}

}  // namespace

std::optional<int64_t> ParseIsoTime(std::string_view s) {
  size_t p = 0;
  int y, mo, d, h = 0, mi = 0, sec = 0;
  if (!ReadInt(s, p, 4, y) || p >= s.size() || s[p++] != '-' || !ReadInt(s, p, 2, mo) ||
      p >= s.size() || s[p++] != '-' || !ReadInt(s, p, 2, d))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return std::nullopt;
  int64_t frac_ms = 0;
  int64_t offset_ms = 0;
  if (p < s.size() && (s[p] == 'T' || s[p] == 't' || s[p] == ' ')) {
    ++p;
    if (!ReadInt(s, p, 2, h) || p >= s.size() || s[p++] != ':' || !ReadInt(s, p, 2, mi))
      return std::nullopt;
    if (p < s.size() && s[p] == ':') {
      ++p;
      if (!ReadInt(s, p, 2, sec)) return std::nullopt;
    }
    if (h > 23 || mi > 59 || sec > 60) return std::nullopt;
    if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
      ++p;
      int64_t scale = 100;
      size_t start = p;
      while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
        frac_ms += (s[p] - '0') * scale;
        scale /= 10;
        ++p;
      }
      if (p == start) return std::nullopt;
    }
    while (p < s.size() && s[p] == ' ') ++p;
    if (p < s.size()) {
      std::string_view zone = s.substr(p);
      if (zone == "Z" || zone == "z" || zone == "UTC" || zone == "GMT") {
        p = s.size();
      } else if (zone[0] == '+' || zone[0] == '-') {
        int sign = zone[0] == '-' ? -1 : 1;
        ++p;
        int oh, om = 0;
        if (!ReadInt(s, p, 2, oh)) return std::nullopt;
        if (p < s.size() && s[p] == ':') ++p;
        if (p < s.size() && !ReadInt(s, p, 2, om)) return std::nullopt;
        if (oh > 23 || om > 59) return std::nullopt;
        offset_ms = sign * (oh * kHourMs + om * kMinuteMs);
      } else {
        return std::nullopt;
      }
    }
  }
  if (p != s.size()) return std::nullopt;
  const int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  return days * kDayMs + h * kHourMs + mi * kMinuteMs + sec * kSecondMs + frac_ms - offset_ms;
}

std::string FormatIsoTime(int64_t ms) {
  int64_t days = FloorDiv(ms, kDayMs);
  int64_t rem = ms - days * kDayMs;
  // civil_from_days
  int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  if (y < 0 || y > 9999) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ",
                  static_cast<long long>(y), m, d, static_cast<long long>(rem / kHourMs),
                  static_cast<long long>(rem / kMinuteMs % 60),
                  static_cast<long long>(rem / kSecondMs % 60),
                  static_cast<long long>(rem % 1000));
    return buf;
  }
  // The common case without printf (profile JSON formats several times per read).
  std::string out = "0000-00-00T00:00:00.000Z";
  auto put = [&out](size_t pos, unsigned v, int digits) {
    for (int i = digits - 1; i >= 0; --i) {
      out[pos + i] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
  };
  put(0, static_cast<unsigned>(y), 4);
  put(5, m, 2);
  put(8, d, 2);
  put(11, static_cast<unsigned>(rem / kHourMs), 2);
  put(14, static_cast<unsigned>(rem / kMinuteMs % 60), 2);
  put(17, static_cast<unsigned>(rem / kSecondMs % 60), 2);
  put(20, static_cast<unsigned>(rem % 1000), 3);
  return out;
}

std::optional<int64_t> ParseDuration(std::string_view s) {
  double v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || v < 0) return std::nullopt;
  std::string_view unit(r.ptr, s.data() + s.size() - r.ptr);
  double mult;
  if (unit == "ms")
    mult = 1;
  else if (unit == "s" || unit.empty())
    mult = kSecondMs;
  else if (unit == "m" || unit == "min")
    mult = kMinuteMs;
  else if (unit == "h")
    mult = kHourMs;
  else if (unit == "d")
    mult = kDayMs;
  else if (unit == "w")
    mult = 7 * kDayMs;
  else
    return std::nullopt;
  return static_cast<int64_t>(v * mult);
}

int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace persona
