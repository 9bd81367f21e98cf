// The REST API: every route, what it reads from the request and which
// exchange.* function answers it.
#pragma once

#include <vector>

#include "http_server.h"

namespace pgx {

class DbPool;
class Metrics;
namespace feed {
class Server;
}

std::vector<Route> api_routes(DbPool& pool, Metrics& metrics, const pgx::feed::Server& feed);

}  // namespace pgx
