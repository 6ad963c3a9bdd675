#pragma once
// A server-side script the worker calls often: sent as EVALSHA once Redis
// knows it (SCRIPT LOAD at start), as EVAL with its body otherwise (no SCRIPT
// permission, or Redis forgot it after a restart: NOSCRIPT).
#include <string>

#include "outq/resp.hpp"

namespace outq::queue {

struct script {
    const char* body = "";
    std::string sha;  // empty: not loaded, call with EVAL
};

// "EVALSHA sha numkeys" or "EVAL body numkeys"; the caller appends keys and arguments.
redis::command script_call(const script& s, long long numkeys);
redis::command script_load_command(const script& s);

}  // namespace outq::queue
