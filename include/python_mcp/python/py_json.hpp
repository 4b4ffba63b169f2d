#pragma once
// Python objects <-> nlohmann::json by walking them directly (no json.dumps round trip).
// Call with the GIL held. py_to_json throws pybind11::type_error (an unsupported type) or
// pybind11::value_error (NaN/Infinity, an int beyond 64 bits, a lone surrogate, nesting too
// deep), each naming the path inside the value, e.g. "params['rows'][3]".

#include <pybind11/pybind11.h>

#include <nlohmann/json.hpp>

namespace pymcp::python {

nlohmann::json py_to_json(pybind11::handle value, const char* root_name = "params");
pybind11::object json_to_py(const nlohmann::json& value);

}  // namespace pymcp::python
