#include "python_mcp/app/install_paths.hpp"

namespace fs = std::filesystem;

namespace pymcp::app {

fs::path shipped_scripts_dir() {
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) return {};
    fs::path installed = exe.parent_path().parent_path() / "share" / "python-mcp" / "scripts_store";
    if (fs::is_directory(installed, ec)) return installed.lexically_normal();
#if defined(PYMCP_BUILD_DIR) && defined(PYMCP_SOURCE_DIR)
    // Only the binary of this very build folder uses the source tree: a copy installed elsewhere
    // must never pick up files from wherever it happened to be built.
    if (fs::equivalent(exe.parent_path(), PYMCP_BUILD_DIR, ec) && !ec) {
        fs::path source = fs::path(PYMCP_SOURCE_DIR) / "scripts_store";
        if (fs::is_directory(source, ec)) return source;
    }
#endif
    return {};
}

}  // namespace pymcp::app
