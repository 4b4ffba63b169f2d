#include "python_mcp/tools/sqlite/definition.hpp"

#include <sqlite3.h>

namespace pymcp::tools::sqlite {

namespace {

json field_schemas() {
    return json{
        {"sql",
         {{"description",
           "SQL to run: one string (it may hold several statements separated by ';') or a list of strings. "
           "Several statements run in one transaction: all applied or none."},
          {"anyOf", json::array({json{{"type", "string"}},
                                 json{{"type", "array"}, {"items", {{"type", "string"}}}, {"minItems", 1}}})}}},
        {"params",
         {{"description",
           "Values for positional placeholders (? and ?NNN), taken in order by the statements. When 'sql' is a "
           "list, a list of lists gives each string its own values (one list per string, also for one string). "
           "BLOBs as {\"$blob\": \"<base64>\"}."},
          {"anyOf", json::array({json{{"type", "array"}}, json{{"type", "object"}}})}}},
        {"bindings",
         {{"type", "object"},
          {"description", "Values for named placeholders :name, @name, $name (keys with or without the prefix)."}}},
        {"database",
         {{"type", "string"},
          {"default", ":memory:"},
          {"description",
           "A file name inside the server's data folder (sub-folders allowed, e.g. 'research.db'), an absolute "
           "path, or ':memory:' (one in-memory database shared by every call until the server stops)."}}},
        {"max_rows",
         {{"type", "integer"},
          {"minimum", 0},
          {"description",
           "Most rows to return; 0 = no limit. Default: 1000 for calls from the client, no limit for calls "
           "from Python code. structuredContent.truncated says when rows were cut."}}},
        {"read_only",
         {{"type", "boolean"},
          {"default", false},
          {"description", "Refuse any statement that would change the database."}}},
        {"operation",
         {{"type", "string"},
          {"enum", json::array({"execute", "readme"})},
          {"default", "execute"},
          {"description", "'readme' returns the full documentation; otherwise 'sql' is run."}}},
        {"tool_unlock_token", {{"type", "string"}, {"description", "The token stated in the readme, when required."}}},
    };
}

json input_schema() {
    json fields = field_schemas();
    json wrapped{{"type", "object"},
                 {"description", "The same fields wrapped as in the original tool: {\"input\": {\"sql\": ...}}."},
                 {"properties", fields}};
    json properties = fields;
    properties["input"] = std::move(wrapped);
    return json{{"type", "object"}, {"properties", std::move(properties)}};
}

json output_schema() {
    return json{
        {"type", "object"},
        {"properties",
         {{"columns", {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", "Column names of the rows."}}},
          {"rows",
           {{"type", "array"},
            {"items", {{"type", "array"}}},
            {"description",
             "Rows of the last statement that returns rows, each an array in column order. BLOBs as "
             "{\"$blob\": \"<base64>\"}."}}},
          {"rows_affected", {{"type", "integer"}, {"description", "Rows inserted, updated or deleted by the call."}}},
          {"last_insert_rowid",
           {{"type", "integer"}, {"description", "Rowid of the last row inserted by the call; 0 when none."}}},
          {"truncated", {{"type", "boolean"}, {"description", "True when max_rows cut the rows."}}}}},
        {"required", json::array({"columns", "rows", "rows_affected", "last_insert_rowid", "truncated"})},
    };
}

constexpr const char* kDescription =
    "Run SQL on SQLite databases (SQLite " SQLITE_VERSION "). Give 'sql' (one statement, several separated by "
    "';', or a list: several statements run in one transaction, all or nothing), 'params' for ? placeholders "
    "or 'bindings' for :name ones, and 'database' (a file name in the server's data folder such as "
    "'research.db', an absolute path, or ':memory:', the default, shared by all calls). Rows come back as a "
    "JSON array of objects keyed by column name (content[0].text), and as columns + rows arrays in "
    "structuredContent; other statements report rows_affected and last_insert_rowid. Calls from the client "
    "return at most 1000 rows unless max_rows says otherwise; calls from Python code (mcp.call('sqlite', ...)) "
    "get every row. read_only: true refuses changes. Fields may be wrapped as {\"input\": {...}}. "
    "Call with operation 'readme' for the full documentation.";

}  // namespace

mcp::ToolDefinition tool_definition() {
    mcp::ToolDefinition d;
    d.name = "sqlite";
    d.title = "SQLite";
    d.description = kDescription;
    d.input_schema = input_schema();
    d.output_schema = output_schema();
    d.annotations = json{{"title", "SQLite"},
                         {"readOnlyHint", false},
                         {"destructiveHint", true},
                         {"idempotentHint", false},
                         {"openWorldHint", false}};
    return d;
}

}  // namespace pymcp::tools::sqlite
