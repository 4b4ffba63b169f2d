// The cron parser of schedules (issue 13): next-time computations in local time (UTC and a zone
// with daylight saving time), month and day edges, and the errors of bad expressions.

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <string>

#include "python_mcp/tools/cron.hpp"

using pymcp::tools::CronError;
using pymcp::tools::CronExpression;

namespace {

// Sets TZ for the test and puts the old value back.
class Zone {
public:
    explicit Zone(const char* tz) {
        if (const char* old = std::getenv("TZ")) old_ = old, had_ = true;
        setenv("TZ", tz, 1);
        tzset();
    }
    ~Zone() {
        if (had_) setenv("TZ", old_.c_str(), 1); else unsetenv("TZ");
        tzset();
    }

private:
    std::string old_;
    bool had_ = false;
};

std::time_t at(int y, int mo, int d, int h, int mi) {
    std::tm tm{};
    tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d, tm.tm_hour = h, tm.tm_min = mi, tm.tm_isdst = -1;
    return std::mktime(&tm);
}

std::string local(std::time_t t) {
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M %a %Z", &tm);
    return buf;
}

std::string next(const char* expr, std::time_t after) {
    auto t = CronExpression::parse(expr).next_after(after);
    return t ? local(*t) : "none";
}

std::string error_of(const char* expr) {
    try {
        CronExpression::parse(expr);
    } catch (const CronError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(Cron, EveryMinuteIsTheNextWholeMinute) {
    Zone utc("UTC");
    EXPECT_EQ(next("* * * * *", at(2025, 3, 1, 10, 0)), "2025-03-01 10:01 Sat UTC");
    EXPECT_EQ(next("* * * * *", at(2025, 3, 1, 10, 0) + 59), "2025-03-01 10:01 Sat UTC");
}

TEST(Cron, StepsListsAndRanges) {
    Zone utc("UTC");
    EXPECT_EQ(next("*/15 * * * *", at(2025, 3, 1, 10, 16)), "2025-03-01 10:30 Sat UTC");
    EXPECT_EQ(next("5,40 9-17 * * *", at(2025, 3, 1, 17, 41)), "2025-03-02 09:05 Sun UTC");
    EXPECT_EQ(next("10-30/10 * * * *", at(2025, 3, 1, 10, 30)), "2025-03-01 11:10 Sat UTC");
    EXPECT_EQ(next("50/5 * * * *", at(2025, 3, 1, 10, 56)), "2025-03-01 11:50 Sat UTC");  // a/n: a to 59
    EXPECT_EQ(next("0 * * * *", at(2025, 3, 1, 23, 30)), "2025-03-02 00:00 Sun UTC");
}

TEST(Cron, MonthAndYearEdges) {
    Zone utc("UTC");
    EXPECT_EQ(next("0 0 31 * *", at(2025, 4, 1, 0, 0)), "2025-05-31 00:00 Sat UTC");  // April has no 31st
    EXPECT_EQ(next("0 0 1 * *", at(2025, 12, 15, 0, 0)), "2026-01-01 00:00 Thu UTC");
    EXPECT_EQ(next("0 12 29 2 *", at(2025, 3, 1, 0, 0)), "2028-02-29 12:00 Tue UTC");  // the next leap day
    EXPECT_EQ(next("59 23 31 12 *", at(2025, 12, 31, 23, 59)), "2026-12-31 23:59 Thu UTC");
    EXPECT_EQ(next("0 0 * jan,jul *", at(2025, 2, 10, 0, 0)), "2025-07-01 00:00 Tue UTC");
}

TEST(Cron, DaysOfWeekAndTheOrRuleWithDaysOfMonth) {
    Zone utc("UTC");
    EXPECT_EQ(next("0 9 * * mon-fri", at(2025, 3, 1, 10, 0)), "2025-03-03 09:00 Mon UTC");  // from a Saturday
    EXPECT_EQ(next("0 9 * * 7", at(2025, 3, 1, 10, 0)), "2025-03-02 09:00 Sun UTC");        // 7 is Sunday
    EXPECT_EQ(next("0 9 * * 0", at(2025, 3, 1, 10, 0)), "2025-03-02 09:00 Sun UTC");
    // Both restricted: either matches (the 13th, or any Friday).
    EXPECT_EQ(next("0 0 13 * fri", at(2025, 3, 1, 0, 0)), "2025-03-07 00:00 Fri UTC");
    EXPECT_EQ(next("0 0 13 * fri", at(2025, 3, 11, 0, 0)), "2025-03-13 00:00 Thu UTC");
    // Day of month restricted, day of week '*': only the day of month.
    EXPECT_EQ(next("0 0 13 * *", at(2025, 3, 1, 0, 0)), "2025-03-13 00:00 Thu UTC");
}

TEST(Cron, NeverMatchingDateHasNoNextTime) {
    Zone utc("UTC");
    EXPECT_FALSE(CronExpression::parse("0 0 30 2 *").next_after(at(2025, 1, 1, 0, 0)).has_value());
    EXPECT_FALSE(CronExpression::parse("0 0 31 4,6,9,11 *").next_after(at(2025, 1, 1, 0, 0)).has_value());
}

TEST(Cron, LocalTimeAcrossDaylightSavingChanges) {
    Zone berlin("Europe/Berlin");
    // 2025-03-30: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
    EXPECT_EQ(next("30 2 * * *", at(2025, 3, 29, 12, 0)), "2025-03-31 02:30 Mon CEST");
    EXPECT_EQ(next("0 9 * * *", at(2025, 3, 29, 12, 0)), "2025-03-30 09:00 Sun CEST");
    // Daily at 09:00 local is 23 hours after the previous one across the change.
    auto a = *CronExpression::parse("0 9 * * *").next_after(at(2025, 3, 29, 8, 0));
    auto b = *CronExpression::parse("0 9 * * *").next_after(a);
    EXPECT_EQ(b - a, 23 * 3600);
    // 2025-10-26: 03:00 CEST goes back to 02:00 CET; hourly keeps going, 60 minutes apart.
    auto h1 = *CronExpression::parse("0 * * * *").next_after(at(2025, 10, 26, 1, 30));
    auto h2 = *CronExpression::parse("0 * * * *").next_after(h1);
    EXPECT_EQ(h2 - h1, 3600);
}

TEST(Cron, NamesAreCaseInsensitiveAndTextIsNormalized) {
    Zone utc("UTC");
    auto e = CronExpression::parse("  0   12 * JAN-Mar  Sun ");
    EXPECT_EQ(e.text(), "0 12 * JAN-Mar Sun");
    EXPECT_EQ(local(*e.next_after(at(2025, 3, 25, 0, 0))), "2025-03-30 12:00 Sun UTC");
}

TEST(Cron, BadExpressionsSayWhatIsWrong) {
    EXPECT_NE(error_of("* * * *").find("5 fields"), std::string::npos);
    EXPECT_NE(error_of("* * * * * *").find("5 fields"), std::string::npos);
    EXPECT_NE(error_of("").find("5 fields"), std::string::npos);
    EXPECT_NE(error_of("60 * * * *").find("minute field '60': 60 is out of range 0-59"), std::string::npos);
    EXPECT_NE(error_of("* 24 * * *").find("hour"), std::string::npos);
    EXPECT_NE(error_of("* * 0 * *").find("day of month"), std::string::npos);
    EXPECT_NE(error_of("* * 32 * *").find("day of month"), std::string::npos);
    EXPECT_NE(error_of("* * * 13 * ").find("month"), std::string::npos);
    EXPECT_NE(error_of("* * * * 8").find("day of week"), std::string::npos);
    EXPECT_NE(error_of("*/0 * * * *").find("at least 1"), std::string::npos);
    EXPECT_NE(error_of("*/x * * * *").find("whole number"), std::string::npos);
    EXPECT_NE(error_of("30-10 * * * *").find("backwards"), std::string::npos);
    EXPECT_NE(error_of("1,,2 * * * *").find("empty item"), std::string::npos);
    EXPECT_NE(error_of("* * * foo *").find("'foo' is not a number or a name"), std::string::npos);
    EXPECT_NE(error_of("-5 * * * *").find("missing"), std::string::npos);
    EXPECT_NE(error_of("99999 * * * *").find("out of range"), std::string::npos);
    EXPECT_EQ(error_of("0 0 * * 1-7"), "");
}
