#include "subscriptions.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "instruments.h"

namespace pgx::feed {
namespace {

constexpr std::size_t kMaxInstrumentsPerMessage = 1000;
constexpr std::size_t kMaxSymbolBytes = 64;

struct ChannelName {
    const char* name;
    Channel channel;
};
constexpr ChannelName kChannelNames[] = {
    {"orderbook_deltas", kDeltas}, {"trades", kTrades}, {"orders", kOrders}};

// A parsed subscribe/unsubscribe; `error_code` set when the message is invalid.
struct Request {
    unsigned channels = 0;
    bool all_instruments = true;
    std::vector<std::string> instruments;
    std::map<std::string, int64_t> from_seq;
    std::optional<bool> batch;  // "batch": the connection's messages in batches (or not) from now on
    std::string error_code, error_message;
};

bool parse_int64(const rapidjson::Value& v, int64_t& out) {
    if (!v.IsString()) return false;  // numbers arrive as their text too
    const char* begin = v.GetString();
    const char* end = begin + v.GetStringLength();
    auto [ptr, ec] = std::from_chars(begin, end, out);
    return ec == std::errc() && ptr == end;
}

Request parse_request(const rapidjson::Value& msg, bool channels_required) {
    Request req;
    auto fail = [&](const char* code, const char* message) {
        req.error_code = code;
        req.error_message = message;
        return req;
    };
    auto channels = msg.FindMember("channels");
    if (channels == msg.MemberEnd()) {
        if (channels_required) return fail("invalid_channels", "channels is required");
        req.channels = kAllChannels;
    } else {
        if (!channels->value.IsArray() || channels->value.Empty())
            return fail("invalid_channels", "channels must be a non-empty array");
        for (const auto& c : channels->value.GetArray()) {
            auto known = std::find_if(
                std::begin(kChannelNames), std::end(kChannelNames),
                [&](const ChannelName& n) { return c.IsString() && c.GetString() == std::string(n.name); });
            if (known == std::end(kChannelNames))
                return fail("invalid_channels", "channels are orderbook_deltas, trades and orders");
            req.channels |= known->channel;
        }
    }
    auto instruments = msg.FindMember("instruments");
    if (instruments != msg.MemberEnd() && !instruments->value.IsNull()) {
        const auto& list = instruments->value;
        if (!list.IsArray() || list.Empty() || list.Size() > kMaxInstrumentsPerMessage)
            return fail("invalid_instruments",
                        "instruments must be a non-empty array of at most 1000 symbols");
        req.all_instruments = false;
        for (const auto& i : list.GetArray()) {
            if (!i.IsString() || i.GetStringLength() == 0 || i.GetStringLength() > kMaxSymbolBytes)
                return fail("invalid_instruments", "an instrument is a symbol string of 1 to 64 bytes");
            req.instruments.emplace_back(i.GetString(), i.GetStringLength());
        }
    }
    auto batch = msg.FindMember("batch");
    if (batch != msg.MemberEnd()) {
        if (!batch->value.IsBool()) return fail("invalid_batch", "batch is true or false");
        req.batch = batch->value.GetBool();
    }
    auto from = msg.FindMember("from_seq");
    if (from != msg.MemberEnd() && !from->value.IsNull()) {
        if (!from->value.IsObject() || from->value.MemberCount() > kMaxInstrumentsPerMessage)
            return fail("invalid_from_seq", "from_seq maps instruments to sequence numbers");
        for (const auto& m : from->value.GetObject()) {
            int64_t seq = 0;
            if (!parse_int64(m.value, seq) || seq < 0)
                return fail("invalid_from_seq", "a from_seq value is a non-negative integer");
            req.from_seq[std::string(m.name.GetString(), m.name.GetStringLength())] = seq;
        }
    }
    return req;
}

// {"type":"subscribed","channels":[...],"instruments":[...] or null}
Message acknowledgement(const char* type, const Request& req, bool batch) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    w.StartObject();
    w.Key("type");
    w.String(type);
    w.Key("channels");
    w.StartArray();
    for (const auto& n : kChannelNames)
        if (req.channels & n.channel) w.String(n.name);
    w.EndArray();
    w.Key("instruments");
    if (req.all_instruments) {
        w.Null();
    } else {
        w.StartArray();
        for (const auto& i : req.instruments) w.String(i.c_str(), static_cast<rapidjson::SizeType>(i.size()));
        w.EndArray();
    }
    if (batch) {
        w.Key("batch");
        w.Bool(true);
    }
    w.EndObject();
    return std::make_shared<const std::string>(buffer.GetString(), buffer.GetSize());
}

}  // namespace

