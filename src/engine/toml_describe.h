// What a TOML value holds, for "expected X but found Y" messages of the config loaders (the
// engine's and the HTTP service's [server] table): "\"text\"", "42", "1.5", "true", "a table".
#pragma once

#include <toml++/toml.h>

#include <string>

namespace persona {

std::string DescribeTomlValue(const toml::node& node);

}  // namespace persona
