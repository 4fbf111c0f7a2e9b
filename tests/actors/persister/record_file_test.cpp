#include <doctest/doctest.h>

#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "actors/persister/record_file.hpp"
#include "messages/msgpack_codec.hpp"
#include "tests/temp_dir.hpp"

using namespace moatkv;
namespace fs = std::filesystem;

namespace {

using test::temp_dir;

value record(int i) {
  return value(map{{value("path"), value::make_path(array{value("a"), value(i)})},
                   {value("value"), value("v" + std::to_string(i))},
                   {value("tock"), value(100 + i)}});
}

void write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

std::string read_raw(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Reads records until something else comes; returns that status.
record_file_reader::status read_all(record_file_reader& r, std::vector<value>& out,
                                    std::vector<size_t>& offsets) {
  value v;
  for (;;) {
    auto s = r.next(v);
    if (s != record_file_reader::status::record) return s;
    out.push_back(v);
    offsets.push_back(r.offset());
  }
}

using status = record_file_reader::status;

}  // namespace

TEST_CASE("record file: records written by the writer read back with their offsets") {
  temp_dir t;
  const std::string path = t.file("log");
  std::vector<std::string> enc;
  {
    record_file_writer w(path, true);
    CHECK(w.size() == 0);
    for (int i = 0; i < 3; ++i) {
      enc.push_back(encode(record(i)));
      w.append(enc.back());
    }
    w.sync();
    CHECK(w.size() == enc[0].size() + enc[1].size() + enc[2].size());
  }
  record_file_reader r(path);
  CHECK(r.size() == enc[0].size() + enc[1].size() + enc[2].size());
  CHECK(r.path() == path);
  std::vector<value> got;
  std::vector<size_t> offsets;
  CHECK(read_all(r, got, offsets) == status::end);
  REQUIRE(got.size() == 3);
  for (int i = 0; i < 3; ++i) CHECK(got[i] == record(i));
  CHECK(offsets == std::vector<size_t>{0, enc[0].size(), enc[0].size() + enc[1].size()});
  CHECK(r.error().empty());
  value v;
  CHECK(r.next(v) == status::end);  // stays at the end
}

TEST_CASE("record file: an empty file is at its end at once") {
  temp_dir t;
  const std::string path = t.file("empty");
  write_raw(path, "");
  record_file_reader r(path);
  CHECK(r.size() == 0);
  value v;
  CHECK(r.next(v) == status::end);
  CHECK_FALSE(r.resync());
  CHECK(r.next(v) == status::end);
}

TEST_CASE("record file: a cut tail is reported as truncated; earlier records are intact") {
  temp_dir t;
  const std::string path = t.file("cut");
  const std::string a = encode(record(1)), b = encode(record(2)), c = encode(record(3));
  const size_t keep = c.size() / 2;
  write_raw(path, a + b + c.substr(0, keep));

  record_file_reader r(path);
  std::vector<value> got;
  std::vector<size_t> offsets;
  CHECK(read_all(r, got, offsets) == status::truncated);
  REQUIRE(got.size() == 2);
  CHECK(got[0] == record(1));
  CHECK(got[1] == record(2));
  CHECK(r.offset() == a.size() + b.size());
  CHECK(r.error() == "incomplete record at end of file (" + std::to_string(keep) + " bytes)");
  value v;
  CHECK(r.next(v) == status::end);
  CHECK(r.offset() == a.size() + b.size());
  // Nothing complete follows a real cut tail.
  CHECK_FALSE(r.resync());
  CHECK(r.next(v) == status::end);
}

TEST_CASE("record file: every cut of the last record reads as truncated, never damaged") {
  temp_dir t;
  const std::string path = t.file("cuts");
  const std::string a = encode(record(1));
  value big(
      map{{value("path"), value::make_path(array{value("x"), value(-5), value(2.5)})},
          {value("value"),
           value(map{{value("list"), value(array{value(1), value("two"), value(bin{"\x01\x02"})})},
                     {value("long"), value(std::string(300, 'z'))}})},
          {value("tock"), value(1ull << 40)}});
  const std::string b = encode(big);
  for (size_t keep = 1; keep < b.size(); ++keep) {
    CAPTURE(keep);
    write_raw(path, a + b.substr(0, keep));
    record_file_reader r(path);
    value v;
    REQUIRE(r.next(v) == status::record);
    CHECK(v == record(1));
    CHECK(r.next(v) == status::truncated);
    CHECK(r.offset() == a.size());
  }
}

TEST_CASE("record file: garbage in the middle is damage; resync finds the next record") {
  temp_dir t;
  const std::string path = t.file("garbage");
  const std::string a = encode(record(1)), b = encode(record(2)), c = encode(record(3));
  write_raw(path, a + "\xc1" + b + c);

  record_file_reader r(path);
  value v;
  REQUIRE(r.next(v) == status::record);
  CHECK(v == record(1));
  CHECK(r.next(v) == status::damaged);
  CHECK(r.offset() == a.size());
  CHECK(r.error().find("msgpack") != std::string::npos);
  CHECK(r.next(v) == status::end);  // no silent skipping
  CHECK(r.offset() == a.size());

  REQUIRE(r.resync());
  REQUIRE(r.next(v) == status::record);
  CHECK(v == record(2));
  CHECK(r.offset() == a.size() + 1);
  REQUIRE(r.next(v) == status::record);
  CHECK(v == record(3));
  CHECK(r.offset() == a.size() + 1 + b.size());
  CHECK(r.next(v) == status::end);
}

TEST_CASE("record file: a record that is not a map is damage") {
  temp_dir t;
  const std::string path = t.file("nonmap");
  const std::string a = encode(record(1)), n = encode(value(42)), b = encode(record(2));
  write_raw(path, a + n + b);

  record_file_reader r(path);
  value v;
  REQUIRE(r.next(v) == status::record);
  CHECK(r.next(v) == status::damaged);
  CHECK(r.offset() == a.size());
  CHECK(r.error().find("record is not a map") != std::string::npos);
  REQUIRE(r.resync());
  REQUIRE(r.next(v) == status::record);
  CHECK(v == record(2));
  CHECK(r.offset() == a.size() + n.size());
}

TEST_CASE("record file: resync skips maps that do not look like records") {
  temp_dir t;
  const std::string path = t.file("implausible");
  const std::string junk = encode(value(map{{value("x"), value(1)}, {value("y"), value("z")}}));
  const std::string a = encode(record(7));
  // A str key that is "path" but invalid UTF-8 elsewhere: the walker accepts it, the decoder
  // does not.
  const std::string bad_utf8 = std::string("\x82\xa4path\x01\xa1") + "\xff" + "\x02";
  write_raw(path, "\xc1" + junk + bad_utf8 + a);

  record_file_reader r(path);
  value v;
  CHECK(r.next(v) == status::damaged);
  CHECK(r.offset() == 0);
  REQUIRE(r.resync());
  REQUIRE(r.next(v) == status::record);
  CHECK(v == record(7));
  CHECK(r.offset() == 1 + junk.size() + bad_utf8.size());
}

TEST_CASE("record file: resync accepts each of the record keys") {
  temp_dir t;
  const std::string path = t.file("keys");
  for (const char* key : {"path", "tock", "nodes", "info"}) {
    CAPTURE(key);
    const value rec(map{{value("other"), value(1)}, {value(key), value(map{})}});
    write_raw(path, "\xc1\xc1" + encode(rec));
    record_file_reader r(path);
    value v;
    CHECK(r.next(v) == status::damaged);
    REQUIRE(r.resync());
    REQUIRE(r.next(v) == status::record);
    CHECK(v == rec);
    CHECK(r.offset() == 2);
  }
}

TEST_CASE("record file: damage without a later record resyncs to the end") {
  temp_dir t;
  const std::string path = t.file("tail");
  const std::string a = encode(record(1));
  write_raw(path, a + "\xc1\x81\xa1x\x01\x90");
  record_file_reader r(path);
  value v;
  REQUIRE(r.next(v) == status::record);
  CHECK(r.next(v) == status::damaged);
  CHECK_FALSE(r.resync());
  CHECK(r.next(v) == status::end);
}

TEST_CASE("record file: an inflated length looks like a cut tail, and resync recovers") {
  temp_dir t;
  const std::string path = t.file("inflated");
  const std::string a = encode(record(1)), b = encode(record(2)), c = encode(record(3));
  // A str32 header claiming 64 KiB swallows the rest of the file.
  const std::string bad("\xdb\x00\x01\x00\x00", 5);
  write_raw(path, a + bad + b + c);

  record_file_reader r(path);
  value v;
  REQUIRE(r.next(v) == status::record);
  CHECK(r.next(v) == status::truncated);
  CHECK(r.offset() == a.size());
  REQUIRE(r.resync());
  REQUIRE(r.next(v) == status::record);
  CHECK(v == record(2));
  CHECK(r.offset() == a.size() + bad.size());
  REQUIRE(r.next(v) == status::record);
  CHECK(v == record(3));
  CHECK(r.next(v) == status::end);
}

TEST_CASE("record file: resync through megabytes of random bytes stays fast") {
  temp_dir t;
  const std::string path = t.file("noise");
  std::mt19937 rng(12345);
  std::string noise(4u << 20, '\0');
  for (auto& ch : noise) ch = static_cast<char>(rng() & 0xff);
  noise[0] = '\xc1';
  const std::string a = encode(record(9));
  write_raw(path, noise + a);

  record_file_reader r(path);
  value v;
  CHECK(r.next(v) == status::damaged);
  auto start = std::chrono::steady_clock::now();
  REQUIRE(r.resync());
  auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed < std::chrono::seconds(10));
  MESSAGE("resync over 4 MiB of noise: "
          << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms");
  REQUIRE(r.next(v) == status::record);
  CHECK(v == record(9));
  CHECK(r.offset() == noise.size());
}

TEST_CASE("record file: a missing or unreadable file is an error naming it") {
  temp_dir t;
  const std::string path = t.file("missing");
  try {
    record_file_reader r(path);
    FAIL("no exception");
  } catch (const record_file_error& e) {
    const std::string what = e.what();
    CHECK(what.find(path) == 0);
    CHECK(what.find("No such file or directory") != std::string::npos);
  }
  CHECK_THROWS_AS(record_file_reader(t.dir.string()), record_file_error);
  const std::string nested = t.file("no/such/dir");
  CHECK_THROWS_WITH_AS(record_file_writer(nested, false),
                       (nested + ": open: No such file or directory").c_str(), record_file_error);
}

TEST_CASE("record file: a writer opened without truncate appends") {
  temp_dir t;
  const std::string path = t.file("append");
  const std::string a = encode(record(1)), b = encode(record(2));
  {
    record_file_writer w(path, false);  // creates the file
    w.append(a);
    w.sync();
  }
  const mode_t mask = ::umask(0);
  ::umask(mask);
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == (0644 & ~mask));
  {
    record_file_writer w(path, false);
    CHECK(w.size() == a.size());
    w.append(b);
    w.append("");
    CHECK(w.size() == a.size() + b.size());
  }
  CHECK(read_raw(path) == a + b);
  {
    record_file_writer w(path, true);
    CHECK(w.size() == 0);
    w.append(b);
  }
  CHECK(read_raw(path) == b);
}

