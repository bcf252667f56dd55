#include "snippet_store.hpp"

namespace toolserver {

std::optional<std::string> snippet_name_problem(std::string_view name) {
    if (name.empty()) return "Snippet name must not be empty";
    if (name.size() > 128) return "Snippet name is longer than 128 characters";
    if (name == "." || name == "..") return "Snippet name must not be '.' or '..'";
    for (char c : name) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-';
        if (!ok) return "Snippet name may only contain letters, digits, '.', '_' and '-'";
    }
    return std::nullopt;
}

}  // namespace toolserver
