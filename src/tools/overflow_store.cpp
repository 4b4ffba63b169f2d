#include "python_mcp/tools/overflow_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace pymcp::tools {

namespace {

constexpr size_t kExpiredRemembered = 1024;

std::string random_hex(size_t bytes) {
    unsigned char buf[16] = {};
    bytes = std::min(bytes, sizeof buf);
    size_t got = 0;
    while (got < bytes)
        if (ssize_t n = ::getrandom(buf + got, bytes - got, 0); n > 0) got += static_cast<size_t>(n);
    std::string hex;
    for (size_t i = 0; i < bytes; ++i) hex += "0123456789abcdef"[buf[i] >> 4], hex += "0123456789abcdef"[buf[i] & 15];
    return hex;
}

// Length of the longest prefix of `s` that is whole, valid UTF-8 (RFC 3629: no overlongs, no
// surrogates, nothing past U+10FFFF).
size_t valid_utf8_prefix(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > s.size()) return i;
        uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
        for (size_t k = 1; k < n; ++k) {
            auto d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xC0) != 0x80) return i;
            cp = cp << 6 | (d & 0x3F);
        }
        static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += n;
    }
    return i;
}

// "<id>/<part>[?offset=N]" of a URI of ours, split; false when it is not one.
bool parse_uri(const std::string& uri, std::string& key, size_t& offset) {
    std::string_view rest(uri);
    std::string_view prefix(OverflowStore::kUriPrefix);
    if (rest.substr(0, prefix.size()) != prefix) return false;
    rest.remove_prefix(prefix.size());
    offset = 0;
    if (auto q = rest.find('?'); q != std::string_view::npos) {
        std::string_view query = rest.substr(q + 1);
        rest = rest.substr(0, q);
        if (query.substr(0, 7) != "offset=" || query.size() == 7 || query.size() > 7 + 15 ||
            query.find_first_not_of("0123456789", 7) != std::string_view::npos)
            throw std::invalid_argument("the only query a result URI takes is ?offset=N (a byte offset)");
        offset = std::stoull(std::string(query.substr(7)));
    }
    key = std::string(prefix) + std::string(rest);
    return true;
}

// Up to `max` bytes of `path` from `offset`; the file's size in `total`. Throws ResourceNotFound
// when the file is gone.
std::string read_range(const std::string& path, size_t offset, size_t max, size_t& total) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw mcp::ResourceNotFound("its file is gone (" + std::string(std::strerror(errno)) + ")");
    struct stat st {};
    ::fstat(fd, &st);
    total = static_cast<size_t>(st.st_size);
    std::string data;
    if (offset < total) {
        data.resize(std::min(max, total - offset));
        size_t got = 0;
        while (got < data.size()) {
            ssize_t n = ::pread(fd, data.data() + got, data.size() - got, static_cast<off_t>(offset + got));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            got += static_cast<size_t>(n);
        }
        data.resize(got);
    }
    ::close(fd);
    return data;
}

// A directory name this store makes: <pid>-<8 hex digits>. Nothing else under the root is ever
// removed (--results-dir may name a directory that holds other things).
bool is_server_dir_name(const std::string& name) {
    auto dash = name.find('-');
    return dash != std::string::npos && dash > 0 && dash < 11 && name.size() == dash + 9 &&
           name.find_first_not_of("0123456789") == dash &&
           name.find_first_not_of("0123456789abcdef", dash + 1) == std::string::npos;
}

}  // namespace

OverflowStore::OverflowStore(OverflowOptions options) : options_(std::move(options)), tag_(random_hex(3)) {}

OverflowStore::~OverflowStore() {
    if (lock_fd_ >= 0) ::close(lock_fd_);
}

