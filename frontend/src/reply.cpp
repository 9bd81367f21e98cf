#include "reply.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace pgx {

Reply error_reply(int status, std::string_view code, std::string_view message) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("error");
    w.StartObject();
    w.Key("code");
    w.String(code.data(), static_cast<rapidjson::SizeType>(code.size()));
    w.Key("message");
    w.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
    w.EndObject();
    w.EndObject();
    Reply r;
    r.status = status;
    r.body.assign(buf.GetString(), buf.GetSize());
    return r;
}

}  // namespace pgx
