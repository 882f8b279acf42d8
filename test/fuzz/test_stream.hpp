#pragma once
// Beast's in-memory stream (one end of a connected pair) as the transport under wscoro's
// corked_stream and stream_connection, which call two members of a socket that
// beast::test::stream lacks: cancel() (when a waiting write is cancelled; closing is the nearest
// the test stream has) and close(ec) (when the connection ends). Its own teardown overloads, for
// Beast's closing handshake: the base's would lose to Beast's generic template.
#include <boost/beast/_experimental/test/stream.hpp>

#include <utility>

namespace wscoro::fuzz {

class test_stream : public boost::beast::test::stream {
public:
    using boost::beast::test::stream::stream;
    using boost::beast::test::stream::close;
    void cancel() { close(); }
    void close(boost::system::error_code& ec) {
        ec = {};
        close();
    }
};

template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, test_stream& s, TeardownHandler&& handler) {
    boost::beast::test::async_teardown(role, static_cast<boost::beast::test::stream&>(s),
                                       std::forward<TeardownHandler>(handler));
}

inline void teardown(boost::beast::role_type role, test_stream& s, boost::system::error_code& ec) {
    boost::beast::test::teardown(role, static_cast<boost::beast::test::stream&>(s), ec);
}

}  // namespace wscoro::fuzz
