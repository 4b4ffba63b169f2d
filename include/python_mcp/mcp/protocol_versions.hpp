#pragma once
// The MCP revisions this project speaks, in one place for the server and the downstream client.

#include <array>
#include <string_view>

namespace pymcp::mcp {

// The legacy (initialize-based) revisions, newest first. The server answers a request for any of
// them with the same one, and anything else with the first; the client offers the first and
// accepts any of them.
inline constexpr std::array<std::string_view, 4> kLegacyProtocolVersions = {"2025-11-25", "2025-06-18", "2025-03-26",
                                                                            "2024-11-05"};

// The only revision that allows JSON-RPC batches.
inline constexpr std::string_view kBatchProtocolVersion = "2025-03-26";

// The modern (stateless, per-request `_meta`) revision: no initialize, every request names its
// version and capabilities in `_meta`, every result carries `resultType`.
inline constexpr std::string_view kModernProtocolVersion = "2026-07-28";

// The `_meta` keys of the modern revision.
inline constexpr const char* kMetaProtocolVersion = "io.modelcontextprotocol/protocolVersion";
inline constexpr const char* kMetaClientCapabilities = "io.modelcontextprotocol/clientCapabilities";
inline constexpr const char* kMetaClientInfo = "io.modelcontextprotocol/clientInfo";
inline constexpr const char* kMetaLogLevel = "io.modelcontextprotocol/logLevel";
inline constexpr const char* kMetaServerInfo = "io.modelcontextprotocol/serverInfo";
inline constexpr const char* kMetaSubscriptionId = "io.modelcontextprotocol/subscriptionId";

// The modern revision's error codes.
inline constexpr int kMissingRequiredClientCapability = -32021;
inline constexpr int kUnsupportedProtocolVersion = -32022;

inline bool is_legacy_protocol_version(std::string_view v) {
    for (auto known : kLegacyProtocolVersions)
        if (v == known) return true;
    return false;
}

}  // namespace pymcp::mcp
