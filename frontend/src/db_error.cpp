#include "db_error.h"

#include <cctype>
#include <pqxx/except>
#include <string>

namespace pgx {

namespace {

// The functions raise "<reason_code>: text"; split that, dropping libpq's "ERROR:  " prefix.
void split_reason(const std::string& what, std::string& code, std::string& message) {
    std::string line = what.substr(0, what.find('\n'));
    if (line.rfind("ERROR:", 0) == 0) line.erase(0, line.find_first_not_of(' ', 6));
    std::size_t colon = line.find(": ");
    bool is_code = colon != std::string::npos && colon > 0;
    for (std::size_t i = 0; is_code && i < colon; ++i)
        is_code = std::islower(static_cast<unsigned char>(line[i])) || line[i] == '_';
    if (is_code) {
        code = line.substr(0, colon);
        message = line.substr(colon + 2);
    } else {
        message = line;
    }
}

// libpqxx 6 throws some SQLSTATE classes as their own exception types without the state itself.
std::string sqlstate_of(const pqxx::sql_error& e) {
    if (!e.sqlstate().empty()) return e.sqlstate();
    if (dynamic_cast<const pqxx::insufficient_privilege*>(&e)) return "42501";
    if (dynamic_cast<const pqxx::insufficient_resources*>(&e)) return "53000";
    if (dynamic_cast<const pqxx::data_exception*>(&e)) return "22000";
    if (dynamic_cast<const pqxx::feature_not_supported*>(&e)) return "0A000";
    return "";
}

}  // namespace

std::string sqlstate_of(const std::exception& e) {
    auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
    return sql ? sqlstate_of(*sql) : std::string();
}

namespace {

bool is_connection_state(const std::string& s) {
    return s.rfind("08", 0) == 0 || s == "57P01" || s == "57P02" || s == "57P03";
}

}  // namespace

bool is_connection_failure(const std::exception& e) {
    if (dynamic_cast<const pqxx::broken_connection*>(&e) || dynamic_cast<const pqxx::in_doubt_error*>(&e))
        return true;
    auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
    return sql && is_connection_state(sqlstate_of(*sql));
}

bool is_wait_timeout(const std::exception& e) {
    auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
    if (!sql) return false;
    const std::string state = sqlstate_of(*sql);
    return state == "55P03" || state == "57014";
}

ApiError api_error_from(const std::exception& e) {
    if (auto* api = dynamic_cast<const ApiError*>(&e)) return *api;
    if (is_connection_failure(e)) return ApiError(503, "database_unavailable", "the database is unavailable");
    auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
    if (!sql) return ApiError(500, "internal_error", "internal error");
    const std::string state = sqlstate_of(*sql);
    std::string code, message;
    split_reason(sql->what(), code, message);
    auto make = [&](int status, const char* fallback) {
        return ApiError(status, code.empty() ? fallback : code, message);
    };
    if (state == "42704") return make(400, "unknown_instrument");
    if (state == "P0002") return make(404, "not_found");
    // A function (42883) or an order_result column (42703) this build calls is not there: the
    // database's extension is older than the build.
    if (state == "42883" || state == "42703")
        return ApiError(
            501, "extension_outdated",
            "the database's exchange extension lacks what this route needs: run ALTER EXTENSION exchange "
            "UPDATE");
    // The library refuses what the database's older extension version cannot store (an iceberg before 0.12,
    // a stop order before 0.13).
    if (state == "0A000" && code == "extension_outdated") return make(501, "extension_outdated");
    if (state == "42501") return make(403, "forbidden");
    // A standby keeps no books (the extension's 55000 book_unavailable): the server is the wrong one.
    if (state == "55000" && code == "book_unavailable") return make(503, "book_unavailable");
    // A trade date not settled yet (extension 0.16): its positions do not exist (yet), nothing conflicts.
    if (state == "55000" && code == "not_settled") return make(404, "not_settled");
    if (state == "55000") return make(409, "conflict");
    if (state == "53000") return make(503, "capacity");
    // Every order book slot in the server's shared memory is taken (the extension's 53400, at an
    // instrument's first order): nothing was written; it trades once exchange.max_instruments is raised.
    if (state == "53400")
        return ApiError(
            503, "instrument_capacity",
            "every order book slot of the server is in use (exchange.max_instruments): raise it and "
            "restart the database");
    if (state.rfind("22", 0) == 0) return make(400, "invalid_value");
    if (state == "40001" || state == "40P01") return ApiError(503, "database_busy", "retry the request");
    // The database takes no writes: a standby (before or without a failover), or a read-only default.
    if (state == "25006")
        return ApiError(503, "database_read_only",
                        "the database is read-only (a standby, or default_transaction_read_only): point the "
                        "frontend at the primary");
    if (state == "57014") return ApiError(503, "database_timeout", "the database did not answer in time");
    if (state == "55P03")
        return ApiError(503, "instrument_busy", "another transaction holds the instrument; retry the request");
    return ApiError(500, "internal_error", "internal error");
}

ApiError api_error_from_refusal(const std::string& code, const std::string& message) {
    // cancel_order's and amend_order's refusals and their SQLSTATEs: P0002, 42501, 55000, 53000 for
    // the book's capacity, 22023 for the rest (see api_error_from).
    if (code == "order_not_found") return ApiError(404, code, message);
    if (code == "not_order_owner") return ApiError(403, code, message);
    if (code == "order_not_open") return ApiError(409, code, message);
    if (code == "order_capacity" || code == "level_capacity") return ApiError(503, code, message);
    return ApiError(400, code.empty() ? "rejected" : code, message);
}

}  // namespace pgx
