"""Monitor a status URL: check it, keep every check in SQLite, show the trend.

Shipped with python-mcp (read-only; save a copy under another name to change it). The seed's
monitoring example, for tools that exist: requests for the check, the `sqlite` tool (through
mcp.call) for the history. Run it on a schedule (cron, a loop in a session) to build the history.

    run_script monitor_status.py args=[URL, DATABASE]   one check of URL, stored in DATABASE
                                                        (default monitoring.db in the data folder),
                                                        then the trend of that URL
    run_script monitor_status.py                        the trend of every URL checked so far

In a persistent session afterwards:
    check_status(url, database='monitoring.db')   -> the stored row as a dict
    print(trend(database='monitoring.db', url=None, last=20))
"""
import sys
import time
from datetime import datetime, timezone

import requests

DEFAULT_DATABASE = "monitoring.db"
_SCHEMA = ("CREATE TABLE IF NOT EXISTS status_checks (id INTEGER PRIMARY KEY, url TEXT NOT NULL, "
           "checked_at TEXT NOT NULL, status INTEGER, ok INTEGER NOT NULL, elapsed_ms REAL, bytes INTEGER, "
           "error TEXT)")


def _sql(database, sql, params=None):
    result = mcp.call("sqlite", {"input": {"sql": sql, "params": params or [], "database": database}})
    data = result["structuredContent"]
    return [dict(zip(data["columns"], row)) for row in data["rows"]]


def check_status(url, database=DEFAULT_DATABASE, timeout=10):
    """Requests `url` once and stores the outcome; returns the stored row."""
    row = {"url": url, "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "status": None, "ok": 0, "elapsed_ms": None, "bytes": None, "error": None}
    started = time.monotonic()
    try:
        response = requests.get(url, timeout=timeout)
        row.update(status=response.status_code, ok=int(response.ok), bytes=len(response.content))
    except requests.RequestException as e:
        row["error"] = f"{type(e).__name__}: {e}"[:300]
    row["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
    _sql(database, [_SCHEMA, "INSERT INTO status_checks (url, checked_at, status, ok, elapsed_ms, bytes, error) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?)"],
         [None, [row[k] for k in ("url", "checked_at", "status", "ok", "elapsed_ms", "bytes", "error")]])
    return row


def _direction(values):
    if len(values) < 4:
        return "too few checks for a trend"
    half = len(values) // 2
    before, after = sum(values[:half]) / half, sum(values[half:]) / (len(values) - half)
    if before == 0:
        return "steady"
    change = (after - before) / before
    if abs(change) < 0.2:
        return f"steady ({change:+.0%})"
    return f"{'slower' if change > 0 else 'faster'} ({change:+.0%})"


def trend(database=DEFAULT_DATABASE, url=None, last=20):
    """The last `last` checks of each URL (or only `url`): uptime, latency and its direction."""
    _sql(database, _SCHEMA)
    urls = [url] if url else [r["url"] for r in _sql(database, "SELECT DISTINCT url FROM status_checks ORDER BY url")]
    if not urls:
        return f"no checks stored in {database} yet"
    lines = []
    for u in urls:
        rows = _sql(database, "SELECT * FROM (SELECT * FROM status_checks WHERE url = ? ORDER BY id DESC LIMIT ?) "
                              "ORDER BY id", [u, last])
        if not rows:
            lines.append(f"{u}: no checks")
            continue
        up = sum(r["ok"] for r in rows)
        latencies = [r["elapsed_ms"] for r in rows if r["ok"] and r["elapsed_ms"] is not None]
        average = f"{sum(latencies) / len(latencies):.1f} ms" if latencies else "n/a"
        marks = "".join("+" if r["ok"] else "-" for r in rows)
        lines.append(f"{u}: {len(rows)} checks, {up}/{len(rows)} up ({up / len(rows):.0%}), average {average}, "
                     f"latency {_direction(latencies)}; last {rows[-1]['checked_at']} "
                     f"status {rows[-1]['status'] or rows[-1]['error']}; history {marks}")
    return "\n".join(lines)


def main(argv):
    if not argv:
        print(trend())
        return
    url = argv[0]
    database = argv[1] if len(argv) > 1 else DEFAULT_DATABASE
    row = check_status(url, database)
    print(f"checked {url}: " + (f"HTTP {row['status']} in {row['elapsed_ms']} ms" if row["status"] else row["error"]))
    print(trend(database, url))


if __name__ == "__main__":
    main(sys.argv[1:])
