#pragma once
// Logging set-up. The server's logs go to a private duplicate of the original stderr (fd 2
// itself may be a capture pipe once the server runs) and optionally to a file; never stdout.

#include <string>

namespace pymcp {

// level: trace, debug, info, warn, error, critical, off. Throws std::invalid_argument on an
// unknown level and spdlog::spdlog_ex when the log file cannot be opened.
void init_logging(int stderr_fd, const std::string& level, const std::string& log_file);

// Parses a level name; throws std::invalid_argument naming the accepted values.
int parse_log_level(const std::string& level);

}  // namespace pymcp
