#pragma once
// Crash-safe file replacement: a crash at any point leaves the old file or the new one, never a
// torn one. Throws std::system_error naming the step that failed.

#include <filesystem>
#include <string_view>

namespace pymcp {

// Writes `data` to a temporary file beside `path`, fsyncs it, renames it over `path`, and fsyncs
// the folder so the rename itself survives a power cut.
void write_file_atomically(const std::filesystem::path& path, std::string_view data);

}  // namespace pymcp
