#include "python_mcp/tools/sqlite/result_set.hpp"

#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/support/json_text.hpp"
#include "python_mcp/tools/sqlite/base64.hpp"

namespace pymcp::tools::sqlite {

ResultSet::ResultSet(sqlite3_stmt* stmt, std::size_t limit) : limit_(limit), text_("["), rows_(json::array()) {
    const int n = sqlite3_column_count(stmt);
    for (int c = 0; c < n; ++c) {
        const char* name = sqlite3_column_name(stmt, c);
        std::string column = sanitize_utf8(name ? name : "");
        std::string key = c ? "," : "";
        append_json_string(key, column.data(), column.size());
        key += ':';
        keys_.push_back(std::move(key));
        columns_.push_back(std::move(column));
    }
}

void ResultSet::add_row(sqlite3_stmt* stmt) {
    json row = json::array();
    auto& cells = row.get_ref<json::array_t&>();
    cells.reserve(keys_.size());
    text_ += count_ ? ",{" : "{";
    for (std::size_t c = 0; c < keys_.size(); ++c) {
        text_ += keys_[c];
        cells.push_back(read_cell(stmt, int(c)));
    }
    text_ += '}';
    rows_.get_ref<json::array_t&>().push_back(std::move(row));
    ++count_;
}

std::string ResultSet::take_text() {
    text_ += ']';
    return std::move(text_);
}

json ResultSet::take_columns() {
    json columns(json::value_t::array);
    auto& names = columns.get_ref<json::array_t&>();
    names.reserve(columns_.size());
    for (auto& c : columns_) names.emplace_back(std::move(c));
    return columns;
}

json ResultSet::read_cell(sqlite3_stmt* stmt, int c) {
    switch (sqlite3_column_type(stmt, c)) {
        case SQLITE_INTEGER: {
            long long v = sqlite3_column_int64(stmt, c);
            append_json_integer(text_, v);
            return v;
        }
        case SQLITE_FLOAT: {
            double v = sqlite3_column_double(stmt, c);
            append_json_real(text_, v);
            return v;
        }
        case SQLITE_TEXT: {
            // column_text before column_bytes: the order the SQLite docs require.
            auto p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
            std::size_t n = std::size_t(sqlite3_column_bytes(stmt, c));
            if (!p) n = 0, p = "";
            bool clean = append_json_string(text_, p, n);
            return clean ? json(std::string(p, n)) : json(sanitize_utf8(p, n));
        }
        case SQLITE_BLOB: {
            auto p = static_cast<const unsigned char*>(sqlite3_column_blob(stmt, c));
            std::size_t n = std::size_t(sqlite3_column_bytes(stmt, c));
            std::string encoded;
            if (p) append_base64(encoded, p, n);
            text_ += "{\"$blob\":\"";
            text_ += encoded;
            text_ += "\"}";
            json blob = json::object();
            blob["$blob"] = std::move(encoded);
            return blob;
        }
        default:
            text_ += "null";
            return nullptr;
    }
}

// Keys are appended in ascending order (see append_field).
json build_call_result(std::optional<ResultSet>& rows, long long rows_affected, long long rowid) {
    json structured(json::value_t::object);
    std::string text;
    bool truncated = false;
    std::size_t shown = 0;
    if (rows) {
        truncated = rows->truncated();
        shown = rows->count();
        append_field(structured, "columns", rows->take_columns());
        append_field(structured, "last_insert_rowid", rowid);
        append_field(structured, "rows", rows->take_rows());
        text = rows->take_text();
    } else {
        append_field(structured, "columns", json::array());
        append_field(structured, "last_insert_rowid", rowid);
        append_field(structured, "rows", json::array());
        text = json{{"rows_affected", rows_affected}, {"last_insert_rowid", rowid}}.dump();
    }
    append_field(structured, "rows_affected", rows_affected);
    append_field(structured, "truncated", truncated);

    json content(json::value_t::array);
    json first(json::value_t::object);
    append_field(first, "text", std::move(text));
    append_field(first, "type", "text");
    content.push_back(std::move(first));
    if (truncated)
        content.push_back(mcp::text_content(
            "Only the first " + std::to_string(shown) +
            " rows are shown (max_rows). Narrow the query (WHERE, LIMIT, aggregates), pass a larger "
            "max_rows (0 = no limit), or process the rows in Python code, where no limit applies."));
    json result(json::value_t::object);
    append_field(result, "content", std::move(content));
    append_field(result, "isError", false);
    append_field(result, "structuredContent", std::move(structured));
    return result;
}

}  // namespace pymcp::tools::sqlite
