#include "python_mcp/python/py_json.hpp"

#include <cmath>
#include <string>
#include <unordered_map>
#include <vector>

namespace py = pybind11;
using pymcp::json;

namespace pymcp::python {

namespace {

constexpr int kMaxDepth = 200;

// The path is only turned into text when something fails.
struct PathStep {
    PyObject* key;  // a dict key (borrowed from the dict being walked), or nullptr for an index
    Py_ssize_t index;
};

std::string repr_of(PyObject* o) {
    PyObject* r = PyObject_Repr(o);
    if (!r) {
        PyErr_Clear();
        return "?";
    }
    const char* s = PyUnicode_AsUTF8(r);
    std::string out = s ? s : "?";
    if (!s) PyErr_Clear();
    Py_DECREF(r);
    return out;
}

std::string render_path(const char* root, const std::vector<PathStep>& path) {
    std::string out = root;
    for (const auto& s : path) {
        if (!s.key) {
            out += "[" + std::to_string(s.index) + "]";
            continue;
        }
        Py_ssize_t n;
        const char* k = PyUnicode_Check(s.key) ? PyUnicode_AsUTF8AndSize(s.key, &n) : nullptr;
        if (k) {
            out += "['" + std::string(k, n) + "']";
        } else {
            PyErr_Clear();
            out += '[';
            out += repr_of(s.key);
            out += ']';
        }
    }
    return out;
}

// _pymcp_runtime.json_substitute, looked up once (GIL held; Python is never finalised), or
// nullptr when the runtime is not loaded.
PyObject* substitute_function() {
    static PyObject* fn = [] {
        PyObject* module = PyImport_ImportModule("_pymcp_runtime");
        PyObject* f = module ? PyObject_GetAttrString(module, "json_substitute") : nullptr;
        Py_XDECREF(module);
        if (!f) PyErr_Clear();
        return f;
    }();
    return fn;
}

// What to try instead, for a type with no JSON form.
std::string hint_for(PyObject* o) {
    const std::string name = Py_TYPE(o)->tp_name;
    if (name.find("imedelta") != std::string::npos)
        return "; a duration has no single JSON form: pass td.total_seconds() or str(td)";
    if (PyObject_HasAttrString(o, "to_dict")) return "; convert it first, e.g. .to_dict('records') or .to_dict()";
    if (PyObject_HasAttrString(o, "tolist")) return "; convert it first with .tolist()";
    return "";
}

class Walker {
public:
    explicit Walker(const char* root) : root_(root) {}

    // Exact builtin types are tested first, so ordinary params never pay for the slow path
    // (substitute) that numpy, pandas, datetime and Decimal values take.
    json walk(PyObject* o) {
        if (o == Py_None) return nullptr;
        if (o == Py_True) return true;
        if (o == Py_False) return false;
        if (PyUnicode_Check(o)) return string_of(o);
        if (PyLong_Check(o)) return integer_of(o);
        if (PyFloat_Check(o)) {
            double d = PyFloat_AS_DOUBLE(o);
            if (!std::isfinite(d)) return nullptr;  // NaN and Infinity are null, as in pandas' to_json
            return d;
        }
        if (static_cast<int>(path_.size()) >= kMaxDepth)
            throw py::value_error("value nested deeper than " + std::to_string(kMaxDepth) + " levels at " + here());
        if (PyDict_Check(o)) {
            json obj = json::object();
            PyObject *k, *v;
            Py_ssize_t pos = 0;
            while (PyDict_Next(o, &pos, &k, &v)) {
                path_.push_back({k, 0});
                obj[PyUnicode_Check(k) ? string_of(k) : key_of(k)] = walk(v);
                path_.pop_back();
            }
            return obj;
        }
        if (PyList_Check(o) || PyTuple_Check(o)) {
            Py_ssize_t n = PySequence_Fast_GET_SIZE(o);
            PyObject** items = PySequence_Fast_ITEMS(o);
            json arr = json::array();
            arr.get_ref<json::array_t&>().reserve(static_cast<size_t>(n));
            for (Py_ssize_t i = 0; i < n; ++i) {
                path_.push_back({nullptr, i});
                arr.push_back(walk(items[i]));
                path_.pop_back();
            }
            return arr;
        }
        return walk_substitute(o);
    }

private:
    std::string here() const { return render_path(root_, path_); }

    // A new reference to the runtime's JSON-able stand-in for `o`, or nullptr when it has none.
    PyObject* substitute(PyObject* o) {
        PyObject* fn = substitute_function();
        if (!fn) return nullptr;
        PyObject* sub = PyObject_CallOneArg(fn, o);
        if (!sub) throw py::error_already_set();
        if (sub == Py_NotImplemented || Py_TYPE(sub) == Py_TYPE(o)) {  // the latter: it would never end
            Py_DECREF(sub);
            return nullptr;
        }
        return sub;
    }

    json walk_substitute(PyObject* o) {
        auto sub = py::reinterpret_steal<py::object>(substitute(o));
        if (!sub)
            throw py::type_error("Object of type " + std::string(Py_TYPE(o)->tp_name) + " at " + here() +
                                 " is not JSON serializable (JSON takes dict, list, tuple, str, int, float, bool, None, "
                                 "and numpy/pandas numbers, arrays, datetimes, NaN/NaT/NA, Decimal)" + hint_for(o));
        if (++substitutions_ > kMaxDepth)
            throw py::value_error("value nested deeper than " + std::to_string(kMaxDepth) + " levels at " + here());
        json out = walk(sub.ptr());
        --substitutions_;
        return out;
    }

