#include "interest.h"

#include <utility>

namespace pgx::feed {

void Interest::set(const void* session, std::vector<std::string> instruments, bool all) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = said_.find(session);
    if (it != said_.end() && it->second.all == all && it->second.instruments == instruments)
        return;  // unchanged
    if (it != said_.end()) {
        for (const auto& i : it->second.instruments)
            if (--count_[i] == 0) count_.erase(i);
        all_ -= it->second.all ? 1 : 0;
        said_.erase(it);
    }
    if (instruments.empty() && !all) return;
    for (const auto& i : instruments) count_[i]++;
    all_ += all ? 1 : 0;
    said_.emplace(session, Said{std::move(instruments), all});
}

bool Interest::followed(const std::string& instrument) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return all_ > 0 || count_.count(instrument) != 0;
}

}  // namespace pgx::feed
