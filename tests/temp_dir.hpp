// A fresh directory under the system's temp directory for one test, removed with everything
// in it when the test ends.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace moatkv::test {

class temp_dir {
 public:
  explicit temp_dir(const std::string& tag = "moatkv-test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (tag + ".XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  std::string path() const { return dir.string(); }
  /// The full name of `name` in this directory.
  std::string file(const std::string& name) const { return (dir / name).string(); }
  /// Writes `content` to file(name) (replacing it) and returns the full file name.
  std::string write(const std::string& name, const std::string& content) const {
    std::string f = file(name);
    std::ofstream out(f, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + f);
    return f;
  }

  std::filesystem::path dir;
};

}  // namespace moatkv::test
