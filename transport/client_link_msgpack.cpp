// The msgpack transport of the client library: a client_connection (the MoaT-KV client
// protocol, §7) read without blocking by the kv_client's I/O thread.
#include <map>

#include "actors/tree_store/depth_compression.hpp"
#include "transport/client_connection.hpp"
#include "transport/client_link.hpp"
#include "transport/kv_client.hpp"

namespace moatkv {

namespace {

// The requests whose records carry depth-compressed paths (§7.5).
bool compresses_paths(const std::string& action) {
  return action == "get_tree" || action == "watch" || action == "delete_tree";
}

class msgpack_link final : public client_link {
 public:
  explicit msgpack_link(const kv_client_options& o)
      : conn_(o.host, o.port, client_options{o.timeout, o.tls}) {
    conn_.cork();  // requests collect until flush: one write per burst
  }

  const value& greeting() const override { return conn_.greeting(); }
  int wait_fd() const override { return conn_.fd(); }

  int64_t send(const std::string& action, map params) override {
    array prefix;
    bool expand = compresses_paths(action);
    if (expand)
      if (const value* p = map_find(params, "path"); p && p->is_sequence()) prefix = p->elements();
    int64_t seq = conn_.send_request(action, std::move(params));
    if (expand) longeners_.emplace(seq, path_longener(std::move(prefix)));
    return seq;
  }

  void flush() override {
    conn_.uncork();
    conn_.cork();
  }

  void hold(int64_t seq, bool hold) override { conn_.hold_acks(seq, hold); }

  std::optional<value> poll_message() override {
    std::optional<value> msg = conn_.poll_message();
    if (!msg && conn_.receive_available()) msg = conn_.poll_message();
    if (!msg || !msg->is_map()) return msg;
    int64_t seq = int_field(*msg, "seq", -1);
    auto it = longeners_.find(seq);
    if (it == longeners_.end()) return msg;
    const value* state = msg->find("state");
    if (msg->find("error") || (state && state->is_str() && state->as_str() == "end")) {
      longeners_.erase(it);
    } else if (msg->find("depth")) {
      std::string error;
      if (!it->second.apply(*msg, error))
        throw client_error("the server sent an unusable path: " + error);
    }
    return msg;
  }

 private:
  client_connection conn_;
  std::map<int64_t, path_longener> longeners_;  // by seq, for the streams that compress paths
};

}  // namespace

std::unique_ptr<client_link> open_msgpack_link(const kv_client_options& opts) {
  return std::make_unique<msgpack_link>(opts);
}

}  // namespace moatkv
