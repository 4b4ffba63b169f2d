#pragma once
// Overflow: the whole text of what a python call cut to max_output (stdout, stderr, the result's
// repr) or replaced (a structuredContent past 1 MiB), kept in files and served as MCP resources
// (python-mcp://results/<id>/<part>) until the storage bound drops them, oldest first.
//
// Files live in a directory of this process's own under the results root
// (<root>/<pid>-<random>/<id>-<part>.txt), locked with flock while the process lives: a later
// server removes the directories of servers that are gone (the lock is free) and never touches
// those of running ones. Files are written by the engine (spooling, see OutputBuffer) and taken
// over here (adopt), or written here (keep). Bounded in total bytes and in count; one file is at
// most max_bytes / 4 (max_file_bytes), so several running executions cannot each fill the bound.
//
// Thread-safe: mutex_ is a leaf; file reads, writes and removals of served files happen outside
// it (a read that loses the race with a removal says the resource expired). Throws only from
// read() and list() (the ResourceProvider contract) and std::bad_alloc.

#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "python_mcp/engine/engine.hpp"
#include "python_mcp/mcp/resource_provider.hpp"

namespace pymcp::tools {

struct OverflowOptions {
    std::filesystem::path root;            // --results-dir
    size_t max_bytes = 512 * 1024 * 1024;  // --max-overflow-bytes; 0: overflow off
    size_t max_files = 256;                // --max-overflow-files
    size_t page_size = 100;                // resources/list
    size_t max_read_bytes = 16 * 1024 * 1024;  // one resources/read answer; ?offset=N for the rest
};

// A kept file as a result names it.
struct OverflowLink {
    std::string uri;
    std::string name;  // the file's name
    std::string path;  // absolute: code can open() it
    std::string mime_type;
    size_t bytes = 0;
    bool complete = true;  // false: the text was longer than max_file_bytes; the file has its start
};

class OverflowStore final : public mcp::ResourceProvider {
public:
    explicit OverflowStore(OverflowOptions options);
    ~OverflowStore() override;
    OverflowStore(const OverflowStore&) = delete;
    OverflowStore& operator=(const OverflowStore&) = delete;

    bool enabled() const { return options_.max_bytes > 0; }
    size_t max_file_bytes() const { return options_.max_bytes / 4 > 0 ? options_.max_bytes / 4 : 1; }

    // A fresh id for one execution and the spool prefix its files start with ("" when overflow
    // is off or the directory cannot be made: nothing is then kept).
    struct Reservation {
        std::string id;
        std::string prefix;
    };
    Reservation reserve();
    // Takes over a file the engine spooled for `id` (part: stdout, stderr, result).
    std::optional<OverflowLink> adopt(const std::string& id, const std::string& part, const engine::SpoolFile& file);
    // Writes `data` as the file of `part` for `id` and takes it over; nullopt when off or on a
    // write error (logged). Data past max_file_bytes is not kept.
    std::optional<OverflowLink> keep(const std::string& id, const std::string& part, std::string_view data,
                                     const std::string& mime_type, const std::string& extension);

    mcp::ResourcePage list(const std::string& cursor) override;
    std::vector<mcp::ResourceContents> read(const std::string& uri) override;

    static constexpr const char* kUriPrefix = "python-mcp://results/";

private:
    struct Entry {
        OverflowLink link;
        std::string id;
        std::string part;
    };
    static Entry entry_for(const std::string& id, const std::string& part, const engine::SpoolFile& file,
                           const std::string& mime_type);
    bool ensure_directory_locked();
    std::optional<OverflowLink> add(Entry entry);
    void remove_dead_siblings() const;

    const OverflowOptions options_;
    std::mutex mutex_;
    std::filesystem::path dir_;   // GUARDED_BY(mutex_): empty until the first reserve()
    bool dir_failed_ = false;     // GUARDED_BY(mutex_)
    int lock_fd_ = -1;            // GUARDED_BY(mutex_)
    std::string tag_;             // random per process: ids of a restarted server differ
    uint64_t next_id_ = 1;        // GUARDED_BY(mutex_)
    uint64_t next_seq_ = 1;       // GUARDED_BY(mutex_)
    std::map<uint64_t, Entry> entries_;                  // GUARDED_BY(mutex_): by seq, oldest first
    std::unordered_map<std::string, uint64_t> by_uri_;   // GUARDED_BY(mutex_)
    size_t total_bytes_ = 0;                             // GUARDED_BY(mutex_)
    std::deque<std::string> expired_;                    // GUARDED_BY(mutex_): the last dropped URIs
};

}  // namespace pymcp::tools
