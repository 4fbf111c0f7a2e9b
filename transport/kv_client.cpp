// The kv_client's I/O thread: requests in, replies out, deadlines, reconnects and watches
// (the behaviour is described in kv_client.hpp). Transport details are in client_link_*.cpp.
#include "transport/kv_client.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "messages/msgpack_codec.hpp"
#include "transport/client_link.hpp"

namespace moatkv {

using clock = std::chrono::steady_clock;

std::optional<client_transport> parse_client_transport(std::string_view name) {
  if (name == "msgpack") return client_transport::msgpack;
  if (name == "caf") return client_transport::caf;
  return std::nullopt;
}

const char* client_transport_name(client_transport t) {
  return t == client_transport::caf ? "caf" : "msgpack";
}

namespace {

kv_error make_error(kv_error::kind k, std::string text) {
  kv_error e;
  e.what = k;
  e.text = std::move(text);
  return e;
}

bool is_state(const value& msg, std::string_view state) {
  const value* s = msg.find("state");
  return s && s->is_str() && s->as_str() == state;
}

std::string error_string(const value& e) {
  return e.is_str() ? e.as_str() : debug_string(e);
}

// What the user sees of a message: no seq / wseq (the library's business).
value strip(value msg) {
  if (msg.is_map()) {
    map_erase(msg.as_map(), "seq");
    map_erase(msg.as_map(), "wseq");
  }
  return msg;
}

// `defaults`, overridden and extended by `opts`.
map with_options(map defaults, map opts) {
  for (auto& [k, v] : opts) map_set(defaults, k, std::move(v));
  return defaults;
}

[[noreturn]] void throw_error(const kv_error& e) {
  if (e.what == kv_error::kind::server) throw server_error(e.text);
  throw client_error(e.text);
}

std::unique_ptr<client_link> open_link(const kv_client_options& o) {
  return o.transport == client_transport::caf ? open_caf_link(o) : open_msgpack_link(o);
}

// Waits for the reply of `seq` on a link no one else reads yet (the login after connecting):
// a single reply, or the end of a stream. Throws client_error / server_error.
value call_on(client_link& link, const std::string& action, map params,
              std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  int64_t seq = link.send(action, std::move(params));
  link.flush();
  for (;;) {
    while (std::optional<value> msg = link.poll_message()) {
      link.flush();  // acks
      if (int_field(*msg, "seq", -1) != seq) {
        if (msg->is_map() && !msg->find("seq"))
          if (const value* e = msg->find("error")) throw server_error(error_string(*e));
        continue;
      }
      if (const value* e = msg->find("error")) throw server_error(error_string(*e));
      if (is_state(*msg, "start")) continue;
      if (is_state(*msg, "end")) return value(map{});
      return strip(std::move(*msg));
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0)
      throw client_error("no reply to " + action + " within " + std::to_string(timeout.count()) +
                         " ms");
    pollfd p{link.wait_fd(), POLLIN, 0};
    poll(&p, 1, static_cast<int>(left.count()) + 1);
  }
}

// Connects and logs in. Throws as call_on, and client_auth_error.
std::unique_ptr<client_link> connect_and_login(const kv_client_options& o) {
  std::unique_ptr<client_link> link = open_link(o);
  const auth_spec* spec = o.auth ? &*o.auth : nullptr;
  if (login_needed(link->greeting(), spec)) {
    std::string key;
    if (spec->method == "password")
      key = dh_session_key([&](map fields) {
        return call_on(*link, "diffie_hellman", std::move(fields), o.timeout);
      });
    call_on(*link, "auth", auth_request(*spec, key), o.timeout);
  }
  return link;
}

// A blocking call's wait for its asynchronous request.
struct waiter {
  std::mutex mx;
  std::condition_variable cv;
  bool done = false;
  value reply;
  kv_error err;
  std::exception_ptr thrown;  // by the caller's per-message function

