"""The scripts shipped with python-mcp (scripts_store/, issue 15), through the real binary: listed
apart from the user's scripts, loaded and run like them, read-only, and each one doing its job end to end.

The scripts read sys.argv[1:] and fall back to defaults without arguments; these tests use the
defaults, or call the functions a script leaves in a persistent session. Web pages come from an
http.server on 127.0.0.1 started by the test, never the internet."""

from __future__ import annotations

import csv
import http.server
import json
import threading
from pathlib import Path

import pytest

from mcp_pipe import error_text, is_error, structured, text_of

SHIPPED = ["csv_profile.py", "fetch_page.py", "monitor_status.py", "plot_csv.py", "sqlite_report.py"]
SOURCE_STORE = Path(__file__).resolve().parents[2] / "scripts_store"


def ok(result: dict) -> dict:
    assert not is_error(result), error_text(result)
    return structured(result)


def run_script(server, name: str, session: str) -> str:
    return ok(server.python("run_script", filename=name, session_id=session, persistent=True, wait=120))["stdout"]


def execute(server, code: str, session: str) -> str:
    return ok(server.python(code=code, session_id=session, persistent=True, wait=120))["stdout"]


@pytest.fixture
def workdir(tmp_path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


@pytest.fixture
def site():
    """A small web site on 127.0.0.1: / (a page), /status (200), /broken (500)."""
    page = ("<html><head><title>Local Test Page</title><meta name='description' content='a page for tests'>"
            "<script>var hidden = 1;</script></head><body><h1>Main heading</h1><h2>Sub heading</h2>"
            "<p>Some words here.</p><a href='/status'>status</a> <a href='https://example.invalid/x'>out</a>"
            "</body></html>")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path == "/":
                body, code, kind = page.encode(), 200, "text/html"
            elif self.path == "/status":
                body, code, kind = b'{"status": "ok"}', 200, "application/json"
            else:
                body, code, kind = b"broken", 500, "text/plain"
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


# --- listed beside the user's scripts, read-only ------------------------------------------------

def test_shipped_scripts_are_listed_beside_the_users(server):
    ok(server.python("save_script", filename="mine.py", code="print('mine')"))
    listing = ok(server.python("list_scripts"))
    # `scripts` and `count` keep meaning the user's folder; the shipped ones are listed apart.
    assert [s["filename"] for s in listing["scripts"]] == ["mine.py"] and listing["count"] == 1
    assert listing["scripts"][0]["shipped"] is False
    assert [s["filename"] for s in listing["shipped"]] == SHIPPED and listing["shipped_count"] == len(SHIPPED)
    assert all(s["shipped"] is True for s in listing["shipped"])
    assert Path(listing["shipped_directory"]).samefile(SOURCE_STORE)
    text = text_of(server.python("list_scripts"))
    assert "mine.py" in text and f"{len(SHIPPED)} shipped script(s), read-only" in text
    assert all(name in text for name in SHIPPED)


def test_load_script_returns_a_shipped_script(server):
    loaded = ok(server.python("load_script", filename="csv_profile"))
    assert loaded["shipped"] is True
    assert loaded["code"] == (SOURCE_STORE / "csv_profile.py").read_text()


def test_saving_or_deleting_a_shipped_name_is_refused(server):
    for result in (server.python("save_script", filename="plot_csv.py", code="print(1)"),
                   server.python("delete_script", filename="plot_csv.py")):
        assert is_error(result)
        message = error_text(result)
        assert "shipped with python-mcp" in message and "read-only" in message, message
    assert ok(server.python("load_script", filename="plot_csv.py"))["code"] == (SOURCE_STORE / "plot_csv.py").read_text()


def test_a_users_script_of_the_same_name_placed_by_hand_wins(server):
    server.scripts_dir.mkdir(parents=True, exist_ok=True)
    (server.scripts_dir / "fetch_page.py").write_text("print('the user version')\n")
    loaded = ok(server.python("load_script", filename="fetch_page.py"))
    assert loaded["shipped"] is False and "user version" in loaded["code"]
    listing = ok(server.python("list_scripts"))
    assert [s["filename"] for s in listing["scripts"]] == ["fetch_page.py"]
    assert "fetch_page.py" not in [s["filename"] for s in listing["shipped"]]
    assert "the user version" in ok(server.python("run_script", filename="fetch_page.py"))["stdout"]
    # Deleting it removes the user's file; the shipped one is visible again.
    ok(server.python("delete_script", filename="fetch_page.py"))
    assert ok(server.python("load_script", filename="fetch_page.py"))["shipped"] is True


# --- each script, end to end ------------------------------------------------------------------

def write_sales_csv(path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["month", "region", "revenue", "units"])
        for i in range(12):
            w.writerow([i + 1, ["north", "south", "east"][i % 3], 100.0 + 10 * i, "" if i == 5 else i * 2])


def test_csv_profile_profiles_the_csv_files_of_the_working_directory(spawn, workdir):
    write_sales_csv(workdir / "sales.csv")
    server = spawn("--workdir", str(workdir))
    server.initialize()
    out = run_script(server, "csv_profile.py", "csv")
    assert "sales.csv: 12 rows x 4 columns, 1 missing values" in out, out
    revenue = next(line for line in out.splitlines() if line.startswith("revenue"))
    assert "100" in revenue and "210" in revenue and "155" in revenue  # min, max, mean
    assert "north (4)" in out
    # The function stays in the session for other files.
    (workdir / "b.csv").write_text("x,y\n1,a\n2,b\n")
    assert "b.csv: 2 rows x 2 columns" in execute(server, "print(profile_csv('b.csv'))", "csv")


def test_sqlite_report_reports_tables_and_columns(spawn, workdir):
    server = spawn("--workdir", str(workdir))
    server.initialize()
    db = str(workdir / "shop.db")
    ok(server.call("sqlite", {"input": {"database": db, "sql": [
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, total REAL)",
        "INSERT INTO orders (customer, total) VALUES ('ann', 10.5), ('bob', NULL), ('ann', 99)",
        "CREATE TABLE empty_one (a TEXT)"]}})["result"])
    out = run_script(server, "sqlite_report.py", "report")  # finds *.db in the working directory
    assert f"database {db}" in out
    assert "table orders: 3 rows" in out and "table empty_one: 0 rows" in out
    total = next(line for line in out.splitlines() if line.startswith("total"))
    assert total.split()[1:] == ["REAL", "1", "2", "10.5", "99.0"], total
    summary = json.loads(execute(server, f"import json; print(json.dumps(table_summary({db!r}, 'orders')))", "report"))
    assert summary[1] == {"column": "customer", "type": "TEXT", "nulls": 0, "distinct": 2, "min": "ann", "max": "bob"}