void Subscriptions::error(const std::string& code, const std::string& message, Effects& fx) {
    errors_++;
    fx.send.push_back(make_error(code, message));
}

void Subscriptions::on_message(const std::string& text, Effects& fx) {
    rapidjson::Document msg;
    msg.Parse<rapidjson::kParseNumbersAsStringsFlag>(text.c_str(), text.size());
    if (msg.HasParseError()) return error("invalid_json", "the message is not valid JSON", fx);
    if (!msg.IsObject()) return error("invalid_message", "the message must be a JSON object", fx);
    auto type = msg.FindMember("type");
    if (type == msg.MemberEnd() || !type->value.IsString())
        return error("invalid_message", "the message needs a string \"type\"", fx);
    const std::string kind(type->value.GetString(), type->value.GetStringLength());
    if (kind == "ping") {
        static const Message pong = make_text("{\"type\":\"pong\"}");
        fx.send.push_back(pong);
        return;
    }
    if (kind != "subscribe" && kind != "unsubscribe")
        return error("unknown_type", "type must be subscribe, unsubscribe or ping", fx);
    const bool subscribing = kind == "subscribe";
    Request req = parse_request(msg, subscribing);
    if (!req.error_code.empty()) return error(req.error_code, req.error_message, fx);
    if (subscribing && private_orders_ && !client_ && (req.channels & kOrders))
        return error("unauthorized",
                     "the orders channel needs an API key (X-API-Key or Authorization: Bearer header, or "
                     "the api_key query parameter, when connecting)",
                     fx);

    std::vector<std::string> targets = req.instruments;
    if (req.all_instruments) {
        std::set<std::string> all;
        for (auto& s : instruments_.symbols()) all.insert(std::move(s));
        for (const auto& [symbol, state] : states_) all.insert(symbol);
        targets.assign(all.begin(), all.end());
    }
    if (req.batch) batch_ = *req.batch;
    fx.send.push_back(acknowledgement(subscribing ? "subscribed" : "unsubscribed", req, batch_));
    if (subscribing) {
        if (req.all_instruments) wildcard_ |= req.channels;
        for (const auto& symbol : targets) {
            auto from = req.from_seq.find(symbol);
            subscribe(symbol, req.channels, from == req.from_seq.end() ? nullptr : &from->second, fx);
        }
        return;
    }
    if (req.all_instruments) wildcard_ &= ~req.channels;
    for (const auto& symbol : targets) {
        auto it = states_.find(symbol);
        if (it == states_.end()) continue;
        it->second.channels &= ~req.channels;
        if (it->second.channels == 0) forget(it);  // also forgets a pending load
    }
}

void Subscriptions::followed(std::vector<std::string>& instruments, bool& all) const {
    instruments.clear();
    for (const auto& [symbol, state] : states_) instruments.push_back(symbol);
    all = wildcard_ != 0;
}

// The instrument's State, made if missing (where a dropped one stood, see sent_before_).
std::map<std::string, Subscriptions::State>::iterator Subscriptions::state_of(const std::string& instrument) {
    auto [it, made] = states_.try_emplace(instrument);
    if (made) {
        if (auto before = sent_before_.find(instrument); before != sent_before_.end()) {
            it->second.sent_trades = before->second.first;
            it->second.sent_orders = before->second.second;
            sent_before_.erase(before);
        }
    }
    return it;
}