  void finish(value r, const kv_error& e) {
    std::lock_guard<std::mutex> lock(mx);
    if (done) return;
    done = true;
    reply = std::move(r);
    err = e;
    cv.notify_all();
  }
  value wait() {
    std::unique_lock<std::mutex> lock(mx);
    cv.wait(lock, [&] { return done; });
    if (thrown) std::rethrow_exception(thrown);
    if (err) throw_error(err);
    return std::move(reply);
  }
};

}  // namespace

// --- watch state ---------------------------------------------------------------------------

struct kv_client::watch::state {
  // Set once, read by the I/O thread.
  map params;               // of the watch request, without fetch
  message_handler handler;  // empty: messages go to `queue`

  // Shared with the user's threads.
  std::mutex mx;
  std::condition_variable cv;
  std::deque<value> queue;
  size_t queue_high = 0;  // see kv_client_options::watch_queue_high
  bool held = false;      // its acks are held back: the reader fell behind
  bool ended = false;
  bool stopped = false;
  kv_client::impl* client = nullptr;  // null once the watch left the client

  // The I/O thread's own.
  int64_t seq = -1;         // of the watch request on the current link; -1: none
  bool refetching = false;  // restarted after a reconnect, until its uptodate
  bool had_uptodate = false;
  // What the user was given, to report only real changes after a refetch: path bytes ->
  // hash of the value's bytes (a hash, not the value: a watch of a big subtree should not
  // hold a second copy of it).
  std::unordered_map<std::string, uint64_t> known;
  std::set<std::string> seen;  // during a refetch
};

// --- the client ----------------------------------------------------------------------------

struct kv_client::impl {
  struct job {
    enum class kind { request, stream, watch_start, watch_stop, watch_release } k = kind::request;
    std::string action;
    map params;
    message_handler each;
    reply_handler done;
    std::shared_ptr<watch::state> w;
    clock::time_point deadline;
  };
  struct pending {
    message_handler each;  // streams
    reply_handler done;    // null once answered (a watch after its start)
    bool stream = false;
    std::shared_ptr<watch::state> w;
    clock::time_point deadline = clock::time_point::max();
  };

  kv_client_options opts;

  // Shared with the user's threads, under mx.
  mutable std::mutex mx;
  mutable std::condition_variable cv;  // connected / disconnected changes
  std::deque<job> jobs;
  bool closing = false;
  bool connected = false;
  uint64_t connections = 0;
  value greeting;
  int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  std::thread io;

  // The I/O thread's own.
  std::unique_ptr<client_link> link;
  std::map<int64_t, pending> pendings;
  std::deque<job> waiting;  // requests made while disconnected
  std::vector<std::shared_ptr<watch::state>> watches;
  clock::time_point next_attempt;
  std::chrono::milliseconds backoff;
  std::string last_failure;  // of the last connection attempt, for the requests that wait

  ~impl() {
    if (wake_fd >= 0) close(wake_fd);
  }

  void submit(job j) {
    std::lock_guard<std::mutex> lock(mx);
    jobs.push_back(std::move(j));
    uint64_t one = 1;
    [[maybe_unused]] auto n = write(wake_fd, &one, sizeof one);
  }

  void set_connected(bool up, const value* g = nullptr) {
    std::lock_guard<std::mutex> lock(mx);
    connected = up;
    if (up) {
      ++connections;
      greeting = *g;
    }
    cv.notify_all();
  }

  // Runs a user's handler; what it throws must not end the I/O thread.
  template <class F>
  static void guarded(F&& f) {
    try {
      f();
    } catch (...) {
    }
  }

  // --- watches ---

  void deliver(watch::state& w, value msg) {
    message_handler h;
    {
      std::unique_lock<std::mutex> lock(w.mx);
      if (w.stopped) return;
      if (!w.handler) {
        w.queue.push_back(std::move(msg));
        w.cv.notify_all();
        if (w.held || w.queue.size() < w.queue_high) return;
        w.held = true;  // released by watch::next once the reader caught up
        lock.unlock();
        if (link && w.seq >= 0) link->hold(w.seq, true);
        return;
      }
      h = w.handler;
    }
    guarded([&] { h(msg); });
  }

