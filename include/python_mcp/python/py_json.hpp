#pragma once
// Python objects <-> pymcp::json by walking them directly (no json.dumps round trip).
// Call with the GIL held. py_to_json takes the JSON types, and converts what pandas' to_json
// does (NaN/Infinity/NaT/NA -> null, datetimes -> ISO 8601, numpy numbers and arrays, Decimal)
// through the runtime's json_substitute, which only types outside the fast path reach. It throws
// pybind11::type_error (a type with no JSON form) or pybind11::value_error (an int beyond 64
// bits, a lone surrogate, nesting too deep), each naming the path inside the value, e.g.
// "params['rows'][3]"; an exception the stand-in raises propagates as error_already_set.

#include <pybind11/pybind11.h>

#include "python_mcp/support/json.hpp"

namespace pymcp::python {

pymcp::json py_to_json(pybind11::handle value, const char* root_name = "params");
pybind11::object json_to_py(const pymcp::json& value);

}  // namespace pymcp::python
