// Replacing a small file so that a crash leaves either the old or the new content, never a mix:
// write a temporary file beside it, fsync, rename over the target, fsync the directory. For
// definitions and model artifacts, which are rewritten whole.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace persona {

// Writes the concatenation of `parts` to `path` atomically and durably (see above). Internal
// naming the file and the system error on failure; the temporary file is removed then.
absl::Status WriteFileAtomically(const std::string& path,
                                 std::initializer_list<std::string_view> parts);

}  // namespace persona
