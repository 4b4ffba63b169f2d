#pragma once
// The project's JSON type: nlohmann::basic_json with the standard containers, its containers
// allocated through the per-thread block cache (support/block_cache.hpp). Every layer uses this
// alias; nlohmann::json itself is a different type.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "python_mcp/support/block_cache.hpp"

namespace pymcp {

using json = nlohmann::basic_json<std::map, std::vector, std::string, bool, std::int64_t, std::uint64_t, double,
                                  CachedAllocator>;

// Sets `key` in `object` (which must be an object), trying the end of its key order first: when
// keys are added in ascending order, as the result builders do, no search is needed (a third of
// building a small tool result was std::map looking for where a key goes). Any order is still
// correct, only slower.
inline void append_field(json& object, std::string key, json value) {
    auto& fields = object.get_ref<json::object_t&>();
    fields.insert_or_assign(fields.end(), std::move(key), std::move(value));
}

}  // namespace pymcp
