#include "pg.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace pgx::feed::pg {

std::string Error::one_line(std::string message) {
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    for (char& c : message)
        if (c == '\n' || c == '\t') c = ' ';
    return message;
}

namespace {
// Server notices (e.g. "terminating connection") go to the log, not stderr.
void log_notice(void*, const char* message) {
    spdlog::warn("feed: PostgreSQL: {}", Error::one_line(message));
}

std::vector<const char*> c_strings(const std::vector<std::string>& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p.c_str());
    return values;
}
}  // namespace

Connection::Connection(const std::string& conninfo, const char* application_name) : conn_(nullptr, PQfinish) {
    // expand_dbname: the conninfo may be a URI or key=value string; the
    // later keywords override it. Keepalives notice a silently dead peer.
    const char* keys[] = {
        "dbname",           "application_name", "keepalives", "keepalives_idle", "keepalives_interval",
        "keepalives_count", "connect_timeout",  nullptr};
    const char* values[] = {conninfo.c_str(), application_name, "1", "10", "5", "3", "10", nullptr};
    conn_.reset(PQconnectdbParams(keys, values, 1));
    if (!conn_) throw Error("out of memory connecting to PostgreSQL", "");
    if (!ok()) throw Error(PQerrorMessage(conn_.get()), "");
    PQsetNoticeProcessor(conn_.get(), log_notice, nullptr);
    // The feed's statements are the same few, run with other values over and over: a journal
    // read's range condition would otherwise get a custom plan, planned again on every run
    // (its generic plan's estimate is the higher one), which cost the server more than the
    // read itself (README, Benchmark: 337 -> 163 µs of server CPU for a read of two entries).
    exec("SET plan_cache_mode = force_generic_plan");
}

Result Connection::exec(const char* sql, const std::vector<std::string>& params) {
    const std::vector<const char*> values = c_strings(params);
    return check(Result(PQexecParams(conn_.get(), sql, static_cast<int>(values.size()), nullptr, values.data(),
                                     nullptr, nullptr, 0)));
}

Result Connection::exec_prepared(const char* name, const char* sql, const std::vector<std::string>& params) {
    if (std::find(prepared_.begin(), prepared_.end(), name) == prepared_.end()) {
        check(Result(PQprepare(conn_.get(), name, sql, 0, nullptr)));
        prepared_.emplace_back(name);
    }
    const std::vector<const char*> values = c_strings(params);
    return check(Result(
        PQexecPrepared(conn_.get(), name, static_cast<int>(values.size()), values.data(), nullptr, nullptr, 0)));
}

bool Connection::has_relation(const std::string& name) {
    for (const auto& [known, exists] : relations_)
        if (known == name) return exists;
    const bool exists = exec("SELECT to_regclass($1) IS NOT NULL", {name}).text(0, 0) == "t";
    relations_.emplace_back(name, exists);
    return exists;
}

Result Connection::check(Result r) {
    const ExecStatusType status = r.status();
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) return r;
    const char* state = r.sqlstate();
    throw Error(ok() ? r.error() : PQerrorMessage(conn_.get()), ok() && state ? state : "");
}

}  // namespace pgx::feed::pg
