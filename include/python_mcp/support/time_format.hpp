#pragma once
// Timestamps as clients see them: ISO 8601 in UTC, to the second ("2026-11-24T19:00:03Z").

#include <chrono>
#include <ctime>
#include <string>

namespace pymcp {

inline std::string iso8601_utc(std::chrono::system_clock::time_point t) {
    std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace pymcp
