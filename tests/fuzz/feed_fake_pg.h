// The instruments table of the fake feed connection (feed_fake_pg.cpp).
#pragma once

namespace pgx::feed::pg {

// Symbols with instrument ids 1, 2, 3.
inline constexpr const char* kFakeInstruments[] = {"BTC-USD", "ETH-USD", "X"};

}  // namespace pgx::feed::pg