  void end_watch(const std::shared_ptr<watch::state>& w, value info) {
    map end{{"state", "end"}};
    if (info.is_map())
      if (const value* e = info.find("error")) end.emplace_back("error", *e);
    deliver(*w, value(std::move(end)));
    {
      std::lock_guard<std::mutex> lock(w->mx);
      w->ended = true;
      w->client = nullptr;
      w->cv.notify_all();
    }
    w->seq = -1;
    watches.erase(std::remove(watches.begin(), watches.end(), w), watches.end());
  }

  void start_watch(const std::shared_ptr<watch::state>& w, reply_handler done,
                   clock::time_point deadline) {
    map params = w->params;
    if (w->refetching) map_set(params, value("fetch"), value(true));
    pending p;
    p.done = std::move(done);
    p.w = w;
    p.deadline = p.done ? deadline : clock::time_point::max();
    w->seen.clear();
    int64_t seq;
    try {
      seq = link->send("watch", std::move(params));
    } catch (const std::exception& e) {
      if (p.done) {  // a new watch: refused with the error (a restarted one waits for the next)
        forget_watch(w);
        guarded([&] { p.done(value(), make_error(kv_error::kind::transport, e.what())); });
      }
      throw;
    }
    pendings[seq] = std::move(p);
    w->seq = seq;
    bool held;
    {
      std::lock_guard<std::mutex> lock(w->mx);
      held = w->held;
    }
    if (held) link->hold(seq, true);  // the reader is still behind
  }

  void watch_message(const std::shared_ptr<watch::state>& w, value msg) {
    if (is_state(msg, "uptodate")) {
      if (w->refetching) {
        // Entries the user saw that the refetch did not bring were deleted meanwhile.
        for (auto it = w->known.begin(); it != w->known.end();) {
          if (w->seen.count(it->first)) {
            ++it;
            continue;
          }
          deliver(*w, value(map{{"path", decode(it->first)}}));
          it = w->known.erase(it);
        }
        w->refetching = false;
        w->seen.clear();
        if (w->had_uptodate) return;
      }
      w->had_uptodate = true;
      deliver(*w, strip(std::move(msg)));
      return;
    }
    const value* path = msg.find("path");
    if (!path) {
      deliver(*w, strip(std::move(msg)));
      return;
    }
    std::string key = encode(*path);
    const value* v = msg.find("value");
    std::optional<uint64_t> h;
    if (v) h = std::hash<std::string>{}(encode(*v));
    if (w->refetching) {
      w->seen.insert(key);
      auto it = w->known.find(key);
      if (it != w->known.end() && h && it->second == *h) return;  // unchanged while away
    }
    if (h)
      w->known[key] = *h;
    else
      w->known.erase(key);
    deliver(*w, strip(std::move(msg)));
  }

  // --- the connection ---

  // A watch the user will not hear of again (refused, timed out, stopped).
  void forget_watch(const std::shared_ptr<watch::state>& w) {
    watches.erase(std::remove(watches.begin(), watches.end(), w), watches.end());
    std::lock_guard<std::mutex> lock(w->mx);
    w->client = nullptr;
    w->ended = true;
    w->cv.notify_all();
  }

  // Every pending request fails with `e`. Running watches are not requests: they stay in
  // `watches`, to be started again on the next connection.
  void fail_all(const kv_error& e) {
    auto all = std::move(pendings);
    pendings.clear();
    for (auto& [seq, p] : all) {
      if (p.w && p.done) forget_watch(p.w);
      if (p.done) guarded([&] { p.done(value(), e); });
    }
  }

  void lost(const std::string& why) {
    link.reset();
    set_connected(false);
    fail_all(make_error(kv_error::kind::transport, "connection lost: " + why));
    for (auto& w : watches) w->seq = -1;
    if (!opts.reconnect) {
      auto ws = watches;
      for (auto& w : ws) end_watch(w, value(map{{"error", "connection lost: " + why}}));
      return;
    }
    next_attempt = clock::now() + backoff;
  }

