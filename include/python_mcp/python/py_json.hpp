#pragma once
// Python objects <-> pymcp::json by walking them directly (no json.dumps round trip).
// Call with the GIL held. py_to_json throws pybind11::type_error (an unsupported type) or
// pybind11::value_error (NaN/Infinity, an int beyond 64 bits, a lone surrogate, nesting too
// deep), each naming the path inside the value, e.g. "params['rows'][3]".

#include <pybind11/pybind11.h>

#include "python_mcp/support/json.hpp"

namespace pymcp::python {

pymcp::json py_to_json(pybind11::handle value, const char* root_name = "params");
pybind11::object json_to_py(const pymcp::json& value);

}  // namespace pymcp::python
