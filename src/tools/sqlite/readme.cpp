#include "python_mcp/tools/sqlite/readme.hpp"

#include <sqlite3.h>

namespace pymcp::tools::sqlite {

namespace {

std::string arguments_section(const SqliteToolOptions& options) {
    return std::string(R"(## Arguments
Give the fields directly, or wrapped as in the original tool: {"input": {"sql": ..., ...}}.

- sql: one SQL string, or a list of SQL strings. A string may hold several statements separated
  by ';'. When a call has more than one statement they all run in ONE transaction: if any fails,
  everything is rolled back and nothing is applied. (SQL that starts with its own BEGIN manages
  its own transaction; it must end it with COMMIT or ROLLBACK in the same call: a transaction
  cannot span calls. A plain BEGIN or BEGIN DEFERRED runs as BEGIN IMMEDIATE unless read_only is
  set, so a transaction that reads and then writes waits for other writers like any write.)
- params: values for positional placeholders ? and ?NNN. With several statements, each takes as
  many values as it has placeholders, in order. When sql is a list, params may instead be a list
  of lists, one per string (null for none), also for a list of one string:
  {"sql": ["SELECT ? AS a, ? AS b"], "params": [["x", 1]]}. The number of lists must match the
  number of strings. An object here is taken as bindings.
- bindings: object of values for named placeholders :name, @name and $name; keys may be written
  with or without the prefix ("id" or ":id"). Every statement takes the names it uses; unused
  names are ignored. A statement cannot mix ? and :name placeholders.
- database: where the data lives (default ":memory:"):
  - ":memory:" is ONE in-memory database shared by every call (client and Python) until the
    server stops.
  - A relative name such as "research.db" or "projects/2025.db" is a file in the data folder
    )" + options.data_dir.string() + R"(
    (created when missing). Sub-folders are allowed; "..", names starting with '.', control
    characters and symbolic links leading outside the folder are refused. These files use WAL mode.
  - An absolute path ("/home/me/data.db") is used as given.
- max_rows: most rows to return; 0 means no limit. When omitted: 1000 for calls straight from the
  client (keeps the model's context small), no limit for calls from Python code. When rows were
  cut, structuredContent.truncated is true and a second text block says so. Process large results
  in Python, where all rows come back.
- read_only: true refuses every statement that would change the database (checked before it runs).
- operation: "readme" returns this text (no token needed). Omitted or "execute": run sql.
- tool_unlock_token: see above.

)");
}

std::string values_and_results_section() {
    return std::string(R"(## Values
JSON null, true/false (stored as 1/0), integers, floats and strings map to SQLite NULL, INTEGER,
REAL and TEXT. A BLOB is written {"$blob": "<base64>"}, in params and bindings and in results.
Any other object or list is bound as its JSON text (handy with json_extract, json_each).
Integers come back as integers, REAL as floats (2.0, not 2), NULL as null.

## Results
- Statements that return rows (SELECT, PRAGMA, ... RETURNING): content[0].text is a JSON array of
  objects keyed by column name, e.g. [{"id": 1, "name": "a"}]. With several statements the rows
  of the LAST statement that returns rows are the result.
- Other statements: content[0].text is {"rows_affected": N, "last_insert_rowid": R}.
- structuredContent always holds {columns, rows (arrays in column order), rows_affected,
  last_insert_rowid, truncated}. rows_affected counts rows inserted, updated or deleted by the
  call's statements (not by triggers); last_insert_rowid is 0 when the call inserted nothing.
- Errors (SQL errors, bad arguments) come back as a tool error with SQLite's message and the
  statement it belongs to.

)");
}

std::string good_to_know_section(const SqliteToolOptions& options) {
    return std::string(R"(## Good to know
- Connections are pooled: per-connection state (PRAGMA settings such as foreign_keys, TEMP
  tables, ATTACH) is not guaranteed to carry over to the next call. Put such statements in the
  same call as the statements that need them. foreign_keys is off, as SQLite's default.
- Calls may run at the same time (threads, several Python sessions). Readers never wait; a writer
  waits up to )" + std::to_string(options.busy_timeout_ms) + R"( ms for another writer, then fails with "database is locked".
  This holds inside your own BEGIN ... COMMIT too; with read_only, BEGIN takes no write lock.
- Cancelling the request (notifications/cancelled, or a cancelled Python execution) stops a
  running statement at once; the call fails with "cancelled" and its transaction is rolled back.

)");
}

std::string examples_section() {
    return std::string(R"(## Examples (Python)
```python
import json
mcp.call('sqlite', {'input': {'sql': 'CREATE TABLE IF NOT EXISTS urls (url TEXT, seen TEXT)',
                              'database': 'research.db'}})
mcp.call('sqlite', {'input': {'sql': 'INSERT INTO urls VALUES (?, ?)',
                              'params': ['https://example.com', '2025-01-01'],
                              'database': 'research.db'}})
r = mcp.call('sqlite', {'input': {'sql': 'SELECT COUNT(*) AS count FROM urls', 'database': 'research.db'}})
count = json.loads(r['content'][0]['text'])[0]['count']

# Named values, and a transaction of several statements:
mcp.call('sqlite', {'sql': ['INSERT INTO urls VALUES (:u, :t)', 'DELETE FROM urls WHERE seen < :t'],
                    'bindings': {'u': 'https://a.example', 't': '2025-01-01'}, 'database': 'research.db'})
```
)");
}

}  // namespace

std::string build_readme(const SqliteToolOptions& options) {
    std::string token_line =
        options.gate.required
            ? "Every call except operation 'readme' must carry \"tool_unlock_token\": \"" + options.gate.token + "\"."
            : "This server does not require tool_unlock_token; it is accepted and ignored.";
    return std::string(R"(# sqlite: SQL on SQLite )") + SQLITE_VERSION + R"(

Runs SQL on SQLite databases, for the MCP client directly and for Python code through
mcp.call('sqlite', {...}). Both see the same databases.

)" + token_line + R"(

)" + arguments_section(options) + values_and_results_section() +
           good_to_know_section(options) + examples_section();
}

}  // namespace pymcp::tools::sqlite
