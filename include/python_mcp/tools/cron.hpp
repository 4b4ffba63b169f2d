#pragma once
// A 5-field cron expression (minute hour day-of-month month day-of-week), matched in the server's
// local time. Written for schedules (issue 13); no library.
//
// Fields: minute 0-59, hour 0-23, day of month 1-31, month 1-12 (or jan-dec), day of week 0-7
// (0 and 7 are Sunday, or sun-sat). Each field is '*', a number, a range 'a-b', a step '*/n',
// 'a-b/n' or 'a/n' (a to the field's maximum), or a comma list of those. As in Vixie cron, when
// both day of month and day of week are restricted (neither starts with '*'), a day matches when
// either matches. Wall-clock local time: in the hour skipped when daylight saving time starts
// no time matches; a time in the hour repeated when it ends matches twice.
//
// A value type, immutable after parse(); thread-safe to share. parse() throws CronError.

#include <bitset>
#include <ctime>
#include <optional>
#include <stdexcept>
#include <string>

namespace pymcp::tools {

class CronError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

class CronExpression {
public:
    // Throws CronError naming the field and what is wrong with it.
    static CronExpression parse(const std::string& text);

    // The first whole minute strictly after `after` that matches, in local time; nullopt when
    // none does within 8 years (e.g. "0 0 30 2 *": February has no 30th).
    std::optional<std::time_t> next_after(std::time_t after) const;
    const std::string& text() const { return text_; }

private:
    bool day_matches(const std::tm& tm) const;

    std::string text_;
    std::bitset<60> minutes_;
    std::bitset<24> hours_;
    std::bitset<32> days_;     // 1-31
    std::bitset<13> months_;   // 1-12
    std::bitset<7> weekdays_;  // 0-6, Sunday 0
    bool days_any_ = true;      // the day-of-month field starts with '*'
    bool weekdays_any_ = true;  // the day-of-week field starts with '*'
};

}  // namespace pymcp::tools
