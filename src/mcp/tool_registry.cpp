#include "python_mcp/mcp/tool_registry.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>

namespace pymcp::mcp {

json ToolDefinition::to_json(bool with_tasks) const {
    json j{{"name", name}};
    if (!title.empty()) j["title"] = title;
    if (!description.empty()) j["description"] = description;
    j["inputSchema"] = input_schema.is_null() ? json{{"type", "object"}} : input_schema;
    if (!output_schema.is_null()) j["outputSchema"] = output_schema;
    if (!annotations.is_null()) j["annotations"] = annotations;
    if (!icons.is_null()) j["icons"] = icons;
    if (!meta.is_null()) j["_meta"] = meta;
    if (with_tasks && !task_support.empty()) j["execution"] = json{{"taskSupport", task_support}};
    return j;
}

json text_content(const std::string& text) {
    json c(json::value_t::object);
    append_field(c, "text", text);
    append_field(c, "type", "text");
    return c;
}

json tool_result(const std::string& text, json structured, bool is_error) {
    json content(json::value_t::array);
    content.push_back(text_content(text));
    json r(json::value_t::object);
    append_field(r, "content", std::move(content));
    append_field(r, "isError", is_error);
    if (!structured.is_null()) append_field(r, "structuredContent", std::move(structured));
    return r;
}

json error_result(const std::string& message) { return tool_result(message, nullptr, true); }

void ToolRegistry::add(ToolDefinition definition, ToolHandler handler) {
    {
        std::unique_lock lock(mutex_);
        auto entry = std::make_shared<Entry>();
        auto it = tools_.find(definition.name);
        entry->order = it != tools_.end() ? it->second->order : next_order_++;
        entry->definition = std::move(definition);
        entry->handler = std::move(handler);
        tools_[entry->definition.name] = std::move(entry);
    }
    changed();
}

bool ToolRegistry::remove(const std::string& name) {
    bool removed;
    {
        std::unique_lock lock(mutex_);
        removed = tools_.erase(name) > 0;
    }
    if (removed) changed();
    return removed;
}

size_t ToolRegistry::remove_prefix(const std::string& prefix) {
    size_t n = 0;
    {
        std::unique_lock lock(mutex_);
        for (auto it = tools_.lower_bound(prefix); it != tools_.end() && it->first.rfind(prefix, 0) == 0;) {
            it = tools_.erase(it);
            ++n;
        }
    }
    if (n) changed();
    return n;
}

size_t ToolRegistry::update(const std::vector<std::string>& remove, std::vector<Addition> add) {
    size_t n = 0;
    {
        std::unique_lock lock(mutex_);
        for (const auto& name : remove) n += tools_.erase(name);
        for (auto& a : add) {
            auto entry = std::make_shared<Entry>();
            auto it = tools_.find(a.definition.name);
            entry->order = it != tools_.end() ? it->second->order : next_order_++;
            entry->definition = std::move(a.definition);
            entry->handler = std::move(a.handler);
            if (it != tools_.end()) it->second = std::move(entry);
            else {
                std::string key = entry->definition.name;
                tools_.emplace(std::move(key), std::move(entry));
            }
            ++n;
        }
    }
    if (n) changed();
    return n;
}

bool ToolRegistry::set_description(const std::string& name, const std::string& description) {
    {
        std::unique_lock lock(mutex_);
        auto it = tools_.find(name);
        if (it == tools_.end()) return false;
        if (it->second->definition.description == description) return true;
        auto entry = std::make_shared<Entry>(*it->second);
        entry->definition.description = description;
        it->second = std::move(entry);
    }
    changed();
    return true;
}

std::vector<ToolDefinition> ToolRegistry::list() const {
    std::vector<std::shared_ptr<const Entry>> entries;
    {
        std::shared_lock lock(mutex_);
        entries.reserve(tools_.size());
        for (const auto& [_, e] : tools_) entries.push_back(e);
    }
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a->order < b->order; });
    std::vector<ToolDefinition> out;
    out.reserve(entries.size());
    for (const auto& e : entries) out.push_back(e->definition);
    return out;
}

std::optional<ToolDefinition> ToolRegistry::find(const std::string& name) const {
    std::shared_lock lock(mutex_);
    auto it = tools_.find(name);
    if (it == tools_.end()) return std::nullopt;
    return it->second->definition;
}

void ToolRegistry::set_miss_handler(std::function<bool(const std::string&, const CancellationToken&)> handler) {
    miss_handler_ = std::move(handler);
}

