// The envelope every Persona model file shares (docs/model_format.md): magic "PERSONAM", format
// version (u32, 1), payload size (u64), the payload, then the XXH64 (seed 0) of the payload.
// Integers are little-endian. Each model encodes and decodes its own payload, starting with its
// `kind` string, and checks that kind itself; this file only moves verified bytes.

#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace persona {

// Writes `payload` inside the envelope to `path`, atomically: a temporary file beside it is
// written, fsynced and renamed over `path`, then the directory is fsynced, so a reader sees the
// old file or the whole new one, never a torn one. Fails with Internal on any I/O error.
absl::Status WriteModelArtifact(const std::string& path, std::string_view payload);

// Reads the whole file at `path`, checks the envelope and returns the payload. Errors: NotFound
// when the file cannot be opened; InvalidArgument "... is not a Persona model file" for another
// magic and "format version N is not supported" for another version; DataLoss for a file that is
// truncated, has trailing garbage, fails its checksum or cannot be read.
absl::StatusOr<std::string> ReadModelArtifact(const std::string& path);

}  // namespace persona