    // A dict key that is not a str, as json.dumps writes it: int, float, bool and None as their
    // JSON text, other scalars (numpy numbers, datetimes) through their stand-in.
    std::string key_of(PyObject* k) {
        if (k == Py_True) return "true";
        if (k == Py_False) return "false";
        if (k == Py_None) return "null";
        if (PyLong_Check(k)) return integer_of(k).dump();
        if (PyFloat_Check(k)) {
            double d = PyFloat_AS_DOUBLE(k);
            if (std::isnan(d)) return "NaN";
            if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
            return repr_of(k);
        }
        auto sub = py::reinterpret_steal<py::object>(substitute(k));
        if (sub && (PyUnicode_Check(sub.ptr()) || PyLong_Check(sub.ptr()) || PyFloat_Check(sub.ptr()) || sub.is_none()))
            return PyUnicode_Check(sub.ptr()) ? string_of(sub.ptr()) : key_of(sub.ptr());
        throw py::type_error("dict key " + repr_of(k) + " at " + here() +
                             " cannot be a JSON object key (keys are strings; str, int, float, bool and None keys "
                             "are written as text)");
    }

    std::string string_of(PyObject* o) {
        Py_ssize_t n;
        const char* s = PyUnicode_AsUTF8AndSize(o, &n);
        if (!s) {
            PyErr_Clear();
            throw py::value_error("string at " + here() + " cannot be encoded as UTF-8 (lone surrogate?)");
        }
        return std::string(s, static_cast<size_t>(n));
    }

    json integer_of(PyObject* o) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (!overflow) return v;
        if (overflow > 0) {
            unsigned long long u = PyLong_AsUnsignedLongLong(o);
            if (!PyErr_Occurred()) return u;
            PyErr_Clear();
        }
        throw py::value_error("integer at " + here() +
                              " does not fit in 64 bits; JSON numbers here are limited to 64-bit integers "
                              "(pass it as a string: str(n))");
    }

    const char* root_;
    std::vector<PathStep> path_;
    int substitutions_ = 0;  // stand-ins being walked, nested
};

}  // namespace

json py_to_json(py::handle value, const char* root_name) { return Walker(root_name).walk(value.ptr()); }

namespace {

// Object keys repeat from call to call (content, type, text, structuredContent, rows...):
// decoding and hashing them anew was a tenth of a trivial in-process mcp.call. Short keys are
// kept here as interned str objects (their hash cached), a bounded number of them, for the life
// of the process. Only touched with the GIL held, which is its lock.
class KeyCache {
public:
    // A new reference to the str for `key`, or nullptr with a Python error set.
    PyObject* get(const std::string& key) {
        auto it = keys_.find(key);
        if (it != keys_.end()) {
            Py_INCREF(it->second);
            return it->second;
        }
        PyObject* o = PyUnicode_DecodeUTF8(key.data(), static_cast<Py_ssize_t>(key.size()), "replace");
        if (!o) return nullptr;
        if (key.size() <= kMaxKeyBytes && keys_.size() < kMaxKeys) {
            PyUnicode_InternInPlace(&o);
            Py_INCREF(o);  // the cache's reference
            keys_.emplace(key, o);
        }
        return o;
    }

private:
    static constexpr size_t kMaxKeyBytes = 40;
    static constexpr size_t kMaxKeys = 2048;
    std::unordered_map<std::string, PyObject*> keys_;
};

KeyCache& key_cache() {
    static auto* cache = new KeyCache;  // never destroyed: Python is never finalised
    return *cache;
}

}  // namespace

py::object json_to_py(const json& v) {
    switch (v.type()) {
        case json::value_t::null:
            return py::none();
        case json::value_t::boolean:
            return py::bool_(v.get<bool>());
        case json::value_t::number_integer:
            return py::reinterpret_steal<py::object>(PyLong_FromLongLong(v.get<long long>()));
        case json::value_t::number_unsigned:
            return py::reinterpret_steal<py::object>(PyLong_FromUnsignedLongLong(v.get<unsigned long long>()));
        case json::value_t::number_float:
            return py::reinterpret_steal<py::object>(PyFloat_FromDouble(v.get<double>()));
        case json::value_t::string: {
            const auto& s = v.get_ref<const std::string&>();
            PyObject* o = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
            if (!o) throw py::error_already_set();
            return py::reinterpret_steal<py::object>(o);
        }
        case json::value_t::array: {
            PyObject* list = PyList_New(static_cast<Py_ssize_t>(v.size()));
            if (!list) throw py::error_already_set();
            auto owner = py::reinterpret_steal<py::object>(list);
            Py_ssize_t i = 0;
            for (const auto& item : v) PyList_SET_ITEM(list, i++, json_to_py(item).release().ptr());
            return owner;
        }
        case json::value_t::object: {
            py::dict d;
            for (auto it = v.begin(); it != v.end(); ++it) {
                PyObject* key = key_cache().get(it.key());
                if (!key) throw py::error_already_set();
                auto k = py::reinterpret_steal<py::object>(key);
                auto val = json_to_py(it.value());
                if (PyDict_SetItem(d.ptr(), k.ptr(), val.ptr()) != 0) throw py::error_already_set();
            }
            return d;
        }
        case json::value_t::binary:
        case json::value_t::discarded:
        default:
            return py::none();
    }
}

}  // namespace pymcp::python
