// Test-only helpers for the profile stage's tests: events that own their strings, and a reader for
// the taobao UserBehavior CSV slice (parsed here on purpose: the event stage's readers are built
// in parallel and the profile tests must not depend on them). Not part of the library.
#pragma once

#include <cmath>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "event/event.h"

namespace persona::testing {

// An Event whose string fields are owned, so that tests can keep vectors of them.
struct OwnedEvent {
  std::string user, item, category, brand, order, query, session;
  EventType type = EventType::kView;
  int64_t ts_ms = 0;
  double price = std::nan("");
  int32_t quantity = 0;
  int8_t rating = 0;

  Event view() const {
    Event e;
    e.user_id = user;
    e.type = type;
    e.ts_ms = ts_ms;
    e.item_id = item;
    // A dotted key is a category path, anything else a category id.
    if (category.find('.') != std::string::npos) {
      e.category_path = category;
    } else {
      e.category_id = category;
    }
    e.brand = brand;
    e.order_id = order;
    e.query = query;
    e.session_id = session;
    e.price = price;
    e.quantity = quantity;
    e.rating = rating;
    return e;
  }
};

inline std::string TaobaoByUserPath() {
  return std::string(PERSONA_DATASETS) + "/taobao/UserBehavior-by-user.csv";
}

// Reads up to `limit` rows of a taobao UserBehavior CSV (user,item,category,behavior,seconds;
// behavior pv/cart/fav/buy). Returns false when the file cannot be opened.
inline bool ReadTaobao(const std::string& path, size_t limit, std::vector<OwnedEvent>* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  while (out->size() < limit && std::getline(in, line)) {
    std::vector<std::string> f;
    size_t start = 0;
    while (true) {
      const size_t comma = line.find(',', start);
      f.push_back(line.substr(start, comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (f.size() != 5) continue;
    OwnedEvent e;
    e.user = f[0];
    e.item = f[1];
    e.category = f[2];
    if (f[3] == "pv") {
      e.type = EventType::kView;
    } else if (f[3] == "cart") {
      e.type = EventType::kCart;
    } else if (f[3] == "fav") {
      e.type = EventType::kFav;
    } else if (f[3] == "buy") {
      e.type = EventType::kPurchase;
    } else {
      continue;
    }
    e.ts_ms = std::stoll(f[4]) * 1000;
    out->push_back(std::move(e));
  }
  return true;
}

}  // namespace persona::testing
