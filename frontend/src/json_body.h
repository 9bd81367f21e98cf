// A request body that must be one flat JSON object. Numbers are kept as their
// exact source text (never converted to binary floating point).
#pragma once

#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace pgx {

struct JsonScalar {
    enum class Kind { String, Number, Bool, Null, Composite };
    Kind kind = Kind::Null;
    std::string text;  // string value, or the number exactly as written
    bool boolean = false;
};

class JsonBody {
public:
    // Throws ApiError 400 malformed_json (bad syntax, not an object, a string or key that is not
    // valid text: \u0000 or an unpaired surrogate escape) or duplicate_field.
    static JsonBody parse(std::string_view body);

    // Throws ApiError 400 unknown_field for any key outside `allowed`.
    void allow_only(std::initializer_list<std::string_view> allowed) const;

    // The accessors treat null like an absent field and throw ApiError 400
    // missing_field / invalid_field for absent required fields and wrong types.
    std::optional<std::string> text(const std::string& name, bool required = false) const;
    // A decimal given as a JSON number or string; `bad_code` names an invalid one.
    std::optional<std::string> decimal(const std::string& name, const char* bad_code,
                                       bool required = false) const;
    std::optional<bool> boolean(const std::string& name) const;
    // A whole number in [lo, hi] given as a JSON number or string of digits ("600", 600; not 600.0 or
    // 6e2); `bad_code` names one that is not, or is out of range.
    std::optional<long long> integer(const std::string& name, const char* bad_code, long long lo,
                                     long long hi, bool required = false) const;
    bool has(const std::string& name) const;

private:
    std::map<std::string, JsonScalar, std::less<>> fields_;
    friend struct JsonBodyBuilder;
};

// True for strict UTF-8 without U+0000: what a PostgreSQL text or jsonb value can hold.
bool is_valid_text(std::string_view s);

// True for plain decimal text such as "100", "-0.5", "1e3" (no NaN, no infinity, no spaces).
bool is_decimal_text(std::string_view s);

}  // namespace pgx
