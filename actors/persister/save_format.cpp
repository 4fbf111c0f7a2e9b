#include "actors/persister/save_format.hpp"

#include <vector>

#include "actors/tree_store/actions.hpp"
#include "actors/tree_store/tree.hpp"
#include "messages/msgpack_codec.hpp"

namespace moatkv {

value state_record(kv_store& store) {
  // The get_state reply itself, so the record has exactly the keys and order of the original.
  value req(map{{value("action"), value("get_state")},
                {value("nodes"), value(true)},
                {value("known"), value(true)},
                {value("deleted"), value(true)}});
  action_result r = store.handle(0, req);
  return r.messages.empty() ? value(map{}) : std::move(r.messages.front());
}

namespace {

// Pre-order walk in child insertion order (the original's `Entry.walk`), with an explicit
// stack (a path can be deeper than the call stack would like). `fn(entry, path)` gets the
// entry's path, kept up to date incrementally instead of rebuilt for every entry.
template <typename Fn>
void walk(const entry& top, Fn&& fn) {
  std::vector<std::pair<const entry*, size_t>> stack{{&top, 0}};
  array path;
  while (!stack.empty()) {
    auto [e, depth] = stack.back();
    stack.pop_back();
    if (depth > 0) {
      path.resize(depth - 1);
      path.push_back(e->name());
    }
    fn(*e, path);
    const auto& kids = e->children();
    for (auto it = kids.rbegin(); it != kids.rend(); ++it) stack.emplace_back(it->get(), depth + 1);
  }
}

void encode_key(std::string& out, const char* key) {
  encode(out, value(key));
}

// Entry record {value, chain, tock, path, depth}, encoded from the entry's parts without
// copying its value into a record first (a save of a million entries is dominated by copies
// otherwise). Same bytes as encoding tree::entry_record after depth compression.
void encode_entry_record(std::string& out, const entry& e, const array& path,
                         path_shortener& shortener) {
  value short_path;
  int64_t depth = 0;
  shortener.shorten(path, short_path, depth);  // cannot fail: the prefix is empty
  bool with_chain = !e.event_chain().empty();
  encode_map_header(out, with_chain ? 5 : 4);
  encode_key(out, "value");
  encode(out, e.data());
  if (with_chain) {
    encode_key(out, "chain");
    encode(out, e.event_chain().serialize(-1));
  }
  encode_key(out, "tock");
  encode(out, value(e.tock()));
  encode_key(out, "path");
  encode(out, short_path);
  encode_key(out, "depth");
  encode(out, value(depth));
}

// The records of a save appended to `out`; `record_done` runs after each one.
template <typename Done>
size_t save_records(kv_store& store, const save_options& opts, std::string& out,
                    Done&& record_done) {
  tree& t = store.data();
  encode(out, state_record(store));
  record_done();
  path_shortener shortener;
  size_t entries = 0;
  // The walk from the root reaches the meta tree too (the root's child None, its first
  // child): it is left out unless `full`.
  walk(t.root(), [&](const entry& e, const array& path) {
    if (!e.has_data()) return;
    if (e.is_meta() && !opts.full) return;
    encode_entry_record(out, e, path, shortener);
    record_done();
    ++entries;
  });
  if (opts.tombstones) {
    walk(t.root(), [&](const entry& e, const array&) {
      if (e.has_data() || e.event_chain().empty()) return;
      if (e.is_meta() && !opts.full) return;
      path_shortener own;  // depth 0 with the full path: see the header
      encode(out, update_record(e, own));
      record_done();
    });
  }
  return entries;
}

}  // namespace

size_t write_save(kv_store& store, const save_options& opts,
                  const std::function<void(std::string_view record)>& sink) {
  std::string buf;
  return save_records(store, opts, buf, [&] {
    sink(buf);
    buf.clear();
  });
}

std::string encode_save(kv_store& store, const save_options& opts, size_t* entries) {
  std::string out;
  size_t n = save_records(store, opts, out, [] {});
  if (entries != nullptr) *entries = n;
  return out;
}

value update_record(const entry& e, path_shortener& shortener) {
  value rec = tree::update_message(e, -1);
  std::string error;
  shortener.apply(rec, error);  // cannot fail: the prefix is empty
  return rec;
}

void record_loader::start_file() {
  longener_ = path_longener();
}

bool record_loader::apply(value record, std::string& error) {
  ++stats_.records;
  if (!record.is_map()) {
    error = "a record must be a map";
    ++stats_.skipped;
    return false;
  }
  bool is_update = record.find("value") != nullptr || record.find("path") != nullptr ||
                   (record.find("node") != nullptr && record.find("tick") != nullptr);
  if (is_update) {
    value& rec = record;
    // Always expanded, deletions included, so later records' depths refer to the right path.
    if (!longener_.apply(rec, error)) {
      ++stats_.skipped;
      return false;
    }
    if (rec.find("tock") == nullptr)
      rec.as_map().emplace_back(value("tock"), value(store_.clock().next()));
    update_result r = store_.receive_update(std::move(rec));
    if (r.status == update_status::malformed) {
      error = r.error;
      ++stats_.skipped;
      return false;
    }
    ++stats_.updates;
    if (r.accepted()) ++stats_.accepted;
    return true;
  }
  const value* info = record.find("info");
  const value& state = info != nullptr ? *info : record;
  if (info == nullptr && record.find("nodes") == nullptr && record.find("known") == nullptr &&
      record.find("deleted") == nullptr && record.find("tock") == nullptr) {
    error = "not a state, entry or update record";
    ++stats_.skipped;
    return false;
  }
  info_result r = store_.process_state(state);
  ++stats_.state_records;
  if (!r.errors.empty()) {
    error = r.errors.front();
    return false;
  }
  return true;
}

}  // namespace moatkv
