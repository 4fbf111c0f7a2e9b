#include "actors/persister/file_loader.hpp"

#include "actors/persister/record_file.hpp"

namespace moatkv {

bool load_file(record_loader& loader, const std::string& path, const file_load_options& opts) {
  using clock = std::chrono::steady_clock;
  record_file_reader reader(path);
  loader.start_file();
  auto warn = [&](const std::string& w) {
    if (opts.warn) opts.warn(w);
  };
  load_progress prog;
  prog.file = path;
  prog.file_bytes = reader.size();
  auto start = clock::now();
  auto next_report = start + opts.progress_interval;
  auto report = [&](bool done) {
    if (!opts.progress) return;
    prog.bytes = done ? reader.size() : reader.offset();
    prog.seconds = std::chrono::duration<double>(clock::now() - start).count();
    prog.done = done;
    opts.progress(prog);
  };
  bool whole = true;
  value rec;
  std::string error;
  for (;;) {
    auto st = reader.next(rec);
    if (st == record_file_reader::status::end) break;
    if (st == record_file_reader::status::truncated) {
      warn(path + ": the log ends in an incomplete record at offset " +
           std::to_string(reader.offset()) + " (" + reader.error() +
           "); loaded everything before it");
      whole = false;
      break;
    }
    if (st == record_file_reader::status::damaged) {
      std::string what = path + ": damaged record at offset " + std::to_string(reader.offset()) +
                         ": " + reader.error();
      if (!opts.skip_damaged)
        throw load_error(what + " (use --skip-damaged to load the rest of the file)");
      bool more = reader.resync();
      warn(what + (more ? "; skipped to the next intact record" : "; nothing intact after it"));
      whole = false;
      if (!more) break;
      continue;
    }
    ++prog.records;
    if (!loader.apply(std::move(rec), error))
      warn(path + ": record at offset " + std::to_string(reader.offset()) +
           " not applied: " + error);
    if ((prog.records & 1023) == 0 && clock::now() >= next_report) {
      report(false);
      next_report = clock::now() + opts.progress_interval;
    }
  }
  report(true);
  return whole;
}

}  // namespace moatkv
