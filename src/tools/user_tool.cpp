// The `user` tool: operations over elicitation/create (form mode). See user_tool.hpp.
#include "python_mcp/tools/user_tool.hpp"

#include <spdlog/spdlog.h>

#include <cctype>
#include <cmath>
#include <string>

#include "python_mcp/support/time_format.hpp"

namespace pymcp::tools {

using mcp::json;
using mcp::ToolError;

// --- HTML to text -----------------------------------------------------------------------------

namespace {

// What an element's tag puts into the text: a blank line around paragraphs, headings, lists and
// tables; a line break around other blocks; list items and table rows start a line.
const char* tag_break(const std::string& name, bool closing) {
    static const char* paragraphs[] = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol",
                                       "table", "pre", "blockquote"};
    static const char* blocks[] = {"div", "br", "hr", "title", "section", "article", "header", "footer"};
    static const char* starts[] = {"li", "tr", "dt", "dd"};
    for (const char* b : paragraphs)
        if (name == b) return "\n\n";
    for (const char* b : blocks)
        if (name == b) return "\n";
    for (const char* b : starts)
        if (name == b) return closing ? "" : "\n";
    return "";
}

// "&amp;" and friends, "&#65;" and "&#x41;"; anything else stays as written.
size_t decode_entity(std::string_view html, size_t at, std::string& out) {
    static const std::pair<const char*, const char*> named[] = {
        {"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"apos", "'"}, {"nbsp", " "}, {"#39", "'"}};
    size_t end = html.find(';', at);
    if (end == std::string_view::npos || end - at > 10) {
        out += '&';
        return at + 1;
    }
    std::string name(html.substr(at + 1, end - at - 1));
    for (auto [n, v] : named)
        if (name == n) {
            out += v;
            return end + 1;
        }
    if (name.size() > 1 && name[0] == '#') {
        const bool hex = name[1] == 'x' || name[1] == 'X';
        unsigned long cp = std::strtoul(name.c_str() + (hex ? 2 : 1), nullptr, hex ? 16 : 10);
        if (cp > 0 && cp < 0x80) {
            out += char(cp);
            return end + 1;
        }
    }
    out += '&';
    return at + 1;
}

// The lower-case element name of a tag starting at `at` ('<'), and whether it is a closing tag.
std::string tag_name(std::string_view tag, bool& closing) {
    size_t i = 1;
    closing = i < tag.size() && tag[i] == '/';
    if (closing) ++i;
    std::string name;
    while (i < tag.size() && std::isalnum(static_cast<unsigned char>(tag[i])))
        name += char(std::tolower(static_cast<unsigned char>(tag[i++])));
    return name;
}

// Collapses blank runs inside lines, trims lines, and keeps at most one empty line in a row.
std::string tidy_lines(const std::string& raw) {
    std::string out, line;
    int blank_lines = 0;
    auto flush = [&] {
        while (!line.empty() && line.back() == ' ') line.pop_back();
        if (line.empty()) {
            if (!out.empty() && ++blank_lines == 1) out += '\n';
        } else {
            blank_lines = 0;
            out += line + '\n';
        }
        line.clear();
    };
    for (char c : raw) {
        if (c == '\n') {
            flush();
        } else if (std::isspace(static_cast<unsigned char>(c))) {
            if (!line.empty() && line.back() != ' ') line += ' ';
        } else {
            line += c;
        }
    }
    flush();
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

}  // namespace

std::string html_to_text(std::string_view html) {
    std::string raw;
    size_t i = 0;
    while (i < html.size()) {
        const char c = html[i];
        if (c == '&') {
            i = decode_entity(html, i, raw);
            continue;
        }
        if (c != '<') {
            raw += c;
            ++i;
            continue;
        }
        size_t end = html.find('>', i);
        if (end == std::string_view::npos) break;  // an unfinished tag: nothing after it is text
        bool closing = false;
        const std::string name = tag_name(html.substr(i, end - i), closing);
        i = end + 1;
        if (!closing && (name == "script" || name == "style")) {
            size_t close = html.find("</" + name, i);  // lower-case, as nearly every page writes it
            i = close == std::string_view::npos ? html.size() : html.find('>', close);
            i = i == std::string_view::npos ? html.size() : i + 1;
            continue;
        }
        raw += tag_break(name, closing);
        if (name == "li" && !closing) raw += "- ";
        if ((name == "td" || name == "th") && closing) raw += "  ";
    }
    return tidy_lines(raw);
}

// --- requested schemas --------------------------------------------------------------------------

namespace {

void check_string_property(const std::string& name, const json& p) {
    if (auto f = p.find("format"); f != p.end()) {
        static const char* formats[] = {"email", "uri", "date", "date-time"};
        bool known = false;
        for (const char* k : formats) known = known || (f->is_string() && *f == k);
        if (!known)
            throw ToolError("schema property '" + name +
                            "': 'format' must be one of email, uri, date, date-time (what elicitation allows)");
    }
    if (auto e = p.find("enum"); e != p.end()) {
        if (!e->is_array() || e->empty()) throw ToolError("schema property '" + name + "': 'enum' must be a list of strings");
        for (const auto& v : *e)
            if (!v.is_string()) throw ToolError("schema property '" + name + "': 'enum' must be a list of strings");
    }
}

void check_property(const std::string& name, const json& p) {
    if (!p.is_object() || !p.contains("type") || !p["type"].is_string())
        throw ToolError("schema property '" + name + "' must be an object with a 'type'");
    const std::string type = p["type"];
    if (type == "string") return check_string_property(name, p);
    if (type == "number" || type == "integer" || type == "boolean") return;
    if (type == "array") {  // multi-select: items are enumerated strings
        const json items = p.value("items", json());
        if (items.is_object() && (items.contains("enum") || items.contains("anyOf"))) return;
        throw ToolError("schema property '" + name + "': an array must list its choices in items.enum or items.anyOf");
    }
    throw ToolError("schema property '" + name + "' has type '" + type +
                    "': elicitation allows only string, number, integer, boolean (no nested objects)");
}

}  // namespace

void check_requested_schema(const json& schema) {
    if (!schema.is_object() || schema.value("type", json()) != "object")
        throw ToolError("'schema' must be a JSON Schema object: {\"type\": \"object\", \"properties\": {...}}");
    auto props = schema.find("properties");
    if (props == schema.end() || !props->is_object())
        throw ToolError("'schema' needs 'properties': an object of field name -> {\"type\": ...}");
    for (const auto& [name, p] : props->items()) check_property(name, p);
    if (auto req = schema.find("required"); req != schema.end()) {
        if (!req->is_array()) throw ToolError("'schema.required' must be a list of property names");
        for (const auto& r : *req)
            if (!r.is_string() || !props->contains(r.get<std::string>()))
                throw ToolError("'schema.required' names " + r.dump() + ", which is not one of the properties");
    }
}

// --- the tool -------------------------------------------------------------------------------------

namespace {

const char* kOperations = "show_popup, collect_api_key, ask, readme";

// A call's question to the client, with its answer read.
struct Answer {
    std::string action;  // accept | decline | cancel
    json content = json::object();
};

// Form-mode elicitation: the client declared `elicitation` with `form` or, as before 2025-11-25,
// with nothing inside (which means form).
bool can_elicit_form(const mcp::CallContext& context) {
    if (!context.has_client()) return false;
    const json caps = context.client_capabilities();
    auto e = caps.find("elicitation");
    if (e == caps.end() || !e->is_object()) return false;
    return e->empty() || e->contains("form");
}

std::string no_elicitation_reason(const mcp::CallContext& context) {
    if (!context.has_client()) return "this call was not made by a client, so there is nobody to ask";
    return "the MCP client did not declare the 'elicitation' capability (form mode), so it cannot ask the user";
}

std::chrono::milliseconds call_timeout(const json& input, const UserToolOptions& options) {
    auto seconds = get_number(input, "timeout");
    if (!seconds) return options.default_timeout;
    const double max_s = std::chrono::duration<double>(options.max_timeout).count();
    if (!(*seconds > 0) || *seconds > max_s)
        throw ToolError("'timeout' must be a number of seconds above 0 and at most " + seconds_text(options.max_timeout));
    return std::chrono::milliseconds(static_cast<long long>(std::ceil(*seconds * 1000)));
}

// Sends elicitation/create and reads the answer; throws ToolError on any failure.
Answer elicit(const mcp::CallContext& context, const std::string& message, json schema,
              std::chrono::milliseconds timeout) {
    // `mode` is left out: missing means form, and clients from before 2025-11-25 know no `mode`.
    json params{{"message", message}, {"requestedSchema", std::move(schema)}};
    json result;
    try {
        result = context.ask_client("elicitation/create", std::move(params), timeout);
    } catch (const mcp::ClientRequestError& e) {
        if (context.cancelled()) throw ToolError("cancelled");
        throw ToolError(std::string("could not ask the user: ") + e.what());
    }
    Answer answer;
    if (result.is_object() && result.contains("action") && result["action"].is_string())
        answer.action = result["action"].get<std::string>();
    if (answer.action != "accept" && answer.action != "decline" && answer.action != "cancel")
        throw ToolError("the client's answer to elicitation/create has no valid 'action' (accept, decline or cancel): " +
                        result.dump().substr(0, 300));
    if (auto c = result.find("content"); c != result.end() && c->is_object()) answer.content = *c;
    return answer;
}

json empty_schema() { return json{{"type", "object"}, {"properties", json::object()}}; }

// The popup's text for a client that cannot show it, with the HTML beside it as a resource.
json popup_not_shown(const std::string& title, const std::string& text, const std::string& html,
                     const std::string& reason) {
    json content = json::array();
    content.push_back(mcp::text_content("Not shown to the user: " + reason + ". The popup's text follows."));
    content.push_back(mcp::text_content(title.empty() ? text : title + "\n\n" + text));
    if (!html.empty())
        content.push_back(json{{"type", "resource"},
                               {"resource", {{"uri", "python-mcp://user/popup.html"}, {"mimeType", "text/html"},
                                             {"text", html}}}});
    return json{{"content", std::move(content)},
                {"structuredContent", {{"shown", false}, {"reason", reason}, {"text", text}}},
                {"isError", false}};
}

json show_popup(const json& input, const mcp::CallContext& context, std::chrono::milliseconds timeout) {
    const std::string html = get_string(input, "html").value_or("");
    const std::string message = get_string(input, "message").value_or("");
    if (html.empty() && message.empty())
        throw ToolError("show_popup needs 'html' or 'message': what to show the user");
    const std::string title = get_string(input, "title").value_or("");
    const std::string text = html.empty() ? message : html_to_text(html);
    if (!can_elicit_form(context)) return popup_not_shown(title, text, html, no_elicitation_reason(context));
    Answer a = elicit(context, title.empty() ? text : title + "\n\n" + text, empty_schema(), timeout);
    const std::string said = a.action == "accept" ? "acknowledged it" : a.action == "decline" ? "declined it" : "dismissed it";
    return mcp::tool_result("Shown to the user, who " + said + ".",
                            json{{"shown", true}, {"action", a.action}});
}

json collect_api_key(const json& input, const mcp::CallContext& context, std::chrono::milliseconds timeout) {
    const std::string service = require_string(input, "service_name", "for collect_api_key (e.g. \"OpenAI\")");
    if (!can_elicit_form(context)) throw ToolError("cannot collect the " + service + " API key: " + no_elicitation_reason(context));
    json schema{{"type", "object"},
                {"properties",
                 {{"api_key", {{"type", "string"}, {"title", service + " API key"}, {"minLength", 1},
                               {"description", "Shown and sent in plain text: MCP forms have no masked field."}}}}},
                {"required", json::array({"api_key"})}};
    Answer a = elicit(context, "Please enter your " + service + " API key.", std::move(schema), timeout);
    if (a.action != "accept")
        throw ToolError("the user " + std::string(a.action == "decline" ? "declined" : "cancelled") +
                        " the request for the " + service + " API key");
    auto key = a.content.find("api_key");
    if (key == a.content.end() || !key->is_string() || key->get_ref<const std::string&>().empty())
        throw ToolError("the user accepted but gave no " + service + " API key");
    // The key goes in structuredContent only, so it is not echoed into the text a model reads.
    return mcp::tool_result("Received the " + service + " API key (" + std::to_string(key->get_ref<const std::string&>().size()) +
                                " characters); it is in structuredContent.api_key.",
                            json{{"api_key", *key}, {"service_name", service}});
}

json ask(const json& input, const mcp::CallContext& context, std::chrono::milliseconds timeout) {
    const std::string message = require_string(input, "message", "for ask: the question to put to the user");
    json schema = json{{"type", "object"},
                       {"properties", {{"answer", {{"type", "string"}, {"title", "Answer"}}}}},
                       {"required", json::array({"answer"})}};
    if (auto s = input.find("schema"); s != input.end() && !s->is_null()) {
        check_requested_schema(*s);
        schema = *s;
    }
    if (!can_elicit_form(context)) throw ToolError("cannot ask the user: " + no_elicitation_reason(context));
    Answer a = elicit(context, message, std::move(schema), timeout);
    json structured{{"action", a.action}, {"content", a.content}};
    return mcp::tool_result(structured.dump(), structured);
}

}  // namespace

namespace {

json field_schemas() {
    return json{
        {"operation",
         {{"type", "string"},
          {"enum", json::array({"show_popup", "collect_api_key", "ask", "readme"})},
          {"description", "show_popup: show 'html' or 'message' to the user; collect_api_key: ask for "
                          "'service_name''s API key; ask: put 'message' to the user with a form ('schema'); "
                          "readme: the documentation."}}},
        {"html", {{"type", "string"}, {"description", "show_popup: HTML to show (sent to the client as readable text)."}}},
        {"message", {{"type", "string"}, {"description", "show_popup: plain text to show; ask: the question."}}},
        {"title", {{"type", "string"}, {"description", "show_popup: a heading for the message."}}},
        {"service_name", {{"type", "string"}, {"description", "collect_api_key: whose key, e.g. \"OpenAI\"."}}},
        {"schema",
         {{"type", "object"},
          {"description", "ask: the form, as elicitation allows it: {\"type\": \"object\", \"properties\": {name: "
                          "{\"type\": \"string\"|\"number\"|\"integer\"|\"boolean\", ...}}, \"required\": [...]}. "
                          "Default: one string field 'answer'."}}},
        {"timeout",
         {{"type", "number"}, {"default", 300}, {"description", "Seconds to wait for the user's answer (at most 3600)."}}},
        {"tool_unlock_token", {{"type", "string"}, {"description", "The token stated in the readme, when required."}}},
    };
}

}  // namespace

mcp::ToolDefinition UserTool::definition() const {
    mcp::ToolDefinition d;
    d.name = "user";
    d.title = "Ask the user";
    d.description =
        "Talk to the person using this MCP client, through elicitation: show_popup shows a message (HTML is "
        "sent as readable text), collect_api_key asks for an API key, ask puts a question with a small form. "
        "The client must support elicitation; without it show_popup returns the text instead and the others "
        "fail. Callable from Python code: mcp.call('user', {'input': {'operation': 'ask', 'message': '...'}}). "
        "Operation 'readme' has the details.";
    json fields = field_schemas();
    json wrapped{{"type", "object"},
                 {"description", "The same fields wrapped as in the original tool: {\"input\": {\"operation\": ...}}."},
                 {"properties", fields}};
    json properties = fields;
    properties["input"] = std::move(wrapped);
    d.input_schema = json{{"type", "object"}, {"properties", std::move(properties)}};
    d.annotations = json{{"title", "Ask the user"}, {"readOnlyHint", true}, {"openWorldHint", false}};
    return d;
}

std::string UserTool::readme() const {
    std::string text =
        "# user: ask the person behind the MCP client\n\n"
        "Every operation goes through MCP elicitation (elicitation/create, form mode), so the client must have "
        "declared the 'elicitation' capability. The call waits for the user: 'timeout' seconds (default 300, "
        "at most 3600), or until the call is cancelled.\n\n"
        "Fields may be given plainly or wrapped as {\"input\": {...}}.\n\n"
        "## show_popup {html | message, title?}\n"
        "Shows the message; HTML is turned into readable text. structuredContent: {shown: true, action} "
        "(accept = acknowledged). A client without elicitation gets the text back instead, with the HTML as a "
        "text/html resource, and structuredContent {shown: false, reason, text}: nothing was shown.\n\n"
        "## collect_api_key {service_name}\n"
        "Asks for the service's API key in a one-field form and returns it in structuredContent.api_key (not in "
        "the text). MCP forms have no masked field: the key is shown and travels in plain text through the "
        "client, and the 2025-11-25 specification says servers should not ask for credentials in form mode. "
        "Declined, cancelled or no elicitation: an error result.\n\n"
        "## ask {message, schema?}\n"
        "Puts 'message' to the user with the form 'schema' (an object of string, number, integer or boolean "
        "properties, optionally 'required'; strings may have enum or format email|uri|date|date-time). "
        "Default form: one string field 'answer'. Returns structuredContent {action, content}: action is accept, "
        "decline or cancel; content holds the answers when accepted.\n";
    if (options_.gate.required)
        text += "\nThis server requires \"tool_unlock_token\": \"" + options_.gate.token + "\" in every call.\n";
    return text;
}

UserTool::UserTool(UserToolOptions options) : options_(std::move(options)) {}

void UserTool::register_in(mcp::ToolRegistry& registry) {
    registry.add(definition(), mcp::blocking_handler([this](const json& arguments, mcp::CallContext& context) {
                     return call(arguments, context);
                 }));
}

json UserTool::call(const json& arguments, mcp::CallContext& context) const {
    ToolInput fields(arguments);
    const json& input = fields.fields();
    if (!input.is_object()) throw ToolError("the arguments must be an object such as {\"operation\": \"ask\", ...}");
    const std::string operation = get_string(input, "operation").value_or("");
    if (operation == "readme") return mcp::tool_result(readme());
    if (operation != "show_popup" && operation != "collect_api_key" && operation != "ask")
        throw ToolError(operation.empty() ? std::string("'operation' is required: one of ") + kOperations
                                          : "unknown operation '" + operation.substr(0, 60) + "': use one of " + kOperations);
    options_.gate.check(input, readme());
    const auto timeout = call_timeout(input, options_);
    if (context.cancelled()) throw ToolError("cancelled");
    spdlog::debug("user: {} (waits up to {})", operation, seconds_text(timeout));
    if (operation == "show_popup") return show_popup(input, context, timeout);
    if (operation == "collect_api_key") return collect_api_key(input, context, timeout);
    return ask(input, context, timeout);
}

}  // namespace pymcp::tools
