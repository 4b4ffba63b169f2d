// Makes LeakSanitizer see all of embedded CPython's heap, in sanitizer builds only
// (-DPYMCP_SANITIZE=ON links this file into pymcp_python; see docs/hardening.md).
//
// With PYTHONMALLOC=malloc (tests/sanitizers/run.sh sets it) every Python object comes from
// malloc, so LeakSanitizer follows the pointers between them. One allocation stays outside:
// CPython 3.11 keeps the locals of running frames in "data stack" chunks that it takes from the
// object arena allocator, which uses mmap, and LeakSanitizer does not scan mmap'd memory. An
// object referenced only by a frame that is still running when the process checks for leaks
// (a background thread's, or an execution's at shutdown) then looks leaked although Python
// holds it. Pointing the arena allocator at malloc before the interpreter starts makes those
// chunks ordinary heap blocks, reachable from their thread state, so they are scanned too, and
// no suppression is needed for them.

#include <Python.h>

#include <cstdlib>

namespace {

void* arena_alloc(void*, size_t size) { return std::malloc(size); }
void arena_free(void*, void* pointer, size_t) { std::free(pointer); }

// Before main(), so before start_interpreter(): libpython is loaded and relocated by then, and
// the allocator is a plain global that Py_Initialize does not reset.
[[maybe_unused]] const bool g_arenas_on_heap = [] {
    static PyObjectArenaAllocator allocator{nullptr, arena_alloc, arena_free};
    PyObject_SetArenaAllocator(&allocator);
    return true;
}();

}  // namespace
