#include "json_body.h"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <cctype>
#include <charconv>
#include <optional>

#include "reply.h"

namespace pgx {

// SAX handler: keeps depth-1 scalars, marks nested values as Composite.
struct JsonBodyBuilder : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, JsonBodyBuilder> {
    JsonBody& out;
    int depth = 0;
    std::string key;
    std::optional<std::string> duplicate;  // the first key seen twice (it may be "")
    bool bad_text = false;  // a string or key that is not valid text (see is_valid_text)
    explicit JsonBodyBuilder(JsonBody& b) : out(b) {}

    bool put(JsonScalar v) {
        if (depth != 1) return true;
        if (!out.fields_.emplace(key, std::move(v)).second && !duplicate) duplicate = key;
        return true;
    }
    bool Null() { return put({}); }
    bool Bool(bool b) { return put({JsonScalar::Kind::Bool, {}, b}); }
    bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
        return put({JsonScalar::Kind::Number, std::string(s, n), false});
    }
    bool String(const char* s, rapidjson::SizeType n, bool) {
        if (!is_valid_text({s, n})) return bad_text = true, false;
        return put({JsonScalar::Kind::String, std::string(s, n), false});
    }
    bool Key(const char* s, rapidjson::SizeType n, bool) {
        if (!is_valid_text({s, n})) return bad_text = true, false;
        if (depth == 1) key.assign(s, n);
        return true;
    }
    bool StartObject() { return open(); }
    bool EndObject(rapidjson::SizeType) { return --depth, true; }
    bool StartArray() { return open(); }
    bool EndArray(rapidjson::SizeType) { return --depth, true; }
    bool open() {
        if (depth == 1) put({JsonScalar::Kind::Composite, {}, false});
        ++depth;
        return true;
    }
};

JsonBody JsonBody::parse(std::string_view body) {
    std::size_t first = body.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos || body[first] != '{')
        throw ApiError(400, "malformed_json", "the request body must be a JSON object");
    JsonBody b;
    JsonBodyBuilder h(b);
    rapidjson::Reader reader;
    rapidjson::MemoryStream ms(body.data(), body.size());
    rapidjson::ParseResult ok =
        reader.Parse<rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseValidateEncodingFlag>(ms, h);
    if (h.bad_text)
        throw ApiError(400, "malformed_json",
                       "strings must be valid Unicode text: no \\u0000 and no unpaired surrogate escape");
    if (!ok)
        throw ApiError(400, "malformed_json",
                       std::string("invalid JSON at offset ") + std::to_string(ok.Offset()) + ": " +
                           rapidjson::GetParseError_En(ok.Code()));
    if (h.duplicate)
        throw ApiError(400, "duplicate_field", "field '" + *h.duplicate + "' appears twice");
    return b;
}

void JsonBody::allow_only(std::initializer_list<std::string_view> allowed) const {
    for (const auto& [name, value] : fields_) {
        bool known = false;
        for (auto a : allowed) known = known || a == name;
        if (!known) throw ApiError(400, "unknown_field", "unknown field '" + name + "'");
    }
}

bool JsonBody::has(const std::string& name) const {
    auto it = fields_.find(name);
    return it != fields_.end() && it->second.kind != JsonScalar::Kind::Null;
}

static const JsonScalar* present(const std::map<std::string, JsonScalar, std::less<>>& fields,
                                 const std::string& name, bool required) {
    auto it = fields.find(name);
    if (it == fields.end() || it->second.kind == JsonScalar::Kind::Null) {
        if (required) throw ApiError(400, "missing_field", "field '" + name + "' is required");
        return nullptr;
    }
    return &it->second;
}

std::optional<std::string> JsonBody::text(const std::string& name, bool required) const {
    const JsonScalar* v = present(fields_, name, required);
    if (!v) return std::nullopt;
    if (v->kind != JsonScalar::Kind::String)
        throw ApiError(400, "invalid_field", "field '" + name + "' must be a string");
    return v->text;
}

std::optional<std::string> JsonBody::decimal(const std::string& name, const char* bad_code,
                                             bool required) const {
    const JsonScalar* v = present(fields_, name, required);
    if (!v) return std::nullopt;
    if (v->kind != JsonScalar::Kind::String && v->kind != JsonScalar::Kind::Number)
        throw ApiError(400, "invalid_field", "field '" + name + "' must be a decimal number or string");
    if (!is_decimal_text(v->text))
        throw ApiError(400, bad_code, "field '" + name + "' is not a decimal number");
    return v->text;
}

std::optional<bool> JsonBody::boolean(const std::string& name) const {
    const JsonScalar* v = present(fields_, name, false);
    if (!v) return std::nullopt;
    if (v->kind != JsonScalar::Kind::Bool)
        throw ApiError(400, "invalid_field", "field '" + name + "' must be true or false");
    return v->boolean;
}

std::optional<long long> JsonBody::integer(const std::string& name, const char* bad_code, long long lo,
                                           long long hi, bool required) const {
    const JsonScalar* v = present(fields_, name, required);
    if (!v) return std::nullopt;
    if (v->kind != JsonScalar::Kind::String && v->kind != JsonScalar::Kind::Number)
        throw ApiError(400, "invalid_field", "field '" + name + "' must be an integer number or string");
    const std::string& s = v->text;
    long long n = 0;
    const char* first = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
    auto [end, ec] = std::from_chars(first, s.data() + s.size(), n);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || n < lo || n > hi)
        throw ApiError(400, bad_code,
                       "field '" + name + "' must be an integer from " + std::to_string(lo) + " to " +
                           std::to_string(hi));
    return n;
}

bool is_valid_text(std::string_view s) {
    if (s.find('\0') != std::string_view::npos) return false;
    // rapidjson's UTF-8 validator (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF).
    struct Discard {
        void Put(char) {}
    } out;
    rapidjson::MemoryStream in(s.data(), s.size());
    while (in.Tell() < s.size())
        if (!rapidjson::UTF8<>::Validate(in, out)) return false;
    return true;
}

bool is_decimal_text(std::string_view s) {
    std::size_t i = 0, n = s.size();
    auto digits = [&] {
        std::size_t start = i;
        while (i < n && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
        return i - start;
    };
    if (n > 100) return false;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    std::size_t whole = digits();
    std::size_t frac = 0;
    if (i < n && s[i] == '.') {
        ++i;
        frac = digits();
    }
    if (whole + frac == 0) return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
        if (digits() == 0) return false;
    }
    return i == n;
}

}  // namespace pgx
