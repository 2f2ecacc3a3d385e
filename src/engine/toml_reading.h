// Reading TOML for the config loaders (the engine's keys and the HTTP service's [server] table):
// parsing with "origin:line:column: message" errors, reading the file, and describing a value for
// "expected X but found Y" messages.
#pragma once

#include <toml++/toml.h>

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace persona {

// Parses TOML text; InvalidArgument "origin:line:column: what" on a syntax error.
absl::StatusOr<toml::table> ParseTomlText(std::string_view text, std::string_view origin);
// The whole file; NotFound naming the path and the system error when it cannot be read.
absl::StatusOr<std::string> ReadConfigFile(const std::string& path);
// What a value holds: "\"text\"", "42", "1.5", "true", "a table", "an array", "a date or time".
std::string DescribeTomlValue(const toml::node& node);

}  // namespace persona
