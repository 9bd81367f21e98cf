// Turns database failures into API errors (SQLSTATE -> HTTP status and code).
#pragma once

#include <exception>
#include <string>

#include "reply.h"

namespace pgx {

// The API error for an exception thrown while talking to PostgreSQL.
ApiError api_error_from(const std::exception& e);

// The API error for a refusal that a batch function returns as a row
// (reject_reason, reject_message) where its single-item form raises an ERROR:
// the same status and code as that ERROR gets from api_error_from.
ApiError api_error_from_refusal(const std::string& code, const std::string& message);

// True when the connection itself failed (lost, refused, server shutting down):
// the outcome of the statement is unknown and the connection must be replaced.
bool is_connection_failure(const std::exception& e);

// The SQLSTATE of a failed statement ("42883"), or "" for anything else.
std::string sqlstate_of(const std::exception& e);

// True when the statement gave up waiting: lock_timeout (another transaction
// holds the instrument) or statement_timeout. Nothing was committed.
bool is_wait_timeout(const std::exception& e);

}  // namespace pgx
