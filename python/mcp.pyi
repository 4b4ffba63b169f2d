"""Type stub for the `mcp` module that python-mcp puts in every execution (no import needed).

Calls go through the server's in-process tool registry: no JSON-RPC round trip, no text
serialisation. See the python tool's readme for the full behaviour.
"""

from typing import Any, Optional, TypedDict

class ContentItem(TypedDict, total=False):
    type: str          # "text", "image", "audio", "resource", "resource_link"
    text: str
    data: str          # base64, for image and audio
    mimeType: str

class CallResult(TypedDict, total=False):
    content: list[ContentItem]
    structuredContent: dict[str, Any]
    isError: bool

class ToolInfo(TypedDict):
    name: str                      # registry name: "sqlite", "python", or "<server>.<tool>"
    description: str
    input_schema: dict[str, Any]
    server: Optional[str]          # downstream server name, None for built-ins
    tool: str                      # the tool's own name on its server

class ToolSummary(TypedDict):
    name: str
    server: Optional[str]
    description: str               # first line only

class ToolError(Exception):
    """A tool call failed: the tool returned isError, or the tool is unknown, or params are invalid."""
    message: str
    result: Optional[CallResult]   # the whole result when the tool answered, else None

class AskError(Exception):
    """A question to the MCP client (input(), getpass, ask, sample) got no answer: the client
    refused or failed, did not answer within 10 minutes, or the connection ended."""

class AskDeclined(AskError):
    """The user declined to answer (elicitation action 'decline')."""

class AskCancelled(AskError):
    """The user dismissed the question without choosing (elicitation action 'cancel')."""

class AskUnavailable(AskError):
    """Nobody can be asked: the client did not declare 'elicitation' (form mode) or 'sampling'.
    Nothing was sent. (input() and getpass raise EOFError instead, as without a terminal.)"""

class Sample(str):
    """sample()'s answer: the reply's text, with the rest of the client's result."""
    text: str
    model: Optional[str]
    stop_reason: Optional[str]      # "endTurn", "stopSequence", "maxTokens", ...
    role: str
    content: Any                    # the reply's content as sent (a dict, or a list of them)

def ask(message: str, schema: Optional[dict[str, Any]] = None) -> Any:
    """Asks the user through the client (elicitation/create, form mode). Without schema: one text
    field, returns the str. With a JSON Schema object (flat properties of string, number,
    integer, boolean): returns the content dict. Raises AskDeclined, AskCancelled,
    AskUnavailable, AskError. The call's timeout pauses while the user answers."""

def sample(messages: str | list[str | dict[str, Any]], max_tokens: int = 1024, system: Optional[str] = None,
           temperature: Optional[float] = None, model_hint: Optional[str] = None) -> Sample:
    """Asks the client's model (sampling/createMessage). messages: a str (one user message) or a
    list of str / {'role': 'user'|'assistant', 'content': str or content dict}. Returns the reply
    text as a Sample. Raises AskUnavailable without the client's 'sampling', AskError when the
    client refuses or fails. The call's timeout pauses while the client answers."""

class Content(dict[str, Any]):
    """A non-text content item returned by a tool function (image, audio, resource...)."""
    def data_bytes(self) -> bytes: ...

def call(name: str, params: Optional[dict[str, Any]] = None) -> CallResult:
    """Calls tool `name` with `params` and returns its result dict.

    params: a dict of JSON values (dict, list, tuple, str, int within 64 bits, float, bool, None);
    also numpy numbers and arrays, NaN/Infinity/NaT/pd.NA (-> null), datetime, date, time,
    pd.Timestamp, np.datetime64 (-> ISO 8601 text) and Decimal, as pandas' to_json converts them.
    Built-in tools also accept the original {'input': {...}} form.
    Raises ToolError when the result has isError, for unknown tools and invalid params.
    Raises TypeError / ValueError (naming the path) for values that are not JSON.
    """

def progress(done: float, total: Optional[float] = None, message: Optional[str] = None) -> None:
    """Reports progress to the client that called the python tool (notifications/progress), when
    its request carried a progressToken; does nothing otherwise. Values are kept strictly
    increasing: a value not above the last one sent goes out just above it (its message is not
    lost). Printed output shares the same value (see docs/python-api.md). Raises RuntimeError
    outside an execution (a thread not started from the code), ValueError for NaN/infinity."""

def display(*objs: Any) -> None:
    """Adds each object to the python tool's result, after its text, while the code runs: a
    matplotlib Figure/Axes, a PIL image or an object with _repr_png_/_repr_jpeg_ as image content;
    a pandas DataFrame/Series as a markdown table; _repr_markdown_/_repr_svg_/_repr_html_ as that
    text; an MCP image content item of another tool (mcp.call(...)["content"][i], mcp.Content) as
    that image; anything else as its repr. Also a builtin: display(obj). Outside an execution it
    prints. Images count against the call's max_images / max_image_bytes."""

def list_tools(server: Optional[str] = None) -> list[ToolInfo]:
    """Every tool code can call (only `server`'s when given), with description and input schema."""

def search_tools(query: str, limit: int = 10) -> list[ToolSummary]:
    """Tools whose name or description match the words of `query`, best first."""

class _ToolFunction:
    """mcp.<server>.<tool>: keyword arguments checked against the input schema; returns
    structuredContent, or the text parsed as JSON when it is JSON, or the text; raises ToolError."""
    tool_name: str
    def __call__(self, **arguments: Any) -> Any: ...

class _ServerNamespace:
    def __getattr__(self, tool: str) -> _ToolFunction: ...
    def __dir__(self) -> list[str]: ...

def __getattr__(server: str) -> _ServerNamespace: ...