  void try_connect() {
    try {
      link = connect_and_login(opts);
    } catch (const std::exception& e) {
      last_failure = e.what();
      link.reset();
      backoff = std::min(backoff * 2, opts.backoff_max);
      next_attempt = clock::now() + backoff;
      return;
    }
    backoff = opts.backoff_initial;
    set_connected(true, &link->greeting());
    std::deque<job> queued = std::move(waiting);
    waiting.clear();
    try {
      for (auto& w : watches) {
        w->refetching = true;
        start_watch(w, nullptr, clock::time_point::max());
      }
      while (!queued.empty()) {
        job j = std::move(queued.front());
        queued.pop_front();
        run(std::move(j));
      }
    } catch (const std::exception& e) {
      lost(e.what());
      for (auto& j : queued) waiting.push_back(std::move(j));  // for the next connection
    }
  }

  // Sends a job's request (throws client_error when the link fails).
  void run(job j) {
    if (j.k == job::kind::watch_stop) {
      // Forgotten first: a send that fails must not leave it to be started again.
      watches.erase(std::remove(watches.begin(), watches.end(), j.w), watches.end());
      {
        std::lock_guard<std::mutex> lock(j.w->mx);
        j.w->client = nullptr;
      }
      if (j.w->seq >= 0 && link) {
        pendings.erase(j.w->seq);
        link->send("stop", {{"task", j.w->seq}});
      }
      return;
    }
    if (j.k == job::kind::watch_release) {
      if (j.w->seq >= 0 && link) link->hold(j.w->seq, false);
      return;
    }
    if (!link) {
      if (opts.reconnect) {
        waiting.push_back(std::move(j));
        return;
      }
      guarded([&] {
        j.done(value(), make_error(kv_error::kind::transport, "not connected (connection lost)"));
      });
      return;
    }
    if (j.k == job::kind::watch_start) {
      watches.push_back(j.w);
      start_watch(j.w, std::move(j.done), j.deadline);  // registered before it sends
      return;
    }
    int64_t seq;
    try {
      seq = link->send(j.action, std::move(j.params));
    } catch (const std::exception& e) {
      guarded([&] { j.done(value(), make_error(kv_error::kind::transport, e.what())); });
      throw;
    }
    pending p;
    p.each = std::move(j.each);
    p.done = std::move(j.done);
    p.stream = j.k == job::kind::stream;
    p.deadline = j.deadline;
    pendings[seq] = std::move(p);
  }

  void dispatch(value msg) {
    if (!msg.is_map()) return;
    int64_t seq = int_field(msg, "seq", -1);
    if (seq < 0) {
      // The server's error about the connection itself; it closes it next.
      if (const value* e = msg.find("error")) {
        fail_all(make_error(kv_error::kind::server, error_string(*e)));
        for (auto& w : watches) w->seq = -1;
      }
      return;
    }
    auto it = pendings.find(seq);
    if (it == pendings.end()) return;  // late: timed out, stopped
    pending& p = it->second;
    const value* err = msg.find("error");
    if (p.w) {
      std::shared_ptr<watch::state> w = p.w;
      if (err && p.done) {  // refused
        auto done = std::move(p.done);
        pendings.erase(it);
        forget_watch(w);
        guarded([&] { done(value(), make_error(kv_error::kind::server, error_string(*err))); });
        return;
      }
      if (is_state(msg, "start")) {
        if (p.done) {
          auto done = std::move(p.done);
          p.deadline = clock::time_point::max();
          guarded([&] { done(value(map{}), kv_error{}); });
        }
        return;
      }
      if (err || is_state(msg, "end")) {
        pendings.erase(it);
        end_watch(w, err ? value(map{{"error", *err}}) : value(map{}));
        return;
      }
      watch_message(w, std::move(msg));
      return;
    }
    if (err) {
      auto done = std::move(p.done);
      pendings.erase(it);
      guarded([&] { done(value(), make_error(kv_error::kind::server, error_string(*err))); });
      return;
    }
    if (p.stream) {
      if (is_state(msg, "start")) return;
      if (is_state(msg, "end")) {
        auto done = std::move(p.done);
        pendings.erase(it);
        guarded([&] { done(value(map{}), kv_error{}); });
        return;
      }
      guarded([&] { p.each(strip(std::move(msg))); });
      return;
    }
    auto done = std::move(p.done);
    pendings.erase(it);
    guarded([&] { done(strip(std::move(msg)), kv_error{}); });
  }

