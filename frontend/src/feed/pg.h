// Minimal RAII over libpq for the feed's two connections (LISTEN and loader).
// Every value crosses as text, so decimals are never converted to binary.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace pgx::feed::pg {

// A failed statement; sqlstate is empty when the connection itself failed.
struct Error : std::runtime_error {
    Error(const std::string& message, std::string state)
        : std::runtime_error(one_line(message)), sqlstate(std::move(state)) {}
    // libpq's messages span lines and end in a newline; logs want one line.
    static std::string one_line(std::string message);
    std::string sqlstate;
};

class Result {
public:
    explicit Result(PGresult* r) : r_(r, PQclear) {}
    ExecStatusType status() const { return r_ ? PQresultStatus(r_.get()) : PGRES_FATAL_ERROR; }
    const char* sqlstate() const { return r_ ? PQresultErrorField(r_.get(), PG_DIAG_SQLSTATE) : nullptr; }
    std::string error() const { return r_ ? PQresultErrorMessage(r_.get()) : "out of memory"; }
    int rows() const { return PQntuples(r_.get()); }
    bool is_null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
    std::string text(int row, int col) const {
        return std::string(PQgetvalue(r_.get(), row, col), PQgetlength(r_.get(), row, col));
    }
    int64_t int64(int row, int col) const { return std::stoll(PQgetvalue(r_.get(), row, col)); }

private:
    std::unique_ptr<PGresult, decltype(&PQclear)> r_;
};

class Connection {
public:
    // Connects (blocking); application_name lets operators find the backend.
    Connection(const std::string& conninfo, const char* application_name);
    bool ok() const { return PQstatus(conn_.get()) == CONNECTION_OK; }
    PGconn* raw() const { return conn_.get(); }
    // Runs a statement with text parameters; throws pg::Error.
    Result exec(const char* sql, const std::vector<std::string>& params = {});
    // The same for a statement run often: prepared under `name` on its first use on this
    // connection, so later runs skip the parse, analysis and planning.
    Result exec_prepared(const char* name, const char* sql, const std::vector<std::string>& params);
    // Whether the relation (a qualified name) exists; asked once per connection.
    bool has_relation(const std::string& name);

private:
    Result check(Result r);

    std::unique_ptr<PGconn, decltype(&PQfinish)> conn_;
    std::vector<std::string> prepared_;
    std::vector<std::pair<std::string, bool>> relations_;
};

}  // namespace pgx::feed::pg
