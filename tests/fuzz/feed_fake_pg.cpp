// Stands in for frontend/src/feed/pg.cpp in tests/fuzz/http_fuzz.cpp: no
// server; every statement answers the instruments table (id, symbol, newest
// seq) of kFakeInstruments. Lets Instruments::reload fill the map that the
// subscriptions consult, without a database and without spdlog.
#include <cstring>

#include "feed_fake_pg.h"
#include "pg.h"

namespace pgx::feed::pg {

std::string Error::one_line(std::string message) {
    for (char& c : message)
        if (c == '\n' || c == '\t') c = ' ';
    return message;
}

Connection::Connection(const std::string&, const char*) : conn_(nullptr, PQfinish) {}

// The query of Instruments::reload is the only one the target makes.
Result Connection::exec(const char*, const std::vector<std::string>&) {
    PGresult* r = PQmakeEmptyPGresult(nullptr, PGRES_TUPLES_OK);
    PGresAttDesc columns[3] = {};
    char name[] = "?column?";
    for (auto& c : columns) {
        c.name = name;
        c.typlen = -1;
        c.atttypmod = -1;
    }
    if (!r || !PQsetResultAttrs(r, 3, columns)) throw Error("fake connection: out of memory", "");
    int row = 0;
    for (const char* symbol : kFakeInstruments) {
        const std::string id = std::to_string(row + 1);
        PQsetvalue(r, row, 0, const_cast<char*>(id.c_str()), static_cast<int>(id.size()));
        PQsetvalue(r, row, 1, const_cast<char*>(symbol), static_cast<int>(std::strlen(symbol)));
        PQsetvalue(r, row, 2, const_cast<char*>("0"), 1);
        ++row;
    }
    return Result(r);
}

// Linked for read_journal, which the target never calls.
Result Connection::exec_prepared(const char*, const char* sql, const std::vector<std::string>& params) {
    return exec(sql, params);
}

bool Connection::has_relation(const std::string&) {
    return false;
}

}  // namespace pgx::feed::pg
