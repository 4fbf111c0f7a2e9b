// Messages between the node's actors (CAF 0.17 atoms) and the C++ types they carry.
//
//   session  -> tree_store : (hello_atom, conn, session, address)  register; answers
//                            (greeting_atom, value); address: the client's IP (login throttle)
//   session  -> tree_store : (request_atom, conn, request_batch) the client requests decoded
//                            from one read, in order
//   tree_store -> session  : (reply_atom, reply_batch)          their replies (and those of
//                            earlier requests that were held or deferred), in order
//   tree_store -> session  : (event_atom, int64 seq, value msg)  a message of an open watch stream
//   session  -> tree_store : (cancel_atom, conn, int64 seq)     the client stopped a watch
//   session  -> tree_store : (closed_atom, conn)                the connection is gone
//   gossip   -> tree_store : (replication_backlog_atom, bool high)  the broker lags behind our
//                            updates (true) or caught up (false); see tree_store_actor.hpp
//   anyone   -> tree_store : (store_call_atom, store_call)      run a function on the kv_store
//                            inside the single writer; the reply is the function's value
//
// `store_call` is how the gossip actor and the persister use kv_store functions without one
// atom per function: the closure runs in the tree_store actor (so the one-writer rule holds)
// and must capture only values, never references to the caller's state.
//
// `value` and `action_result` only travel between actors of one process (the remote interface
// of issue 7 gets its own inspectable types), so they are allowed as unsafe message types.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include <functional>
#include <utility>
#include <vector>

#include "actors/tree_store/actions.hpp"
#include "messages/value.hpp"

namespace moatkv {

using hello_atom = caf::atom_constant<caf::atom("kv_hello")>;
using greeting_atom = caf::atom_constant<caf::atom("kv_greet")>;
using request_atom = caf::atom_constant<caf::atom("kv_req")>;
using reply_atom = caf::atom_constant<caf::atom("kv_reply")>;
using event_atom = caf::atom_constant<caf::atom("kv_event")>;
using cancel_atom = caf::atom_constant<caf::atom("kv_cancel")>;
using closed_atom = caf::atom_constant<caf::atom("kv_closed")>;
using store_call_atom = caf::atom_constant<caf::atom("kv_call")>;
// -> tree_store: how many client sessions are registered (answered with an int64)
using session_count_atom = caf::atom_constant<caf::atom("kv_nsess")>;
using replication_backlog_atom = caf::atom_constant<caf::atom("kv_backlog")>;
using ready_atom = caf::atom_constant<caf::atom("kv_ready")>;     // -> gossip: answered when ready
using fetched_atom = caf::atom_constant<caf::atom("g_fetched")>;  // peer fetch -> gossip: done
// Client pass-through to the backend (actions msg_send / msg_monitor), session -> gossip:
//   (msg_send_atom, topic, payload)                  publish; topic elements joined with '/'
//   (msg_monitor_atom, filter, session, seq, raw)    forward matching messages as stream events
//   (msg_unmonitor_atom, session, seq)               stop forwarding
using msg_send_atom = caf::atom_constant<caf::atom("kv_msgsend")>;
using msg_monitor_atom = caf::atom_constant<caf::atom("kv_msgmon")>;
using msg_unmonitor_atom = caf::atom_constant<caf::atom("kv_msgunm")>;

// One message per read and per reply burst, not per request: measured (issue 6), the
// per-message cost of CAF was a tenth of a pipelined get.
struct request_batch {
  std::vector<value> requests;
};
struct reply_batch {
  std::vector<std::pair<int64_t, action_result>> replies;  // (seq, result)
};

struct store_call {
  std::function<value(kv_store&)> fn;
};

// tree_store -> crypto worker: (deferred_work) answered with the function's value. Slow crypto
// of logins (action_result::deferred_step) runs there, not in the single writer.
struct deferred_work {
  std::function<value()> fn;
};
// tree_store -> itself: a throttled `auth` request whose slot has come (conn, request).
using login_slot_atom = caf::atom_constant<caf::atom("kv_authslt")>;

}  // namespace moatkv

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(moatkv::value)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(moatkv::action_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(moatkv::store_call)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(moatkv::request_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(moatkv::reply_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(moatkv::deferred_work)
