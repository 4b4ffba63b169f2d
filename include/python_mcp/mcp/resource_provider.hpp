#pragma once
// What the MCP server serves as resources (resources/list, resources/read), behind an interface
// so the protocol layer knows nothing of who keeps them (the python tool's overflow store).
//
// Implementations are thread-safe: list() and read() are called from any connection's thread.
// read() throws ResourceNotFound for a URI it does not serve (the server answers -32002) and
// std::invalid_argument for a malformed request (-32602).

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "python_mcp/support/json.hpp"

namespace pymcp::mcp {

struct ResourceInfo {
    std::string uri;
    std::string name;
    std::string title;        // may be empty
    std::string description;  // may be empty
    std::string mime_type;
    size_t size = 0;  // bytes
};

struct ResourcePage {
    std::vector<ResourceInfo> resources;
    std::string next_cursor;  // empty: the last page
};

// One resources/read answer: text (valid UTF-8) or bytes (sent base64 as `blob`).
struct ResourceContents {
    std::string uri;
    std::string mime_type;
    std::string data;
    bool is_text = true;
    pymcp::json meta;  // the contents' _meta (null: none), e.g. where a partial read stopped
};

// The JSON-RPC error code of an unknown resource (MCP: "Resource not found").
inline constexpr int kResourceNotFound = -32002;

class ResourceNotFound : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class ResourceProvider {
public:
    virtual ~ResourceProvider() = default;
    // Newest first, `cursor` as the previous page's next_cursor ("" for the first page). Throws
    // std::invalid_argument for a cursor it did not hand out.
    virtual ResourcePage list(const std::string& cursor) = 0;
    virtual std::vector<ResourceContents> read(const std::string& uri) = 0;
};

// A resource as resources/list and a resource_link content item show it (`type` not included).
pymcp::json resource_json(const ResourceInfo& info);
// Appends `data` base64-encoded (standard alphabet, padded): a `blob`.
void append_base64(std::string& out, const std::string& data);

}  // namespace pymcp::mcp