TEST_CASE("record file: write_file_atomically replaces the content and leaves no temp file") {
  temp_dir t;
  const std::string path = t.file("state");
  write_raw(path, "old content that is longer than the new one");
  const std::string fresh = encode(record(5));
  write_file_atomically(path, fresh);
  CHECK(read_raw(path) == fresh);
  CHECK_FALSE(fs::exists(path + ".tmp"));
  write_file_atomically(path, "");
  CHECK(read_raw(path).empty());

  // Into a directory that does not exist: an error, and nothing left behind.
  const std::string nowhere = t.file("missing/state");
  CHECK_THROWS_AS(write_file_atomically(nowhere, fresh), record_file_error);
  CHECK_FALSE(fs::exists(nowhere + ".tmp"));

  // A relative path: the directory to sync is ".".
  const fs::path cwd = fs::current_path();
  fs::current_path(t.dir);
  CHECK_NOTHROW(write_file_atomically("relative", fresh));
  fs::current_path(cwd);
  CHECK(read_raw(t.file("relative")) == fresh);
}

TEST_CASE("decode_prefix: cut objects are incomplete, the offset stays") {
  value out;
  SUBCASE("cut str payload and header") {
    for (const std::string& bytes : {std::string("\xa5hel"), std::string("\xd9\x05he"),
                                     std::string("\xd9"), std::string("\xda\x00", 2)}) {
      size_t off = 0;
      CHECK_FALSE(decode_prefix(bytes, off, out));
      CHECK(off == 0);
    }
  }
  SUBCASE("cut array, map and their headers") {
    for (const std::string& bytes :
         {std::string("\x93\x01\x02"), std::string("\xdc\x00", 2),
          std::string("\xdc\x00\x03\x01", 4), std::string("\x82\xa1x\x01\xa1y"),
          std::string("\xde"), std::string("\xdf\x00\x00", 3)}) {
      size_t off = 0;
      CHECK_FALSE(decode_prefix(bytes, off, out));
      CHECK(off == 0);
    }
  }
  SUBCASE("every prefix of a record, after a complete one") {
    const std::string a = encode(record(1));
    const std::string b =
        encode(value(map{{value("path"), value::make_path(array{value("p"), value(3)}, "mark")},
                         {value("n"), value(array{value(nullptr), value(true), value(-70000),
                                                  value(1.5), value(bin{std::string(70, 'b')}),
                                                  value(ext_data{5, std::string(20, 'e')})})}}));
    for (size_t keep = 0; keep < b.size(); ++keep) {
      CAPTURE(keep);
      const std::string bytes = a + b.substr(0, keep);
      size_t off = 0;
      REQUIRE(decode_prefix(bytes, off, out));
      CHECK(out == record(1));
      CHECK(off == a.size());
      CHECK_FALSE(decode_prefix(bytes, off, out));
      CHECK(off == a.size());
    }
    const std::string bytes = a + b;
    size_t off = a.size();
    REQUIRE(decode_prefix(bytes, off, out));
    CHECK(off == bytes.size());
    CHECK(out == decode(b));
  }
}

TEST_CASE("decode_prefix: invalid bytes throw and leave the offset") {
  value out;
  size_t off = 1;
  CHECK_THROWS_AS(decode_prefix(std::string("\x01\xc1"), off, out), decode_error);
  CHECK(off == 1);
  // A container count above the limits is an error at once, not "incomplete".
  decode_limits limits;
  limits.max_container = 10;
  off = 0;
  CHECK_THROWS_AS(decode_prefix(std::string("\xdc\x00\x20", 3), off, out, limits), decode_error);
  CHECK(off == 0);
  // Complete but invalid UTF-8.
  CHECK_THROWS_AS(decode_prefix(std::string("\xa1\xff"), off, out), decode_error);
  CHECK(off == 0);
}
