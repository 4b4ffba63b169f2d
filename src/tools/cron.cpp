#include "python_mcp/tools/cron.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

namespace pymcp::tools {

namespace {

struct Field {
    const char* name;
    int min;
    int max;
    const char* const* names;  // names[0] is the value `min`, or null
};

const char* const kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                   "jul", "aug", "sep", "oct", "nov", "dec"};
const char* const kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

// The day of week accepts 7 (Sunday, as 0): folded in after parsing.
const Field kFields[] = {{"minute", 0, 59, nullptr},
                         {"hour", 0, 23, nullptr},
                         {"day of month", 1, 31, nullptr},
                         {"month", 1, 12, kMonthNames},
                         {"day of week", 0, 7, kDayNames}};

std::vector<std::string> split(const std::string& text, char sep) {
    std::vector<std::string> parts;
    size_t start = 0;
    for (;;) {
        size_t end = text.find(sep, start);
        parts.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
        if (end == std::string::npos) return parts;
        start = end + 1;
    }
}

[[noreturn]] void fail(const Field& f, const std::string& item, const std::string& why) {
    throw CronError(std::string("cron ") + f.name + " field '" + item + "': " + why);
}

// A number or (month, day of week) a three-letter name.
int value(const Field& f, const std::string& text, const std::string& item) {
    if (text.empty()) fail(f, item, "a value is missing");
    if (std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
        if (text.size() > 4) fail(f, item, text + " is out of range " + std::to_string(f.min) + "-" + std::to_string(f.max));
        int v = std::stoi(text);
        if (v < f.min || v > f.max)
            fail(f, item, text + " is out of range " + std::to_string(f.min) + "-" + std::to_string(f.max));
        return v;
    }
    if (f.names) {
        std::string lower;
        for (unsigned char c : text) lower += static_cast<char>(std::tolower(c));
        int count = f.max - f.min + 1 - (f.max == 7 ? 1 : 0);
        for (int i = 0; i < count; ++i)
            if (lower == f.names[i]) return f.min + i;
    }
    fail(f, item, "'" + text + "' is not a number" + (f.names ? " or a name (e.g. " + std::string(f.names[0]) + ")" : ""));
}

// One comma-separated item: '*', 'a', 'a-b', each optionally '/step'. Sets bits min..max.
void parse_item(const Field& f, const std::string& item, std::vector<bool>& bits) {
    std::string base = item;
    int step = 1;
    if (auto slash = item.find('/'); slash != std::string::npos) {
        base = item.substr(0, slash);
        std::string s = item.substr(slash + 1);
        if (s.empty() || s.size() > 4 || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }))
            fail(f, item, "the step after '/' must be a whole number");
        step = std::stoi(s);
        if (step < 1) fail(f, item, "the step must be at least 1");
    }
    int lo = f.min, hi = f.max;
    if (base != "*") {
        auto dash = base.find('-');
        if (dash == std::string::npos) {
            lo = value(f, base, item);
            hi = item.find('/') != std::string::npos ? f.max : lo;  // 'a/n': from a to the maximum
        } else {
            lo = value(f, base.substr(0, dash), item);
            hi = value(f, base.substr(dash + 1), item);
            if (lo > hi) fail(f, item, "the range runs backwards (" + std::to_string(lo) + " > " + std::to_string(hi) + ")");
        }
    }
    for (int v = lo; v <= hi; v += step) bits[static_cast<size_t>(v - f.min)] = true;
}

std::vector<bool> parse_field(const Field& f, const std::string& text) {
    std::vector<bool> bits(static_cast<size_t>(f.max - f.min + 1));
    for (const auto& item : split(text, ',')) {
        if (item.empty()) fail(f, text, "an empty item in the list");
        parse_item(f, item, bits);
    }
    return bits;
}

template <size_t N>
void copy_bits(const std::vector<bool>& bits, int offset, std::bitset<N>& out) {
    for (size_t i = 0; i < bits.size(); ++i)
        if (bits[i]) out.set((i + static_cast<size_t>(offset)) % N);
}

std::vector<std::string> words(const std::string& text) {
    std::vector<std::string> out;
    std::string word;
    for (char c : text) {
        if (std::isspace(static_cast<unsigned char>(c))) {
            if (!word.empty()) out.push_back(std::move(word)), word.clear();
        } else {
            word += c;
        }
    }
    if (!word.empty()) out.push_back(std::move(word));
    return out;
}

}  // namespace

CronExpression CronExpression::parse(const std::string& text) {
    auto fields = words(text);
    if (fields.size() != 5)
        throw CronError("a cron expression has 5 fields (minute hour day-of-month month day-of-week, e.g. '0 * * * *' "
                        "for every hour), not " + std::to_string(fields.size()) + ": '" + text + "'");
    CronExpression e;
    for (size_t i = 0; i < fields.size(); ++i) e.text_ += (i ? " " : "") + fields[i];
    copy_bits(parse_field(kFields[0], fields[0]), 0, e.minutes_);
    copy_bits(parse_field(kFields[1], fields[1]), 0, e.hours_);
    copy_bits(parse_field(kFields[2], fields[2]), 1, e.days_);
    copy_bits(parse_field(kFields[3], fields[3]), 1, e.months_);
    copy_bits(parse_field(kFields[4], fields[4]), 0, e.weekdays_);  // 7 folds onto 0 (Sunday)
    e.days_any_ = fields[2][0] == '*';
    e.weekdays_any_ = fields[4][0] == '*';
    return e;
}

bool CronExpression::day_matches(const std::tm& tm) const {
    bool day = days_[static_cast<size_t>(tm.tm_mday)];
    bool weekday = weekdays_[static_cast<size_t>(tm.tm_wday)];
    if (!days_any_ && !weekdays_any_) return day || weekday;  // Vixie cron: either one
    return day && weekday;
}

namespace {

// Local midnight of the day `days` after tm's day (of the first of the month after, with
// `months`); never earlier than `floor` + 60 (mktime may land back in a repeated hour).
std::time_t local_start(std::tm tm, int days, int months, std::time_t floor) {
    tm.tm_sec = tm.tm_min = tm.tm_hour = 0;
    if (months) tm.tm_mday = 1, tm.tm_mon += months;
    tm.tm_mday += days;
    tm.tm_isdst = -1;
    std::time_t t = std::mktime(&tm);
    return std::max(t, floor + 60);
}

}  // namespace

std::optional<std::time_t> CronExpression::next_after(std::time_t after) const {
    // Local offsets are whole minutes, so a minute boundary is one in UTC as well.
    std::time_t t = (after / 60 + 1) * 60;
    const std::time_t limit = after + static_cast<std::time_t>(8) * 366 * 86400;
    while (t <= limit) {
        std::tm tm{};
        localtime_r(&t, &tm);
        if (!months_[static_cast<size_t>(tm.tm_mon + 1)]) {
            t = local_start(tm, 0, 1, t);
        } else if (!day_matches(tm)) {
            t = local_start(tm, 1, 0, t);
        } else if (!hours_[static_cast<size_t>(tm.tm_hour)]) {
            t += (60 - tm.tm_min) * 60 - tm.tm_sec;
        } else if (!minutes_[static_cast<size_t>(tm.tm_min)]) {
            t += 60 - tm.tm_sec;
        } else {
            return t;
        }
    }
    return std::nullopt;
}

}  // namespace pymcp::tools
