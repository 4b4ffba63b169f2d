"""Report on SQLite databases: tables, row counts, columns with types, NULLs, distinct values, ranges.

Shipped with python-mcp (read-only; save a copy under another name to change it). Reads through
the server's `sqlite` tool (read_only), so names resolve in its data folder like any sqlite call.

    run_script sqlite_report.py                  every *.db, *.sqlite, *.sqlite3 in the working directory
    run_script sqlite_report.py args=[DATABASE]  a name in the data folder ("sales.db") or a path

In a persistent session afterwards:
    print(sqlite_report('sales.db'))
    table_summary('sales.db', 'orders')        a list of dicts, one per column
"""
import glob
import os
import sys

from tabulate import tabulate


def _query(database, sql, params=None):
    result = mcp.call("sqlite", {"input": {"sql": sql, "params": params or [], "database": database,
                                           "read_only": True}})
    data = result["structuredContent"]
    return [dict(zip(data["columns"], row)) for row in data["rows"]]


def _quote(identifier):
    return '"' + identifier.replace('"', '""') + '"'


def tables(database):
    return [r["name"] for r in _query(database, "SELECT name FROM sqlite_master WHERE type = 'table' "
                                                "AND name NOT LIKE 'sqlite_%' ORDER BY name")]


def table_summary(database, table):
    """One dict per column: column, type, nulls, distinct, min, max."""
    columns = _query(database, f"PRAGMA table_info({_quote(table)})")
    if not columns:
        return []
    parts = []
    for c in columns:
        q = _quote(c["name"])
        parts.append(f"SUM({q} IS NULL), COUNT(DISTINCT {q}), MIN({q}), MAX({q})")
    row = _query(database, f"SELECT {', '.join(parts)} FROM {_quote(table)}")[0]
    values = list(row.values())
    out = []
    for i, c in enumerate(columns):
        nulls, distinct, low, high = values[4 * i: 4 * i + 4]
        out.append({"column": c["name"], "type": c["type"] or "", "nulls": nulls or 0,
                    "distinct": distinct, "min": low, "max": high})
    return out


def _short(value):
    text = "" if value is None else str(value)
    return text if len(text) <= 30 else text[:27] + "..."


def sqlite_report(database):
    """The report on one database as text."""
    lines = [f"database {database}"]
    names = tables(database)
    if not names:
        lines.append("  (no tables)")
    for table in names:
        count = _query(database, f"SELECT COUNT(*) AS n FROM {_quote(table)}")[0]["n"]
        lines.append(f"\ntable {table}: {count} rows")
        rows = [[c["column"], c["type"], c["nulls"], c["distinct"], _short(c["min"]), _short(c["max"])]
                for c in table_summary(database, table)]
        lines.append(tabulate(rows, headers=["column", "type", "nulls", "distinct", "min", "max"]))
    return "\n".join(lines)


def main(argv):
    databases = list(argv)
    if not databases:
        found = sorted(glob.glob("*.db") + glob.glob("*.sqlite") + glob.glob("*.sqlite3"))
        databases = [os.path.abspath(p) for p in found]
    if not databases:
        print("sqlite_report: no database given and none in the working directory.\n" + __doc__)
        return
    for database in databases:
        print(sqlite_report(database))
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
