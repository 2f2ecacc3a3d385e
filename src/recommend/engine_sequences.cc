#include "recommend/engine_sequences.h"

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace persona {

SequenceDataset SequencesFromEngine(const Engine& engine, uint32_t min_length) {
  SequenceDataset data;
  data.item_names.emplace_back();  // index 0: padding
  absl::flat_hash_map<std::string, uint32_t> index;
  std::vector<std::string> users;
  engine.ForEachUser([&](std::string_view user) { users.emplace_back(user); });
  std::vector<uint32_t> seq;
  for (const std::string& user : users) {
    seq.clear();
    engine.ReadProfile(user, [&](const Profile& p, const ProfileContext& ctx) {
      uint32_t last_code = StringPool::kNone;
      p.sequence().ForEach([&](const ItemSequence::Item& it) {
        if (it.code == last_code) return;
        last_code = it.code;
        std::string_view name = ctx.pool.Get(it.code);
        auto [pos, inserted] =
            index.try_emplace(std::string(name), static_cast<uint32_t>(data.item_names.size()));
        if (inserted) data.item_names.emplace_back(name);
        seq.push_back(pos->second);
      });
    });
    if (seq.size() < min_length) continue;
    data.user_names.push_back(user);
    data.sequences.push_back(seq);
  }
  data.num_items = static_cast<uint32_t>(data.item_names.size()) - 1;
  return data;
}

}  // namespace persona
