#pragma once
// The chat mode's protocol (`wscoro serve --mode chat`), apart from the server: what a client's
// message asks for, and the JSON events the room broadcasts. Header-only, so that the fuzz target
// (test/fuzz/fuzz_json_message.cpp) runs exactly this code.
//   client -> server  {"type":"nick","nick":"alice"}   {"type":"say","text":"hi"}   or plain text
//   server -> client  {"type":"welcome","id":..,"nick":..}  {"type":"join","nick":..}
//                     {"type":"leave","nick":..}  {"type":"nick","old":..,"nick":..}
//                     {"type":"say","nick":..,"text":..}
#include <wscoro/message.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace wscoro::cli {

inline constexpr std::size_t max_nick_size = 32;  // bytes

/// What one client message asks the room to do.
struct chat_request {
    enum class kind { ignore, relay, nick, say };
    kind what = kind::ignore;
    std::string nick;  ///< kind::nick: cleaned, never empty
    std::string text;  ///< kind::say
};

/// Without control characters, at most max_nick_size bytes, cut between characters: UTF-8 in,
/// UTF-8 out (peers reject a text frame that is not).
inline std::string clean_nick(std::string_view raw) {
    std::string nick;
    for (char ch : raw)
        if (static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f) nick += ch;
    if (nick.size() > max_nick_size) {
        auto n = max_nick_size;
        while (n > 0 && (static_cast<unsigned char>(nick[n]) & 0xc0) == 0x80) --n;  // a continuation byte
        nick.resize(n);
    }
    return nick;
}

/// Binary messages are relayed as they are; JSON objects of an unknown type are ignored; any other
/// text (plain text, JSON that is not an object) is said as it is.
inline chat_request parse_chat_message(message const& m) {
    using kind = chat_request::kind;
    if (m.is_binary()) return {kind::relay, {}, {}};
    boost::system::error_code ec;
    auto parsed = boost::json::parse(m.data(), ec);
    auto const* obj = !ec ? parsed.if_object() : nullptr;
    if (!obj) return {kind::say, {}, std::string{m.data()}};
    auto field = [obj](char const* key) -> std::string {
        auto const* v = obj->if_contains(key);
        return v && v->is_string() ? std::string{v->get_string()} : std::string{};
    };
    auto const type = field("type");
    if (type == "nick") {
        auto nick = clean_nick(field("nick"));
        if (nick.empty()) return {};
        return {kind::nick, std::move(nick), {}};
    }
    if (type != "say") return {};  // unknown JSON message: ignore
    return {kind::say, {}, field("text")};
}

inline boost::json::value nick_event(std::string const& old_nick, std::string const& nick) {
    return {{"type", "nick"}, {"old", old_nick}, {"nick", nick}};
}

inline boost::json::value say_event(std::string const& nick, std::string const& text) {
    return {{"type", "say"}, {"nick", nick}, {"text", text}};
}

}  // namespace wscoro::cli
