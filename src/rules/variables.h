// The bridge between rule expressions (tag rules and audience conditions) and the things
// they talk about. A VariableCatalog resolves a name at compile time to an id and a type; a
// VariableSource answers values by id at evaluation time. Expressions never see a Profile directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace persona {

enum class VarType : uint8_t { kNumber, kString, kBool };

struct VarInfo {
  uint32_t id;
  VarType type;
};

class VariableCatalog {
 public:
  virtual ~VariableCatalog() = default;
  // Resolves `name` (e.g. "monetary_30d", "lifecycle"); nullopt when unknown.
  virtual std::optional<VarInfo> Lookup(std::string_view name) const = 0;
  // Resolves a call with one string argument, e.g. interest.category("electronics") or
  // tag("bot"); the returned id must be passed to NumberCall/BoolCall. nullopt when unknown.
  virtual std::optional<VarInfo> LookupCall(std::string_view function, std::string_view arg) const {
    (void)function;
    (void)arg;
    return std::nullopt;
  }
  // Every name Lookup resolves, plus the function names LookupCall accepts (e.g.
  // "interest.category"). Used only to suggest a fix for a misspelt name, so the default of an
  // empty list is correct, just less helpful.
  virtual std::vector<std::string> Names() const { return {}; }
};

class VariableSource {
 public:
  virtual ~VariableSource() = default;
  virtual double Number(uint32_t id) const = 0;
  virtual std::string_view String(uint32_t id) const = 0;
  virtual bool Bool(uint32_t id) const = 0;
};

}  // namespace persona