  void expire(clock::time_point now) {
    for (auto it = pendings.begin(); it != pendings.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      auto done = std::move(it->second.done);
      auto w = it->second.w;
      it = pendings.erase(it);
      if (w) forget_watch(w);
      kv_error e =
          make_error(kv_error::kind::timeout, "no reply from the server within " +
                                                  std::to_string(opts.timeout.count()) + " ms");
      if (done) guarded([&] { done(value(), e); });
    }
    for (auto it = waiting.begin(); it != waiting.end();) {
      if (it->deadline > now) {
        ++it;
        continue;
      }
      job j = std::move(*it);
      it = waiting.erase(it);
      kv_error e =
          make_error(kv_error::kind::timeout,
                     "not connected within " + std::to_string(opts.timeout.count()) +
                         " ms (reconnecting; last attempt: " +
                         (last_failure.empty() ? std::string("none yet") : last_failure) + ")");
      if (j.done) guarded([&] { j.done(value(), e); });
    }
  }

  clock::time_point next_wakeup() const {
    auto t = clock::now() + std::chrono::seconds(1);
    for (const auto& [seq, p] : pendings) t = std::min(t, p.deadline);
    for (const auto& j : waiting) t = std::min(t, j.deadline);
    if (!link && opts.reconnect) t = std::min(t, next_attempt);
    return t;
  }

  void loop() {
    for (;;) {
      std::deque<job> todo;
      {
        std::lock_guard<std::mutex> lock(mx);
        todo.swap(jobs);
        if (closing) break;
      }
      for (auto& j : todo) {
        try {
          run(std::move(j));
        } catch (const std::exception& e) {
          lost(e.what());  // the rest wait for the next connection (or fail without one)
        }
      }
      try {
        if (!link && opts.reconnect && clock::now() >= next_attempt) try_connect();
        if (link) {
          while (std::optional<value> msg = link->poll_message()) dispatch(std::move(*msg));
          link->flush();
        }
      } catch (const std::exception& e) {  // client_error; anything else ends the link too
        lost(e.what());
      }
      auto now = clock::now();
      expire(now);
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_wakeup() - now);
      pollfd fds[2] = {{wake_fd, POLLIN, 0}, {link ? link->wait_fd() : -1, POLLIN, 0}};
      poll(fds, 2, static_cast<int>(std::max<int64_t>(wait.count(), 0)) + 1);
      if (fds[0].revents & POLLIN) {
        uint64_t n;
        [[maybe_unused]] auto r = read(wake_fd, &n, sizeof n);
      }
    }
    // Closing: everything still open ends.
    kv_error e = make_error(kv_error::kind::transport, "the client is closed");
    std::deque<job> left;
    {
      std::lock_guard<std::mutex> lock(mx);
      left.swap(jobs);
    }
    for (auto& j : left)
      if (j.done) guarded([&] { j.done(value(), e); });
    for (auto& j : waiting)
      if (j.done) guarded([&] { j.done(value(), e); });
    waiting.clear();
    fail_all(e);
    auto ws = watches;
    for (auto& w : ws) end_watch(w, value(map{{"error", e.text}}));
    link.reset();
    set_connected(false);
  }
};

kv_client::kv_client(kv_client_options opts) : impl_(std::make_unique<impl>()) {
  impl& d = *impl_;
  if (d.wake_fd < 0) throw client_error("cannot create an eventfd for the client");
  d.opts = std::move(opts);
  d.backoff = d.opts.backoff_initial;
  // The I/O thread makes the first connection too: a link is made and dropped on one thread
  // (a CAF actor system created on one thread and destroyed on another did not shut down).
  std::promise<void> first;
  auto connected = first.get_future();
  d.io = std::thread([&d, &first] {
    try {
      d.link = connect_and_login(d.opts);
    } catch (...) {
      first.set_exception(std::current_exception());
      return;
    }
    d.set_connected(true, &d.link->greeting());
    first.set_value();
    d.loop();
  });
  try {
    connected.get();
  } catch (...) {
    d.io.join();
    throw;
  }
}

