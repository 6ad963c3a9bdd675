#include "outq/queue/scripts.hpp"

namespace outq::queue {

redis::command script_call(const script& s, long long numkeys) {
    if (s.sha.empty()) {
        redis::command c("EVAL");
        c.arg(s.body).arg(numkeys);
        return c;
    }
    redis::command c("EVALSHA");
    c.arg(s.sha).arg(numkeys);
    return c;
}

redis::command script_load_command(const script& s) {
    return redis::command("SCRIPT").arg("LOAD").arg(s.body);
}

}  // namespace outq::queue
