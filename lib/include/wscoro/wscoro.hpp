#pragma once
// Everything: the co_await API (listener, async_connect, connection) and the callback facades.
#include <wscoro/client.hpp>
#include <wscoro/config.hpp>
#include <wscoro/connect.hpp>
#include <wscoro/connection.hpp>
#include <wscoro/error.hpp>
#include <wscoro/listener.hpp>
#include <wscoro/message.hpp>
#include <wscoro/metrics.hpp>
#include <wscoro/registry.hpp>
#include <wscoro/server.hpp>
#include <wscoro/url.hpp>
