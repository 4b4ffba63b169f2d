#include "python_mcp/worker/wire.hpp"

#include <array>

namespace pymcp::worker {

using engine::ExecOutcome;
using engine::ExecRequest;
using pymcp::json;

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

json stream_json(const engine::StreamText& s) {
    return json{{"cut", s.cut_bytes}, {"text", s.text}, {"total", s.total_bytes}};
}

engine::StreamText stream_from(const json& j) {
    engine::StreamText s;
    s.text = j.at("text").get<std::string>();
    s.total_bytes = j.at("total").get<size_t>();
    s.cut_bytes = j.at("cut").get<size_t>();
    return s;
}

json calls_json(const ExecOutcome& o) {
    json calls = json::array();
    for (const auto& c : o.mcp_calls) calls.push_back(json{{"error", c.is_error}, {"ms", c.duration_ms}, {"tool", c.tool}});
    json omitted = json::array();
    for (const auto& t : o.mcp_calls_omitted)
        omitted.push_back(json{{"calls", t.calls}, {"errors", t.errors}, {"ms", t.total_ms}, {"tool", t.tool}});
    return json{{"calls", std::move(calls)}, {"omitted", std::move(omitted)}};
}

void calls_from(const json& j, ExecOutcome& o) {
    for (const auto& c : j.at("calls"))
        o.mcp_calls.push_back({c.at("tool").get<std::string>(), c.at("ms").get<double>(), c.at("error").get<bool>()});
    for (const auto& t : j.at("omitted"))
        o.mcp_calls_omitted.push_back({t.at("tool").get<std::string>(), t.at("calls").get<size_t>(),
                                       t.at("errors").get<size_t>(), t.at("ms").get<double>()});
}

json display_json(const ExecOutcome& o) {
    json items = json::array();
    for (const auto& item : o.display) {
        bool image = item.kind == engine::ContentItem::Kind::Image;
        items.push_back(json{{"data", image ? base64_encode(item.data) : item.data}, {"image", image}, {"mime", item.mime}});
    }
    return json{{"image_bytes_dropped", o.image_bytes_dropped},
                {"images_dropped", o.images_dropped},
                {"items", std::move(items)},
                {"texts_dropped", o.texts_dropped}};
}

void display_from(const json& j, ExecOutcome& o) {
    for (const auto& item : j.at("items")) {
        engine::ContentItem c;
        bool image = item.at("image").get<bool>();
        c.kind = image ? engine::ContentItem::Kind::Image : engine::ContentItem::Kind::Text;
        c.mime = item.at("mime").get<std::string>();
        c.data = image ? base64_decode(item.at("data").get<std::string>()) : item.at("data").get<std::string>();
        o.display.push_back(std::move(c));
    }
    o.images_dropped = j.at("images_dropped").get<size_t>();
    o.image_bytes_dropped = j.at("image_bytes_dropped").get<size_t>();
    o.texts_dropped = j.at("texts_dropped").get<size_t>();
}

}  // namespace

json to_json(const ExecRequest& r) {
    return json{{"argv", r.argv},
                {"code", r.code},
                {"filename", r.filename},
                {"main", r.run_on_main_thread},
                {"max_image_bytes", r.max_image_bytes},
                {"max_images", r.max_images},
                {"max_output", r.max_output},
                {"persistent", r.persistent},
                {"session", r.session_id},
                {"timeout_ms", r.timeout.count()}};
}

ExecRequest request_from_json(const json& j) {
    ExecRequest r;
    r.code = j.at("code").get<std::string>();
    r.session_id = j.at("session").get<std::string>();
    r.persistent = j.at("persistent").get<bool>();
    r.run_on_main_thread = j.at("main").get<bool>();
    r.timeout = std::chrono::milliseconds(j.at("timeout_ms").get<long long>());
    r.max_output = j.at("max_output").get<size_t>();
    r.filename = j.at("filename").get<std::string>();
    r.argv = j.at("argv").get<std::vector<std::string>>();
    r.max_images = j.at("max_images").get<size_t>();
    r.max_image_bytes = j.at("max_image_bytes").get<size_t>();
    return r;
}

json to_json(const ExecOutcome& o) {
    json j{{"background", o.background_output_bytes},
           {"calls", calls_json(o)},
           {"display", display_json(o)},
           {"err", stream_json(o.err)},
           {"ms", o.duration_ms},
           {"out", stream_json(o.out)},
           {"result_cut", o.result_cut_bytes},
           {"status", static_cast<int>(o.status)},
           {"still_running", o.still_running}};
    if (o.result) j["result"] = *o.result;
    if (o.error)
        j["error"] = json{{"message", o.error->message}, {"traceback", o.error->traceback}, {"type", o.error->type}};
    return j;
}

ExecOutcome outcome_from_json(const json& j) {
    ExecOutcome o;
    int status = j.at("status").get<int>();
    if (status < 0 || status > static_cast<int>(ExecOutcome::Status::Cancelled)) throw std::runtime_error("bad status");
    o.status = static_cast<ExecOutcome::Status>(status);
    o.out = stream_from(j.at("out"));
    o.err = stream_from(j.at("err"));
    if (j.contains("result")) o.result = j["result"].get<std::string>();
    o.result_cut_bytes = j.at("result_cut").get<size_t>();
    if (j.contains("error")) {
        const auto& e = j["error"];
        o.error = engine::ExecError{e.at("type").get<std::string>(), e.at("message").get<std::string>(),
                                    e.at("traceback").get<std::string>()};
    }
    o.duration_ms = j.at("ms").get<double>();
    o.still_running = j.at("still_running").get<bool>();
    calls_from(j.at("calls"), o);
    o.background_output_bytes = j.at("background").get<size_t>();
    display_from(j.at("display"), o);
    return o;
}

json to_json(const engine::BackgroundOutput& b) { return json{{"err", stream_json(b.err)}, {"out", stream_json(b.out)}}; }

engine::BackgroundOutput background_from_json(const json& j) {
    return engine::BackgroundOutput{stream_from(j.at("out")), stream_from(j.at("err"))};
}

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        unsigned v = (unsigned char)bytes[i] << 16 | (unsigned char)bytes[i + 1] << 8 | (unsigned char)bytes[i + 2];
        for (int shift : {18, 12, 6, 0}) out += kAlphabet[(v >> shift) & 63];
    }
    if (size_t left = bytes.size() - i; left > 0) {
        unsigned v = (unsigned char)bytes[i] << 16 | (left == 2 ? (unsigned char)bytes[i + 1] << 8 : 0u);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += left == 2 ? kAlphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::string base64_decode(std::string_view text) {
    static const std::array<int, 256> values = [] {
        std::array<int, 256> t{};
        t.fill(-1);
        for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = i;
        return t;
    }();
    std::string out;
    out.reserve(text.size() / 4 * 3);
    unsigned acc = 0;
    int bits = 0;
    for (char c : text) {
        int v = values[static_cast<unsigned char>(c)];
        if (v < 0) continue;
        acc = (acc << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xFF);
        }
    }
    return out;
}

}  // namespace pymcp::worker