void Subscriptions::forget(std::map<std::string, State>::iterator it) {
    sent_before_[it->first] = {it->second.sent_trades, it->second.sent_orders};
    states_.erase(it);
}

void Subscriptions::subscribe(const std::string& instrument, unsigned channels, const int64_t* from_seq,
                              Effects& fx) {
    State& state = state_of(instrument)->second;
    state.channels |= channels;
    if (from_seq) {
        request(state, LoadKind::kReplay, instrument, *from_seq, fx);
    } else if (channels & kDeltas) {
        // Also when already subscribed: subscribing again is how a client
        // that lost track resynchronises.
        request(state, LoadKind::kSnapshot, instrument, 0, fx);
    } else if (!state.pending && !instruments_.id(instrument)) {
        request(state, LoadKind::kCheck, instrument, 0, fx);
    }
}

void Subscriptions::request(State& state, LoadKind kind, const std::string& instrument, int64_t from_seq,
                            Effects& fx) {
    state.pending = true;
    state.token = next_token_++;
    fx.loads.push_back({kind, instrument, from_seq, state.token});
}

void Subscriptions::on_batch(const std::shared_ptr<const Batch>& batch, Effects& fx) {
    auto it = states_.find(batch->instrument);
    if (it == states_.end()) {
        if (wildcard_ == 0) return;
        // An instrument the client has not seen yet under a subscription to all.
        it = state_of(batch->instrument);
        it->second.channels = wildcard_;
        if (wildcard_ & kDeltas) request(it->second, LoadKind::kSnapshot, batch->instrument, 0, fx);
    }
    State& state = it->second;
    if (state.pending) return hold(state, batch, fx);
    for (const Entry& entry : batch->entries) emit(state, entry, fx);
}

void Subscriptions::hold(State& state, const std::shared_ptr<const Batch>& batch, Effects& fx) {
    state.held.push_back(batch);
    state.held_bytes += batch->bytes;
    if (state.held_bytes > max_held_bytes_) fx.overflow = true;
}

void Subscriptions::emit(State& state, const Entry& entry, Effects& fx) {
    if ((state.channels & kDeltas) && entry.seq() > state.sent_deltas) {
        fx.send.push_back(entry.delta());
        state.sent_deltas = entry.seq();
    }
    if ((state.channels & kTrades) && entry.seq() > state.sent_trades) {
        fx.send.insert(fx.send.end(), entry.trades().begin(), entry.trades().end());
        state.sent_trades = entry.seq();
    }
    if ((state.channels & kOrders) && entry.seq() > state.sent_orders) {
        if (!private_orders_ || (client_ && entry.client() == *client_)) fx.send.push_back(entry.order());
        state.sent_orders = entry.seq();
    }
}

void Subscriptions::on_loaded(const LoadResult& result, Effects& fx) {
    auto it = states_.find(result.instrument);
    if (it == states_.end() || !it->second.pending || it->second.token != result.token) return;  // superseded
    State& state = it->second;
    if (!result.error_code.empty()) {
        fx.send.push_back(make_error(result.error_code, result.error_message));
        forget(it);
        return;
    }
    if (result.kind == LoadKind::kSnapshot && (state.channels & kDeltas) && result.snapshot) {
        fx.send.push_back(result.snapshot);
        // The client restarts its book here, so everything after S is owed
        // to it even if an earlier subscription had sent it already.
        state.sent_deltas = result.seq;
    } else if (result.kind == LoadKind::kReplay) {
        // The client said where it stands: it is owed every entry after that.
        const int64_t from = result.entries.empty() ? result.seq : result.entries.front().seq() - 1;
        state.sent_deltas = state.sent_trades = state.sent_orders = from;
        for (const Entry& entry : result.entries) emit(state, entry, fx);
        state.sent_deltas = state.sent_trades = state.sent_orders = result.seq;
    }
    state.pending = false;
    for (const auto& batch : state.held)
        for (const Entry& entry : batch->entries) emit(state, entry, fx);
    state.held.clear();
    state.held_bytes = 0;
}

}  // namespace pgx::feed