kv_client::~kv_client() {
  {
    std::lock_guard<std::mutex> lock(impl_->mx);
    impl_->closing = true;
    uint64_t one = 1;
    [[maybe_unused]] auto n = write(impl_->wake_fd, &one, sizeof one);
  }
  impl_->io.join();
}

const kv_client_options& kv_client::options() const {
  return impl_->opts;
}

value kv_client::greeting() const {
  std::lock_guard<std::mutex> lock(impl_->mx);
  return impl_->greeting;
}

bool kv_client::connected() const {
  std::lock_guard<std::mutex> lock(impl_->mx);
  return impl_->connected;
}

uint64_t kv_client::connections() const {
  std::lock_guard<std::mutex> lock(impl_->mx);
  return impl_->connections;
}

bool kv_client::wait_connected(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(impl_->mx);
  return impl_->cv.wait_for(lock, timeout, [&] { return impl_->connected; });
}

bool kv_client::wait_disconnected(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(impl_->mx);
  return impl_->cv.wait_for(lock, timeout, [&] { return !impl_->connected; });
}

// --- asynchronous --------------------------------------------------------------------------

void kv_client::request_async(const std::string& action, map params, reply_handler done) {
  impl::job j;
  j.action = action;
  j.params = std::move(params);
  j.done = std::move(done);
  j.deadline = clock::now() + impl_->opts.timeout;
  impl_->submit(std::move(j));
}

void kv_client::stream_async(const std::string& action, map params, message_handler each,
                             reply_handler done) {
  impl::job j;
  j.k = impl::job::kind::stream;
  j.action = action;
  j.params = std::move(params);
  j.each = std::move(each);
  j.done = std::move(done);
  j.deadline = clock::now() + impl_->opts.timeout;
  impl_->submit(std::move(j));
}

void kv_client::get_async(const value& path, map opts, reply_handler done) {
  request_async("get_value", with_options({{"path", path}, {"nchain", 0}}, std::move(opts)),
                std::move(done));
}

void kv_client::set_async(const value& path, const value& v, map opts, reply_handler done) {
  request_async("set_value",
                with_options({{"path", path}, {"value", v}, {"nchain", 0}}, std::move(opts)),
                std::move(done));
}

void kv_client::remove_async(const value& path, map opts, reply_handler done) {
  request_async("delete_value", with_options({{"path", path}, {"nchain", 0}}, std::move(opts)),
                std::move(done));
}

// --- blocking ------------------------------------------------------------------------------

namespace {

void check_not_io_thread(const std::thread& io) {
  if (std::this_thread::get_id() == io.get_id())
    throw std::logic_error(
        "a blocking kv_client call from one of its own handlers would wait "
        "for itself; use the asynchronous call");
}

}  // namespace

value kv_client::request(const std::string& action, map params) {
  check_not_io_thread(impl_->io);
  auto w = std::make_shared<waiter>();
  request_async(action, std::move(params),
                [w](value r, const kv_error& e) { w->finish(std::move(r), e); });
  return w->wait();
}

void kv_client::stream(const std::string& action, map params,
                       const std::function<bool(const value&)>& each) {
  check_not_io_thread(impl_->io);
  auto w = std::make_shared<waiter>();
  // `each` runs on the I/O thread while this thread waits; after it returned false (or threw)
  // the rest of the stream is dropped and the caller goes on at once.
  auto stopped = std::make_shared<bool>(false);
  stream_async(
      action, std::move(params),
      [w, stopped, &each](const value& msg) {
        if (*stopped) return;
        bool more = false;
        try {
          more = each(msg);
        } catch (...) {
          std::lock_guard<std::mutex> lock(w->mx);
          w->thrown = std::current_exception();
        }
        if (!more) {
          *stopped = true;
          w->finish(value(map{}), kv_error{});
        }
      },
      [w](value r, const kv_error& e) { w->finish(std::move(r), e); });
  w->wait();
}

value kv_client::get(const value& path, map opts) {
  return request("get_value", with_options({{"path", path}, {"nchain", 0}}, std::move(opts)));
}

value kv_client::set(const value& path, const value& v, map opts) {
  return request("set_value",
                 with_options({{"path", path}, {"value", v}, {"nchain", 0}}, std::move(opts)));
}

