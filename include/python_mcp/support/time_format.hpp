#pragma once
// Times as people read them: ISO 8601 timestamps in UTC, to the second
// ("2026-11-24T19:00:03Z"), and durations in seconds for messages ("0.5 s", "120 s").

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace pymcp {

// Three significant digits, whole seconds from 100 on: "0.25 s", "1.5 s", "60 s", "3600 s".
inline std::string seconds_text(std::chrono::nanoseconds d) {
    const double s = std::chrono::duration<double>(d).count();
    char buf[32];
    std::snprintf(buf, sizeof buf, s >= 100 ? "%.0f s" : "%.3g s", s);
    return buf;
}

inline std::string iso8601_utc(std::chrono::system_clock::time_point t) {
    std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace pymcp
