#include <wscoro/registry.hpp>

namespace wscoro {

void connection_registry::add(connection_ptr c) {
    std::lock_guard lock{mutex_};
    std::string_view const id = c->id();  // the connection's own string, alive while it is here
    by_id_.emplace(id, std::move(c));
}

void connection_registry::remove(std::string_view id) {
    std::lock_guard lock{mutex_};
    if (auto it = by_id_.find(id); it != by_id_.end()) by_id_.erase(it);
}

std::size_t connection_registry::size() const {
    std::lock_guard lock{mutex_};
    return by_id_.size();
}

connection_ptr connection_registry::find(std::string_view id) const {
    std::lock_guard lock{mutex_};
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : it->second;
}

std::vector<connection_ptr> connection_registry::snapshot() const {
    std::lock_guard lock{mutex_};
    std::vector<connection_ptr> all;
    all.reserve(by_id_.size());
    for (auto const& [id, c] : by_id_) all.push_back(c);
    return all;
}

std::size_t connection_registry::broadcast(message const& m) const {
    // Sends happen outside the lock: a send may run connection code inline (when the caller is on
    // that connection's strand), and that code may leave the registry.
    std::size_t n = 0;
    for (auto const& c : snapshot()) n += !c->send(m);
    return n;
}

std::size_t connection_registry::broadcast_if(message const& m,
                                              std::function<bool(connection const&)> const& pick) const {
    // The predicate is user code: it runs outside the lock, on a snapshot.
    std::size_t n = 0;
    for (auto const& c : snapshot())
        if (pick(*c)) n += !c->send(m);
    return n;
}

void connection_registry::close_all(close_code code, std::string const& reason) const {
    for (auto const& c : snapshot()) c->close(code, reason);
}

void connection_registry::abort_all(error_code why) const {
    for (auto const& c : snapshot()) c->abort(why);
}

}  // namespace wscoro
