#include "instruments.h"

#include "pg.h"

namespace pgx::feed {

std::vector<InstrumentRow> Instruments::reload(pg::Connection& conn) {
    pg::Result r = conn.exec("SELECT instrument_id, symbol, seq FROM exchange.journal_heads()");
    std::vector<InstrumentRow> rows(r.rows());
    std::map<int, std::string> by_id;
    std::map<std::string, int> by_symbol;
    for (int i = 0; i < r.rows(); ++i) {
        rows[i] = {static_cast<int>(r.int64(i, 0)), r.text(i, 1), r.int64(i, 2)};
        by_id[rows[i].id] = rows[i].symbol;
        by_symbol[rows[i].symbol] = rows[i].id;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    by_id_.swap(by_id);
    by_symbol_.swap(by_symbol);
    return rows;
}

std::optional<int> Instruments::id(const std::string& symbol) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = by_symbol_.find(symbol);
    if (it == by_symbol_.end()) return std::nullopt;
    return it->second;
}

std::optional<std::string> Instruments::symbol(int id) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return std::nullopt;
    return it->second;
}

std::vector<std::string> Instruments::symbols() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [symbol, id] : by_symbol_) out.push_back(symbol);
    return out;
}

}  // namespace pgx::feed
