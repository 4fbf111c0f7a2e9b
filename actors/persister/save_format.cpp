#include "actors/persister/save_format.hpp"

#include <cstdint>
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

}  // namespace

save_writer::save_writer(kv_store& store, const save_options& opts) : store_(store), opts_(opts) {
  encode(out_, state_record(store_));
  ++records_;
  stack_.emplace_back(&store_.data().root(), 0);
}

// A pre-order walk in child insertion order (the original's `Entry.walk`) with an explicit
// stack, run once for the entries and once more for the tombstones; the path is kept up to
// date incrementally instead of being rebuilt for every entry.
bool save_writer::step(size_t max_entries) {
  size_t visited = 0;
  while (visited < max_entries) {
    if (stack_.empty()) {
      if (tombstone_pass_ || !opts_.tombstones) return true;
      tombstone_pass_ = true;
      stack_.emplace_back(&store_.data().root(), 0);
      path_.clear();
    }
    auto [e, depth] = stack_.back();
    stack_.pop_back();
    ++visited;
    if (depth > 0) {
      path_.resize(depth - 1);
      path_.push_back(e->name());
    }
    const auto& kids = e->children();
    for (auto it = kids.rbegin(); it != kids.rend(); ++it)
      stack_.emplace_back(it->get(), depth + 1);
    // The walk from the root reaches the meta tree too (the root's child None): it is left
    // out unless `full`.
    if (e->is_meta() && !opts_.full) continue;
    if (!tombstone_pass_) {
      if (!e->has_data()) continue;
      encode_entry_record(out_, *e, path_, shortener_);
      ++entries_;
    } else {
      if (e->has_data() || e->event_chain().empty()) continue;
      path_shortener own;  // depth 0 with the full path: see the header
      encode(out_, update_record(*e, own));
    }
    ++records_;
  }
  return stack_.empty() && (tombstone_pass_ || !opts_.tombstones);
}

size_t write_save(kv_store& store, const save_options& opts,
                  const std::function<void(std::string_view record)>& sink) {
  // Record by record: each step visits one entry, and the buffer is handed over whenever it
  // holds a record.
  save_writer w(store, opts);
  for (bool done = false; !done;) {
    done = w.step(1);
    if (!w.buffer().empty()) {
      sink(w.buffer());
      w.buffer().clear();
    }
  }
  return w.entries();
}

std::string encode_save(kv_store& store, const save_options& opts, size_t* entries) {
  save_writer w(store, opts);
  while (!w.step(SIZE_MAX)) {
  }
  if (entries != nullptr) *entries = w.entries();
  return std::move(w.buffer());
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
