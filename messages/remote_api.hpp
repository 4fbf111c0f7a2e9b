// The remote actor interface of a node (issue 7): what a C++ program attached through the CAF
// middleman may send, and what it gets back.
//
//   client                         node: remote_api (published)      node: remote session
//     │ (rk_attach)  ─────────────────▶ │ spawns one session per attach ──▶ │ registers with
//     │ ◀──── (session handle, greeting) ─────────────────────────────────── │ the tree_store
//     │ (rk_get, path, opts) … ───────────────────────────────────────────▶ │ as a connection
//     │ ◀─────────────────────────────────────────────── packed reply / error │
//     │ (rk_watch, path, opts) ───────────────────────────────────────────▶ │
//     │ ◀── int64 watch id, then (rk_wevent, id, msg)…, finally (rk_wend, id, info)
//
// The session is the capability: whoever holds its handle speaks as its connection (and its
// login). It lives until the actor that attached goes down (or the node stops), like a client
// connection of the msgpack protocol lives until the socket closes.
//
// Values travel as msgpack bytes (`packed_value`), encoded by messages/msgpack_codec.hpp:
// `value` itself stays a plain C++ type that CAF cannot serialise. Every request carries an
// options map with the msgpack protocol's keys (nchain, depth, min_depth, max_depth, empty,
// fetch, chain, prev, idem, with_data, …); the session builds the same request map a msgpack
// client sends, so ACLs, logins, watches and errors all come from the same code path.
//
// Replies: a single reply is its map ({value, chain, tock}, {changed, tock}, …); a streamed one
// (get_tree, delete_tree) is an array of its messages, paths expanded to full paths (relative
// to the connection's root, as every request path is). A request the node refuses fails with a
// caf::error of category `remote_error_category`, whose context holds the error text
// ("NoAuthError()", "ACLError(…)", …).
//
// Both sides call add_remote_api_types on their actor_system_config: a typed remote_actor
// fails with unexpected_actor_messaging_interface unless both registered the same names.
#pragma once

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <string>

#include "messages/value.hpp"

namespace moatkv {

/// One msgpack-encoded value.
struct packed_value {
  std::string msgpack;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, packed_value& x) {
  return f(caf::meta::type_name("moatkv.packed_value"), x.msgpack);
}

packed_value pack(const value& v);
/// Throws decode_error on bytes that are not one msgpack value.
value unpack(const packed_value& p);

// The requests (client -> session; attach: client -> remote_api).
using rk_attach_atom = caf::atom_constant<caf::atom("rk_attach")>;
using rk_login_atom = caf::atom_constant<caf::atom("rk_login")>;  // action `auth`
using rk_dh_atom = caf::atom_constant<caf::atom("rk_dh")>;        // action `diffie_hellman`
using rk_get_atom = caf::atom_constant<caf::atom("rk_get")>;
using rk_set_atom = caf::atom_constant<caf::atom("rk_set")>;
using rk_del_atom = caf::atom_constant<caf::atom("rk_del")>;
using rk_deltree_atom = caf::atom_constant<caf::atom("rk_deltree")>;
using rk_tree_atom = caf::atom_constant<caf::atom("rk_tree")>;
using rk_enum_atom = caf::atom_constant<caf::atom("rk_enum")>;
using rk_state_atom = caf::atom_constant<caf::atom("rk_state")>;
using rk_watch_atom = caf::atom_constant<caf::atom("rk_watch")>;
using rk_unwatch_atom = caf::atom_constant<caf::atom("rk_unwatch")>;
// The notifications (session -> the actor that asked for the watch):
//   (rk_wevent_atom, int64 watch, packed msg)   one per message of the watch, in order: the
//                                               fetched records, {state: uptodate}, changes
//   (rk_wend_atom, int64 watch, packed info)    the last one: {} after unwatch, or {error: …}
using rk_wevent_atom = caf::atom_constant<caf::atom("rk_wevent")>;
using rk_wend_atom = caf::atom_constant<caf::atom("rk_wend")>;

/// The error category of refusals by the node (the context holds the text as a string).
inline constexpr caf::atom_value remote_error_category = caf::atom("moatkv");

/// A connection of the node, as a typed interface. The session is spawned dynamically typed
/// (it also takes the tree_store's messages); clients actor_cast its handle to this type.
using remote_session_actor = caf::typed_actor<
    // auth request fields (typ, ident, data / password, root) -> {}
    caf::replies_to<rk_login_atom, packed_value>::with<packed_value>,
    // {pubkey, length} -> {pubkey}
    caf::replies_to<rk_dh_atom, packed_value>::with<packed_value>,
    // (path, options) -> reply
    caf::replies_to<rk_get_atom, packed_value, packed_value>::with<packed_value>,
    // (path, value, options) -> reply
    caf::replies_to<rk_set_atom, packed_value, packed_value, packed_value>::with<packed_value>,
    caf::replies_to<rk_del_atom, packed_value, packed_value>::with<packed_value>,
    caf::replies_to<rk_deltree_atom, packed_value, packed_value>::with<packed_value>,
    caf::replies_to<rk_tree_atom, packed_value, packed_value>::with<packed_value>,
    caf::replies_to<rk_enum_atom, packed_value, packed_value>::with<packed_value>,
    // (options) -> reply
    caf::replies_to<rk_state_atom, packed_value>::with<packed_value>,
    // (path, options) -> watch id; the notifications go to the requester
    caf::replies_to<rk_watch_atom, packed_value, packed_value>::with<int64_t>,
    // watch id -> whether it was running
    caf::replies_to<rk_unwatch_atom, int64_t>::with<bool>>;

/// The published actor: attach gives a new session (as caf::actor: a typed handle would need
/// its own registration) and the node's greeting ({node, tick, qlen, auth: [methods]}).
using remote_api_actor =
    caf::typed_actor<caf::replies_to<rk_attach_atom>::with<caf::actor, packed_value>>;

/// Registers the message types of this interface; both server and client call it.
void add_remote_api_types(caf::actor_system_config& cfg);

/// A refusal by the node (see the file comment).
caf::error make_remote_error(std::string text);
/// The text of a refusal; empty if `err` is not one (transport errors, timeouts).
std::string remote_error_text(const caf::error& err);

}  // namespace moatkv
