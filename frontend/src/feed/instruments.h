// The instrument_id <-> symbol map, shared by the LISTEN thread, the loader
// and the sessions (which only ask whether a symbol exists).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace pgx::feed {

namespace pg {
class Connection;
}

struct InstrumentRow {
    int id = 0;
    std::string symbol;
    int64_t last_seq = 0;  // newest journal entry
};

class Instruments {
public:
    // Reads every instrument with its newest sequence and remembers the map.
    std::vector<InstrumentRow> reload(pg::Connection& conn);
    std::optional<int> id(const std::string& symbol) const;
    std::optional<std::string> symbol(int id) const;
    std::vector<std::string> symbols() const;

private:
    mutable std::mutex mutex_;
    std::map<int, std::string> by_id_;
    std::map<std::string, int> by_symbol_;
};

}  // namespace pgx::feed
