"""The sqlite tool under concurrent sessions, through the python tool's mcp.call (issue 11).

Eight Python sessions run user-written read-then-write transactions on one database file at the
same time: every one must commit (a writer waits for the lock instead of failing with "database
is locked"), and the counter they increment must come out exact. Also: per-statement params for
a one-element statement list.
"""

from __future__ import annotations

import json

from mcp_pipe import DEFAULT_TIMEOUT, is_error, ok, structured, text_of

SESSIONS = 8
ROUNDS = 60  # transactions per session
# Reads for a while inside the transaction, so that others write meanwhile: the case where a
# deferred transaction's upgrade to a writer failed at once.
SLOW_READ = ("SELECT v, (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) "
             "SELECT count(*) FROM c) AS n FROM counter")

# Each session waits until all have started (files in the working directory, with a deadline),
# so the transactions really overlap, then runs ROUNDS transactions in the ways users write them.
SESSION_CODE = '''
import glob, json, time
open('ready-{session}', 'w').close()
deadline = time.monotonic() + 60
while len(glob.glob('ready-*')) < {sessions} and time.monotonic() < deadline:
    time.sleep(0.001)
forms = [
    {{'sql': 'BEGIN; {read}; UPDATE counter SET v = v + 1; COMMIT'}},
    {{'sql': ['BEGIN', '{read}', 'UPDATE counter SET v = v + 1', 'COMMIT']}},
    {{'sql': 'BEGIN DEFERRED; {read}; UPDATE counter SET v = v + 1 WHERE v >= ?; END', 'params': [0]}},
]
errors = []
for i in range({rounds}):
    arguments = dict(forms[i % len(forms)], database='concurrency/counter.db')
    try:
        r = mcp.call('sqlite', arguments)
        if r['structuredContent']['rows_affected'] != 1:
            errors.append('rows_affected: ' + json.dumps(r['structuredContent']))
    except mcp.ToolError as e:
        errors.append(str(e))
print(json.dumps({{'started_together': len(glob.glob('ready-*')) >= {sessions}, 'errors': errors}}))
'''


def test_user_transactions_from_eight_sessions_all_commit(server):
    created = server.call("sqlite", {"sql": "CREATE TABLE counter (v INTEGER); INSERT INTO counter VALUES (0)",
                                     "database": "concurrency/counter.db"})
    assert not is_error(created["result"]), created
    ids = [server.send_python(code=SESSION_CODE.format(session=s, sessions=SESSIONS, rounds=ROUNDS, read=SLOW_READ),
                              session_id=f"tx{s}", persistent=True)
           for s in range(SESSIONS)]
    failures = []
    for s, request_id in enumerate(ids):
        result = server.wait_response(request_id, timeout=DEFAULT_TIMEOUT * 6)["result"]
        sc = structured(result)
        assert not is_error(result) and sc["success"] is True, f"session tx{s}: {result}"
        report = json.loads(sc["stdout"])
        assert report["started_together"], f"session tx{s} did not see the others start"
        failures += [f"tx{s}: {e}" for e in report["errors"]]
    assert failures == [], f"{len(failures)} of {SESSIONS * ROUNDS} transactions failed, e.g. {failures[:3]}"
    final = server.call("sqlite", {"sql": "SELECT v FROM counter", "database": "concurrency/counter.db"})
    assert structured(final["result"])["rows"] == [[SESSIONS * ROUNDS]]


def test_one_statement_list_takes_a_list_of_lists(server):
    sc = ok(server, "r = mcp.call('sqlite', {'sql': ['SELECT ? AS a, ? AS b'], 'params': [['x', 1]]})\n"
                    "r['structuredContent']['rows']")
    assert sc["result"] == "[['x', 1]]"
    # From the client too, and a shape that does not match is refused with a clear error.
    r = server.call("sqlite", {"sql": ["SELECT ? AS a, ? AS b"], "params": [["x", 1]]})["result"]
    assert not is_error(r) and json.loads(text_of(r)) == [{"a": "x", "b": 1}]
    bad = server.call("sqlite", {"sql": ["SELECT ?", "SELECT ?"], "params": [[1]]})["result"]
    assert is_error(bad) and "one list per 'sql' item" in text_of(bad)