value kv_client::remove(const value& path, map opts) {
  return request("delete_value", with_options({{"path", path}, {"nchain", 0}}, std::move(opts)));
}

std::vector<value> kv_client::remove_tree(const value& path, map opts) {
  // Without nchain the node answers with one {changed: N}; with it, a stream of records.
  map params = with_options({{"path", path}, {"nchain", 0}}, std::move(opts));
  if (int_field(value(params), "nchain", 0) == 0) return {request("delete_tree", params)};
  std::vector<value> out;
  stream("delete_tree", std::move(params), [&](const value& m) {
    out.push_back(m);
    return true;
  });
  return out;
}

std::vector<value> kv_client::get_tree(const value& path, map opts) {
  std::vector<value> out;
  stream("get_tree",
         with_options({{"path", path}, {"long_path", true}, {"nchain", 0}}, std::move(opts)),
         [&](const value& m) {
           out.push_back(m);
           return true;
         });
  return out;
}

value kv_client::enumerate(const value& path, map opts) {
  // As the original client's `list`: `empty` defaults to the opposite of `with_data`.
  bool with_data = false;
  if (const value* w = map_find(opts, "with_data"); w && w->is_bool()) with_data = w->as_bool();
  return request("enum",
                 with_options({{"path", path}, {"with_data", with_data}, {"empty", !with_data}},
                              std::move(opts)));
}

value kv_client::get_state(map opts) {
  return request("get_state", std::move(opts));
}

// --- watches -------------------------------------------------------------------------------

kv_client::watch::watch(std::shared_ptr<state> s) : state_(std::move(s)) {}

kv_client::watch::~watch() {
  stop();
}

std::optional<value> kv_client::watch::next(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(state_->mx);
  state_->cv.wait_for(lock, timeout, [&] { return !state_->queue.empty() || state_->ended; });
  if (state_->queue.empty()) return std::nullopt;
  value msg = std::move(state_->queue.front());
  state_->queue.pop_front();
  if (state_->held && state_->queue.size() <= state_->queue_high / 2 && state_->client &&
      !state_->stopped) {
    state_->held = false;
    kv_client::impl::job j;
    j.k = kv_client::impl::job::kind::watch_release;
    j.w = state_;
    state_->client->submit(std::move(j));
  }
  return msg;
}

size_t kv_client::watch::queued() const {
  std::lock_guard<std::mutex> lock(state_->mx);
  return state_->queue.size();
}

bool kv_client::watch::ended() const {
  std::lock_guard<std::mutex> lock(state_->mx);
  return state_->ended && state_->queue.empty();
}

void kv_client::watch::stop() {
  std::lock_guard<std::mutex> lock(state_->mx);
  if (state_->stopped) return;
  state_->stopped = true;
  bool was_running = state_->client && !state_->ended;
  state_->ended = true;  // for the user: next() gives what came before, then nothing
  state_->cv.notify_all();
  if (!was_running) return;
  kv_client::impl::job j;
  j.k = kv_client::impl::job::kind::watch_stop;
  j.w = state_;
  state_->client->submit(std::move(j));
}

std::unique_ptr<kv_client::watch> kv_client::watch_tree(const value& path, map opts,
                                                        message_handler on_message) {
  check_not_io_thread(impl_->io);
  auto s = std::make_shared<watch::state>();
  s->params = with_options({{"path", path}, {"iter", true}, {"long_path", true}, {"wseq", 1}},
                           std::move(opts));
  s->handler = std::move(on_message);
  s->queue_high = std::max<size_t>(impl_->opts.watch_queue_high, 2);
  s->client = impl_.get();
  auto w = std::make_shared<waiter>();
  impl::job j;
  j.k = impl::job::kind::watch_start;
  j.w = s;
  j.done = [w](value r, const kv_error& e) { w->finish(std::move(r), e); };
  j.deadline = clock::now() + impl_->opts.timeout;
  impl_->submit(std::move(j));
  w->wait();
  return std::unique_ptr<watch>(new watch(std::move(s)));
}

}  // namespace moatkv