def test_plot_csv_saves_a_png(spawn, workdir):
    write_sales_csv(workdir / "sales.csv")
    server = spawn("--workdir", str(workdir))
    server.initialize()
    out = run_script(server, "plot_csv.py", "plot")
    png = workdir / "plot.png"
    assert f"saved {png}" in out, out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    other = workdir / "charts" / "revenue.png"
    got = execute(server, f"print(plot_csv('sales.csv', x='month', y=['revenue'], out={str(other)!r}))", "plot")
    assert got.strip() == str(other) and other.read_bytes()[:4] == b"\x89PNG"


def test_plot_csv_without_any_csv_draws_a_demo(spawn, workdir):
    server = spawn("--workdir", str(workdir))
    server.initialize()
    run_script(server, "plot_csv.py", "demo")
    assert (workdir / "plot.png").read_bytes()[:4] == b"\x89PNG"


def test_fetch_page_fetches_and_parses_a_local_page(server, site):
    assert "fetch_page" in run_script(server, "fetch_page.py", "web")  # no URL: the help
    page = json.loads(execute(server, f"import json; print(json.dumps(fetch_page({site + '/'!r})))", "web"))
    assert page["status"] == 200 and page["title"] == "Local Test Page"
    assert page["description"] == "a page for tests"
    assert page["headings"] == [{"level": 1, "text": "Main heading"}, {"level": 2, "text": "Sub heading"}]
    assert [link["href"] for link in page["links"]] == [site + "/status", "https://example.invalid/x"]
    assert "hidden" not in page["text"] and "Some words here." in page["text"]
    printed = execute(server, f"main([{site + '/'!r}])", "web")
    assert "title: Local Test Page" in printed and "2 links" in printed


def test_monitor_status_stores_checks_and_prints_the_trend(server, site):
    assert "no checks stored" in run_script(server, "monitor_status.py", "mon")
    for _ in range(4):
        row = json.loads(execute(server, f"import json; print(json.dumps(check_status({site + '/status'!r})))", "mon"))
        assert row["status"] == 200 and row["ok"] == 1
    execute(server, f"check_status({site + '/broken'!r})", "mon")
    trend_text = run_script(server, "monitor_status.py", "mon")  # no URL: the trend of every URL
    lines = {line.split(": ", 1)[0]: line for line in trend_text.splitlines()}
    assert "4 checks, 4/4 up (100%)" in lines[site + "/status"], trend_text
    assert "1 checks, 0/1 up (0%)" in lines[site + "/broken"] and "status 500" in lines[site + "/broken"]
    # The history is in the data folder's monitoring.db, readable with the sqlite tool.
    stored = server.call("sqlite", {"input": {"database": "monitoring.db",
                                              "sql": "SELECT url, status FROM status_checks ORDER BY id"}})
    rows = json.loads(text_of(stored["result"]))
    assert [r["status"] for r in rows] == [200, 200, 200, 200, 500]