// Directories of servers that are gone: their lock file can be locked. Ours is skipped (its
// lock is held by our own descriptor, and flock conflicts across descriptors too).
void OverflowStore::remove_dead_siblings() const {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(options_.root, ec)) {
        const auto name = e.path().filename().string();
        if (!is_server_dir_name(name) || !e.is_directory(ec) || e.path() == dir_) continue;
        int fd = ::open((e.path() / ".lock").c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) continue;
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
            std::filesystem::remove_all(e.path(), ec);
            spdlog::debug("removed the overflow files of a server that is gone: {}", e.path().string());
        }
        ::close(fd);
    }
}

// Made as tmp-<name>, locked, then renamed: another server never sees it unlocked.
bool OverflowStore::ensure_directory_locked() {
    if (!dir_.empty()) return true;
    if (dir_failed_) return false;
    std::error_code ec;
    std::string name = std::to_string(::getpid()) + "-" + random_hex(4);
    auto tmp = options_.root / ("tmp-" + name);
    std::filesystem::create_directories(tmp, ec);
    int fd = ec ? -1 : ::open((tmp / ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0 || ::rename(tmp.c_str(), (options_.root / name).c_str()) != 0) {
        spdlog::warn("output past max_output will only be cut, not kept: cannot make {}: {}", tmp.string(),
                     ec ? ec.message() : std::strerror(errno));
        if (fd >= 0) ::close(fd);
        std::filesystem::remove_all(tmp, ec);
        dir_failed_ = true;
        return false;
    }
    ::chmod((options_.root / name).c_str(), 0700);
    lock_fd_ = fd;
    dir_ = options_.root / name;
    remove_dead_siblings();
    return true;
}

OverflowStore::Reservation OverflowStore::reserve() {
    if (!enabled()) return {};
    std::lock_guard lock(mutex_);
    Reservation r;
    r.id = tag_ + "-" + std::to_string(next_id_++);
    if (ensure_directory_locked()) r.prefix = (dir_ / (r.id + "-")).string();
    return r;
}

OverflowStore::Entry OverflowStore::entry_for(const std::string& id, const std::string& part,
                                              const engine::SpoolFile& file, const std::string& mime_type) {
    Entry e;
    e.id = id;
    e.part = part;
    e.link.uri = std::string(kUriPrefix) + id + "/" + part;
    e.link.path = file.path;
    e.link.name = std::filesystem::path(file.path).filename().string();
    e.link.mime_type = mime_type;
    e.link.bytes = file.bytes;
    e.link.complete = file.complete;
    return e;
}

std::optional<OverflowLink> OverflowStore::adopt(const std::string& id, const std::string& part,
                                                 const engine::SpoolFile& file) {
    return add(entry_for(id, part, file, "text/plain"));
}

std::optional<OverflowLink> OverflowStore::keep(const std::string& id, const std::string& part, std::string_view data,
                                                const std::string& mime_type, const std::string& extension) {
    std::string path;
    {
        std::lock_guard lock(mutex_);
        if (!enabled() || !ensure_directory_locked()) return std::nullopt;
        path = (dir_ / (id + "-" + part + extension)).string();
    }
    const bool complete = data.size() <= max_file_bytes();
    if (!complete) data = data.substr(0, max_file_bytes());
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0;
    for (std::string_view rest = data; ok && !rest.empty();) {
        ssize_t n = ::write(fd, rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) rest.remove_prefix(static_cast<size_t>(n));
    }
    if (fd >= 0) ::close(fd);
    if (!ok) {
        spdlog::warn("cannot keep {}: {}", path, std::strerror(errno));
        ::unlink(path.c_str());
        return std::nullopt;
    }
    return add(entry_for(id, part, engine::SpoolFile{path, data.size(), complete}, mime_type));
}

// Registers the file, then drops the oldest files past the bounds (the new one included, when it
// alone is past them).
std::optional<OverflowLink> OverflowStore::add(Entry entry) {
    std::vector<std::string> doomed;
    std::optional<OverflowLink> link = entry.link;
    {
        std::lock_guard lock(mutex_);
        if (auto old = by_uri_.find(entry.link.uri); old != by_uri_.end()) {  // the same file again (a job's result)
            return entries_[old->second].link;
        }
        uint64_t seq = next_seq_++;
        total_bytes_ += entry.link.bytes;
        by_uri_[entry.link.uri] = seq;
        entries_.emplace(seq, std::move(entry));
        while (!entries_.empty() && (total_bytes_ > options_.max_bytes || entries_.size() > options_.max_files)) {
            auto oldest = entries_.begin();
            total_bytes_ -= oldest->second.link.bytes;
            by_uri_.erase(oldest->second.link.uri);
            if (oldest->first == seq) link.reset();
            expired_.push_back(oldest->second.link.uri);
            if (expired_.size() > kExpiredRemembered) expired_.pop_front();
            doomed.push_back(std::move(oldest->second.link.path));
            entries_.erase(oldest);
        }
    }
    for (const auto& path : doomed) ::unlink(path.c_str());
    return link;
}

mcp::ResourcePage OverflowStore::list(const std::string& cursor) {
    uint64_t before = UINT64_MAX;
    if (!cursor.empty()) {
        if (cursor.size() > 20 || cursor.find_first_not_of("0123456789") != std::string::npos)
            throw std::invalid_argument("Invalid params: unknown cursor '" + cursor.substr(0, 40) + "'");
        before = std::stoull(cursor);
    }
    mcp::ResourcePage page;
    std::lock_guard lock(mutex_);
    for (auto it = entries_.lower_bound(before); it != entries_.begin();) {
        --it;
        if (page.resources.size() == options_.page_size) {
            page.next_cursor = std::to_string(it->first + 1);
            break;
        }
        const auto& l = it->second.link;
        page.resources.push_back(mcp::ResourceInfo{
            l.uri, l.name, "python " + it->second.part + " of execution " + it->second.id,
            "The whole " + it->second.part + " of a python tool call" + (l.complete ? "" : " (its first bytes: it was longer)"),
            l.mime_type, l.bytes});
    }
    return page;
}

std::vector<mcp::ResourceContents> OverflowStore::read(const std::string& uri) {
    std::string key;
    size_t offset = 0;
    if (!parse_uri(uri, key, offset)) throw mcp::ResourceNotFound("Resource not found: '" + uri.substr(0, 200) + "' (this server serves python-mcp://results/... URIs only)");
    OverflowLink link;
    {
        std::lock_guard lock(mutex_);
        auto it = by_uri_.find(key);
        if (it == by_uri_.end()) {
            bool expired = std::find(expired_.begin(), expired_.end(), key) != expired_.end();
            throw mcp::ResourceNotFound(
                "Resource not found: '" + key.substr(0, 200) + "' " +
                (expired ? "has expired: the oldest results are dropped past --max-overflow-bytes / --max-overflow-files"
                         : "is unknown (results are kept by the server process that made them, until dropped as the "
                           "oldest; resources/list shows those kept)"));
        }
        link = entries_[it->second].link;
    }
    size_t total = 0;
    std::string data;
    try {
        data = read_range(link.path, offset, options_.max_read_bytes, total);
    } catch (const mcp::ResourceNotFound& e) {
        throw mcp::ResourceNotFound("Resource not found: '" + key + "' has expired: " + e.what());
    }
    mcp::ResourceContents c;
    c.uri = uri;
    c.mime_type = link.mime_type;
    const bool partial = offset > 0 || offset + data.size() < total;
    if (offset + data.size() < total) {  // do not end inside a character: the next read starts there
        size_t keep = valid_utf8_prefix(data);
        if (keep + 4 > data.size() && keep > 0) data.resize(keep);
    }
    c.is_text = valid_utf8_prefix(data) == data.size();
    if (partial)
        c.meta = json{{"python-mcp/offset", offset},
                      {"python-mcp/next_offset", offset + data.size()},
                      {"python-mcp/total_bytes", total}};
    c.data = std::move(data);
    return {std::move(c)};
}

}  // namespace pymcp::tools
