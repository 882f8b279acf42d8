// The chat page served at "/": plain HTML and JavaScript, embedded, no external resources.
#include "commands.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

namespace wscoro::cli {

namespace {
constexpr char const* page = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wscoro chat</title>
<style>
  :root { font-family: system-ui, sans-serif; color-scheme: light dark; }
  body { margin: 0 auto; max-width: 46rem; padding: 1rem; display: flex; flex-direction: column; height: 100vh; box-sizing: border-box; }
  header { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; }
  h1 { font-size: 1.2rem; margin: 0 1rem 0 0; }
  #status { font-size: .85rem; padding: .1rem .5rem; border-radius: 1rem; background: #8884; }
  #status.online { background: #2a7d2a; color: white; }
  #log { flex: 1; overflow-y: auto; border: 1px solid #8886; border-radius: .4rem; padding: .5rem; margin: .75rem 0; list-style: none; }
  #log li { padding: .15rem 0; overflow-wrap: anywhere; }
  #log li.notice { color: #888; font-style: italic; }
  #log .nick { font-weight: 600; margin-right: .4rem; }
  form { display: flex; gap: .5rem; }
  input { font: inherit; padding: .4rem; }
  #text { flex: 1; }
</style>
</head>
<body>
<header>
  <h1>wscoro chat</h1>
  <form id="nick-form"><input id="nick" placeholder="nickname" maxlength="32" autocomplete="off"><button id="set-nick">Set nickname</button></form>
  <span id="status">connecting…</span>
</header>
<ul id="log" aria-live="polite"></ul>
<form id="say-form"><input id="text" placeholder="message" autocomplete="off"><button id="send">Send</button></form>
<script>
"use strict";
const WS_PATH = __WS_PATH__;
const log = document.getElementById("log");
const status = document.getElementById("status");
let ws, me = "", retry = 500;

function add(cls, nick, text) {
  const li = document.createElement("li");
  if (cls) li.className = cls;
  if (nick) { const b = document.createElement("span"); b.className = "nick"; b.textContent = nick; li.append(b); }
  li.append(document.createTextNode(text));
  log.append(li);
  log.scrollTop = log.scrollHeight;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  ws = new WebSocket(scheme + location.host + WS_PATH);
  ws.onopen = () => { status.textContent = "online"; status.className = "online"; retry = 500;
                      const wanted = document.getElementById("nick").value.trim();
                      if (wanted) ws.send(JSON.stringify({type: "nick", nick: wanted})); };
  ws.onclose = (e) => { status.textContent = "offline (" + e.code + "), reconnecting…"; status.className = "";
                        setTimeout(connect, retry); retry = Math.min(retry * 2, 10000); };
  ws.onmessage = (e) => {
    if (typeof e.data !== "string") { add("notice", "", "[binary message]"); return; }
    let m; try { m = JSON.parse(e.data); } catch { add("", "", e.data); return; }
    switch (m.type) {
      case "welcome": me = m.nick; add("notice", "", "you are " + m.nick); break;
      case "join": add("notice", "", m.nick + " joined"); break;
      case "leave": add("notice", "", m.nick + " left"); break;
      case "nick": if (m.old === me) me = m.nick; add("notice", "", m.old + " is now " + m.nick); break;
      case "say": add("", m.nick, m.text); break;
      default: add("", "", e.data);
    }
  };
}

document.getElementById("nick-form").onsubmit = (e) => {
  e.preventDefault();
  const nick = document.getElementById("nick").value.trim();
  if (nick && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({type: "nick", nick}));
};
document.getElementById("say-form").onsubmit = (e) => {
  e.preventDefault();
  const input = document.getElementById("text");
  if (input.value && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify({type: "say", text: input.value})); input.value = ""; }
};
connect();
</script>
</body>
</html>
)html";
}  // namespace

std::string chat_page(std::string const& ws_path) {
    std::string html = page;
    // A JSON string literal is a valid JavaScript string literal; "</" is escaped so that the
    // path cannot end the script element.
    auto literal = boost::json::serialize(boost::json::string{ws_path});
    for (std::size_t at = 0; (at = literal.find("</", at)) != std::string::npos; at += 3)
        literal.replace(at, 2, "<\\/");
    html.replace(html.find("__WS_PATH__"), 11, literal);
    return html;
}

}  // namespace wscoro::cli
