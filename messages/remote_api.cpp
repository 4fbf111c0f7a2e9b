#include "messages/remote_api.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>

#include "messages/msgpack_codec.hpp"

namespace moatkv {

packed_value pack(const value& v) {
  return packed_value{encode(v)};
}

value unpack(const packed_value& p) {
  return decode(p.msgpack);
}

void add_remote_api_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<packed_value>("moatkv.packed_value");
}

caf::error make_remote_error(std::string text) {
  return caf::error(1, remote_error_category, caf::make_message(std::move(text)));
}

std::string remote_error_text(const caf::error& err) {
  if (!err || err.category() != remote_error_category) return {};
  const caf::message& ctx = err.context();
  if (ctx.match_elements<std::string>()) return ctx.get_as<std::string>(0);
  return "remote error";
}

}  // namespace moatkv