std::optional<ToolDefinition> ToolRegistry::resolve(const std::string& name, const CancellationToken& cancel) const {
    auto found = find(name);
    if (!found && miss_handler_ && miss_handler_(name, cancel)) found = find(name);
    return found;
}

bool ToolRegistry::contains(const std::string& name) const {
    std::shared_lock lock(mutex_);
    return tools_.count(name) > 0;
}

bool ToolRegistry::is_exposed(const std::string& name) const {
    std::shared_lock lock(mutex_);
    auto it = tools_.find(name);
    return it != tools_.end() && it->second->definition.exposed;
}

std::string ToolRegistry::task_support(const std::string& name) const {
    std::shared_lock lock(mutex_);
    auto it = tools_.find(name);
    return it != tools_.end() ? it->second->definition.task_support : std::string();
}

size_t ToolRegistry::size() const {
    std::shared_lock lock(mutex_);
    return tools_.size();
}

std::shared_ptr<const ToolRegistry::Entry> ToolRegistry::entry(const std::string& name) const {
    std::shared_lock lock(mutex_);
    auto it = tools_.find(name);
    return it != tools_.end() ? it->second : nullptr;
}

void ToolRegistry::invoke(const Entry& entry, const ToolCall& call) {
    if (!call.arguments().is_object()) {
        call.reject(-32602, "Invalid params: arguments for tool '" + call.tool() + "' must be an object");
        return;
    }
    try {
        entry.handler(call);
    } catch (...) {
        call.map_exception(std::current_exception());
    }
}

void ToolRegistry::dispatch(ToolCall call) const {
    if (auto found = entry(call.tool())) {
        invoke(*found, call);
        return;
    }
    if (!miss_handler_) {
        call.reject(-32602, "Unknown tool: '" + call.tool() + "'");
        return;
    }
    // A downstream server that is still starting may bring the tool: wait for it where waiting
    // is allowed, never on the protocol's reading thread.
    bool started = call.offload([this, call] {
        try {
            if (miss_handler_(call.tool(), call.context().cancellation()))
                if (auto found = entry(call.tool())) {
                    invoke(*found, call);
                    return;
                }
            call.reject(-32602, "Unknown tool: '" + call.tool() + "'");
        } catch (const UnknownToolError& e) {
            call.reject(-32602, e.what());  // the owner says why the name cannot be had
        } catch (...) {
            call.map_exception(std::current_exception());
        }
    });
    if (!started) call.reject_unrun();
}

namespace {

// Where a waiting caller's answer lands.
struct Waiter {
    std::mutex mutex;
    std::condition_variable cv;
    bool answered = false;  // GUARDED_BY(mutex)
    json result;            // GUARDED_BY(mutex)
    int code = 0;           // GUARDED_BY(mutex): a rejection's JSON-RPC code
    std::string message;    // GUARDED_BY(mutex)

    void finish(json r, int c, std::string m) {
        {
            std::lock_guard lock(mutex);
            result = std::move(r);
            code = c;
            message = std::move(m);
            answered = true;
        }
        cv.notify_all();
    }
};

}  // namespace

json ToolRegistry::call(const std::string& name, json arguments, const CallContext& context) const {
    auto waiter = std::make_shared<Waiter>();
    ToolReply reply{[waiter](json result) { waiter->finish(std::move(result), 0, {}); },
                    [waiter](int code, const std::string& message) { waiter->finish(nullptr, code, message); }};
    BlockingRunner inline_runner = [](std::function<void()> work) {
        work();
        return true;
    };
    if (arguments.is_null()) arguments = json::object();
    dispatch(ToolCall(name, std::move(arguments), context, std::move(reply), std::move(inline_runner)));
    std::unique_lock lock(waiter->mutex);
    waiter->cv.wait(lock, [&] { return waiter->answered; });
    if (waiter->code != 0) {
        if (waiter->message.rfind("Unknown tool", 0) == 0) throw UnknownToolError(waiter->message);
        throw InvalidParamsError(waiter->message);
    }
    return std::move(waiter->result);
}

size_t ToolRegistry::subscribe(std::function<void()> listener) {
    std::lock_guard lock(listeners_mutex_);
    auto id = next_listener_++;
    listeners_.emplace(id, std::move(listener));
    return id;
}

void ToolRegistry::unsubscribe(size_t id) {
    std::lock_guard lock(listeners_mutex_);
    listeners_.erase(id);
}

void ToolRegistry::changed() const {
    std::vector<std::function<void()>> copy;
    {
        std::lock_guard lock(listeners_mutex_);
        for (const auto& [_, l] : listeners_) copy.push_back(l);
    }
    for (auto& l : copy) l();
}

}  // namespace pymcp::mcp
