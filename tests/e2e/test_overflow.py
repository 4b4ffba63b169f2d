"""Overflow and host hints (issue 14): output or a result past max_output is kept whole in a file
and linked (resource_link content, structuredContent.overflow, a note), served by resources/read
byte for byte and listed by resources/list; the storage is bounded (oldest dropped, files
removed); unknown and expired URIs get clear errors; tool descriptions stay under 4,096
characters and carry the anthropic/maxResultSizeChars hint; a structuredContent past 1 MiB is
replaced by a summary that says where the whole is; downstream image content items come back
as images."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

from mcp_pipe import DEFAULT_TIMEOUT, is_error, structured, text_of, wait_until

HERE = Path(__file__).resolve().parent
EVERYTHING = HERE.parent / "interop" / "node_modules" / ".bin" / "mcp-server-everything"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# 30,000 numbered lines with multi-byte characters: 690,000 bytes, far past a small max_output.
BIG_PRINT = "for i in range(30000):\n    print(f'línea {i:06d} ✓')"
BIG_TEXT = "".join(f"línea {i:06d} ✓\n" for i in range(30000))


def execute(server, code: str, **fields) -> dict:
    result = server.python(code=code, **fields)
    assert not is_error(result), text_of(result)
    return result


def links(result: dict) -> list[dict]:
    return [c for c in result["content"] if c["type"] == "resource_link"]


def read(server, uri: str) -> dict:
    return server.request("resources/read", {"uri": uri})


def read_text(server, uri: str) -> str:
    response = read(server, uri)
    assert "result" in response, response
    (contents,) = response["result"]["contents"]
    assert contents["uri"] == uri and contents["mimeType"] == "text/plain"
    return contents["text"]


def results_dir(server) -> Path:
    return server.data_home / "python-mcp" / "results"


def kept_files(server) -> list[Path]:
    return sorted(p for p in results_dir(server).glob("*/*") if p.name != ".lock")




def test_big_output_is_linked_and_read_back_byte_exact(server):
    result = execute(server, BIG_PRINT + "\nimport sys\nsys.stderr.write('é' * 50000)\n'r' * 70000",
                     max_output=4096)
    sc = structured(result)
    assert sc["truncated"] is True and len(sc["stdout"].encode()) < 5000
    by_part = {link["uri"].rsplit("/", 1)[1]: link for link in links(result)}
    assert set(by_part) == {"stdout", "stderr", "result"}, result["content"]
    stdout_link = by_part["stdout"]
    assert stdout_link["mimeType"] == "text/plain" and stdout_link["size"] == len(BIG_TEXT.encode())
    assert stdout_link["uri"].startswith("python-mcp://results/")
    # The text says how to read it; structuredContent has the same links with the file path.
    assert f"resources/read {stdout_link['uri']}" in text_of(result)
    assert [o["uri"] for o in sc["overflow"]] == [link["uri"] for link in links(result)]
    assert read_text(server, stdout_link["uri"]) == BIG_TEXT
    assert read_text(server, by_part["stderr"]["uri"]) == "é" * 50000
    assert read_text(server, by_part["result"]["uri"]) == repr("r" * 70000)
    path = Path(sc["overflow"][0]["path"])
    assert path.read_text(encoding="utf-8") == BIG_TEXT and oct(path.stat().st_mode & 0o777) == "0o600"


def test_resources_capability_list_and_errors(spawn):
    server = spawn()
    init = server.initialize()
    assert init["capabilities"]["resources"] == {}
    assert server.request("resources/list", {})["result"] == {"resources": []}
    result = execute(server, "print('x' * 5000)", max_output=100)
    (link,) = links(result)
    listed = server.request("resources/list", {})["result"]["resources"]
    assert [r["uri"] for r in listed] == [link["uri"]] and listed[0]["size"] == 5001
    unknown = read(server, "python-mcp://results/nope-1/stdout")
    assert unknown["error"]["code"] == -32002 and "unknown" in unknown["error"]["message"]
    assert unknown["error"]["data"] == {"uri": "python-mcp://results/nope-1/stdout"}
    foreign = read(server, "file:///etc/passwd")
    assert foreign["error"]["code"] == -32002
    assert read(server, link["uri"] + "?offset=abc")["error"]["code"] == -32602
    assert server.request("resources/read", {})["error"]["code"] == -32602
    assert server.request("resources/list", {"cursor": "bogus"})["error"]["code"] == -32602
    assert server.request("resources/templates/list", {})["result"] == {"resourceTemplates": []}
    # A partial read from an offset says where it stopped.
    part = read(server, link["uri"] + "?offset=4000")["result"]["contents"][0]
    assert part["text"] == "x" * 1000 + "\n"
    assert part["_meta"]["python-mcp/total_bytes"] == 5001


def test_storage_is_bounded_oldest_dropped_and_files_removed(spawn):
    # 400,000 bytes in all, a file at most 100,000: the fifth 90 KB output drops the first.
    server = spawn("--max-overflow-bytes", "400000")
    server.initialize()
    uris = []
    for n in range(5):
        result = execute(server, f"print('{n}' * 90000)", max_output=1000)
        uris.append(links(result)[0]["uri"])
    assert len(kept_files(server)) == 4
    listed = [r["uri"] for r in server.request("resources/list", {})["result"]["resources"]]
    assert listed == uris[:0:-1]  # newest first, the first one gone
    expired = read(server, uris[0])
    assert expired["error"]["code"] == -32002 and "expired" in expired["error"]["message"]
    assert read_text(server, uris[4]) == "4" * 90000 + "\n"


def test_file_count_bound_and_list_pagination(spawn):
    server = spawn("--max-overflow-files", "130")
    server.initialize()
    for n in range(135):
        execute(server, f"print('{n:03d}' * 40)", max_output=64)
    seen, cursor, pages = [], None, 0
    while True:
        page = server.request("resources/list", {"cursor": cursor} if cursor else {})["result"]
        seen += [r["uri"] for r in page["resources"]]
        pages += 1
        cursor = page.get("nextCursor")
        if not cursor:
            break
    assert pages == 2 and len(seen) == len(set(seen)) == 130
    assert len(kept_files(server)) == 130


def test_overflow_off_keeps_only_head_and_tail(spawn):
    server = spawn("--max-overflow-bytes", "0")
    init = server.initialize()
    assert "resources" not in init["capabilities"]
    result = execute(server, "print('y' * 5000)", max_output=100)
    assert links(result) == [] and "overflow" not in structured(result)
    assert "raise max_output to see more" in text_of(result)
    assert server.request("resources/list", {})["error"]["code"] == -32601


def test_a_job_result_links_its_overflow(server):
    started = server.python("start_job", code="import time\ntime.sleep(0.2)\n" + BIG_PRINT, max_output=2000)
    job_id = structured(started)["job_id"]
    done = server.python("wait_job", job_id=job_id, wait=30)
    assert structured(done)["state"] == "succeeded", text_of(done)
    (link,) = links(done)
    assert read_text(server, link["uri"]) == BIG_TEXT


def test_a_cancelled_call_leaves_no_file(server):
    marker = server.work / "printed"
    request_id = server.send_python(code=f"print('z' * 300000)\nopen({str(marker)!r}, 'w').close()\n"
                                         "import time\ntime.sleep(60)", max_output=1000)
    server.wait_for_file(marker, request_id=request_id)
    assert len(kept_files(server)) == 1  # being written
    server.notify("notifications/cancelled", {"requestId": request_id, "reason": "test"})
    wait_until(lambda: not kept_files(server), "the cancelled call's spool file removed")
    assert server.responses_for(request_id) == []


def test_an_older_client_gets_the_note_without_resource_link(spawn):
    server = spawn()
    server.initialize("2025-03-26")
    result = execute(server, "print('w' * 5000)", max_output=100)
    assert links(result) == []
    uri = structured(result)["overflow"][0]["uri"]
    assert f"resources/read {uri}" in text_of(result)
    assert read_text(server, uri) == "w" * 5000 + "\n"


def test_huge_structured_content_is_replaced_by_a_marker(server):
    result = execute(server, "print('s' * 1_200_000)", max_output=2_000_000)
    sc = structured(result)
    assert sc["structured_content_truncated"] is True and sc["truncated"] is True
    assert sc["structured_content_bytes"] > 1_200_000
    assert len(json.dumps(sc)) < 4096 and "stdout" not in sc
    (kept,) = [o for o in sc["overflow"] if o["uri"].endswith("/structured")]
    assert kept["uri"] in sc["note"]
    whole = server.request("resources/read", {"uri": kept["uri"]})["result"]["contents"][0]
    assert whole["mimeType"] == "application/json"
    assert json.loads(whole["text"])["stdout"] == "s" * 1_200_000 + "\n"
    assert "s" * 1_200_000 in text_of(result)  # the text content still has the output


def test_tools_carry_the_result_size_hint(server):
    tools = server.request("tools/list", {})["result"]["tools"]
    for tool in tools:
        hint = tool["_meta"]["anthropic/maxResultSizeChars"]
        assert 50_000 <= hint <= 500_000, tool["name"]
        assert len(tool["description"]) <= 4096, tool["name"]


def test_python_description_stays_within_4096_with_many_downstream_servers(spawn, tmp_path):
    config = tmp_path / "servers.json"
    config.write_text(json.dumps({"mcpServers": {
        f"everything{n}": {"command": str(EVERYTHING), "args": ["stdio"]} for n in range(5)}}))
    server = spawn("--config", str(config))
    server.initialize()
    execute(server, "for n in range(5):\n    mcp._wait_for_server(f'everything{n}')", timeout=90)

    def described():
        (python,) = [t for t in server.request("tools/list", {})["result"]["tools"] if t["name"] == "python"]
        return python["description"] if "everything1" in python["description"] else None
    description = wait_until(described, "the downstream tools in the python description")
    # Five servers of 12+ tools each would make about 6,500 characters: the list is cut.
    assert len(description) <= 4096
    assert description.endswith("\n... (more tools: mcp.list_tools(), mcp.search_tools('words'))")
    # The whole documentation stays behind the readme operation.
    assert len(text_of(server.python("readme"))) > 4096


def test_downstream_image_items_come_back_as_images(spawn, tmp_path):
    config = tmp_path / "servers.json"
    config.write_text(json.dumps({"mcpServers": {"everything": {"command": str(EVERYTHING), "args": ["stdio"]}}}))
    server = spawn("--config", str(config))
    server.initialize()
    result = execute(server, "mcp._wait_for_server('everything')\n"
                             "r = mcp.call('everything.get-tiny-image', {})\n"
                             "display(*[c for c in r['content'] if c['type'] == 'image'])\n"
                             "mcp.everything.get_tiny_image()", timeout=90)
    images = [c for c in result["content"] if c["type"] == "image"]
    assert len(images) == 2, result["content"]
    for image in images:
        png = base64.b64decode(image["data"], validate=True)
        assert image["mimeType"] == "image/png" and png[:8] == PNG_SIGNATURE
    texts = [c["text"] for c in result["content"][1:] if c["type"] == "text"]
    assert len(texts) == 2  # the trailing list's text items, in order
    assert structured(result)["result"] is None
    # Within the call's image budget: with max_images 0 it is dropped and counted.
    capped = execute(server, "mcp.everything.get_tiny_image()", max_images=0)
    assert [c for c in capped["content"] if c["type"] == "image"] == []
    assert structured(capped)["images_dropped"] == 1


def test_a_plain_dict_that_is_not_an_image_keeps_its_repr(server):
    result = execute(server, "{'type': 'image', 'data': 'not base64!', 'mimeType': 'image/png'}")
    assert structured(result)["result"] == "{'type': 'image', 'data': 'not base64!', 'mimeType': 'image/png'}"
    assert [c["type"] for c in result["content"]] == ["text"]


def test_directories_of_gone_servers_are_removed_and_others_left_alone(spawn):
    first = spawn()
    first.initialize()
    kept_uri = links(execute(first, "print('k' * 5000)", max_output=100))[0]["uri"]
    root = results_dir(first)
    gone = root / "4242-deadbeef"  # a server that is gone: its lock is free
    gone.mkdir()
    (gone / ".lock").touch()
    (gone / "old-1-stdout.txt").write_text("old")
    unrelated = root / "notes"
    unrelated.mkdir()
    (unrelated / ".lock").touch()
    second = spawn(env={"XDG_DATA_HOME": str(first.data_home)})
    second.initialize()
    execute(second, "print('s' * 5000)", max_output=100)
    assert not gone.exists() and unrelated.exists()
    assert read_text(first, kept_uri) == "k" * 5000 + "\n"  # the running server's files stay
    assert len([d for d in root.iterdir() if d.name != "notes"]) == 2
