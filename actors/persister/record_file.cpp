#include "actors/persister/record_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "messages/msgpack_codec.hpp"

namespace moatkv {

namespace {

[[noreturn]] void fail(const std::string& path, const char* what, int err) {
  throw record_file_error(path + ": " + what + ": " + std::generic_category().message(err));
}

bool is_record_key(std::string_view key) {
  return key == "path" || key == "tock" || key == "nodes" || key == "info";
}

bool has_record_key(const value& m) {
  for (const char* key : {"path", "tock", "nodes", "info"})
    if (m.find(key)) return true;
  return false;
}

// Walks msgpack headers without building anything. resync tries every map-start byte after
// damage; a full decode attempt for each would allocate and, for most random bytes, throw.
// Every length is checked against the bytes left, so one attempt costs at most the size of
// the object it finds.
class msgpack_walker {
 public:
  msgpack_walker(const char* data, size_t size)
      : p_(reinterpret_cast<const unsigned char*>(data)), size_(size) {}

  // True if a complete map with one of the record keys at its top level starts at `pos`.
  bool plausible_record(size_t pos) const {
    header map;
    if (!read_header(pos, map) || !map.is_map) return false;
    bool plausible = false;
    for (uint64_t i = 0; i < map.children / 2; ++i) {
      size_t key_pos = pos;
      header key;
      if (!read_header(key_pos, key)) return false;
      if (key.is_str && key.payload <= size_ - key_pos &&
          is_record_key(std::string_view(reinterpret_cast<const char*>(p_ + key_pos),
                                         static_cast<size_t>(key.payload))))
        plausible = true;
      if (!skip(pos) || !skip(pos)) return false;
    }
    return plausible;
  }

 private:
  struct header {
    uint64_t children = 0;  // nested objects that follow (2 per map pair)
    uint64_t payload = 0;   // bytes of str / bin / ext / number after the header
    bool is_str = false;
    bool is_map = false;
  };

  bool read_length(size_t& pos, unsigned width, uint64_t& out) const {
    if (size_ - pos < width) return false;
    out = 0;
    for (unsigned i = 0; i < width; ++i) out = (out << 8) | p_[pos + i];
    pos += width;
    return true;
  }

  // Reads the header at `pos` and moves past it (not past its payload).
  bool read_header(size_t& pos, header& h) const {
    if (pos >= size_) return false;
    const unsigned c = p_[pos++];
    h = header{};
    if (c <= 0x7f || c >= 0xe0) return true;  // fixints
    if (c <= 0x8f) {
      h.children = 2 * (c & 0x0f);
      h.is_map = true;
      return true;
    }
    if (c <= 0x9f) {
      h.children = c & 0x0f;
      return true;
    }
    if (c <= 0xbf) {
      h.payload = c & 0x1f;
      h.is_str = true;
      return true;
    }
    switch (c) {
      case 0xc0:  // nil, false, true
      case 0xc2:
      case 0xc3:
        return true;
      case 0xc4:  // bin 8/16/32
      case 0xc5:
      case 0xc6:
        return read_length(pos, 1u << (c - 0xc4), h.payload);
      case 0xc7:  // ext 8/16/32: length, then the type byte
      case 0xc8:
      case 0xc9:
        if (!read_length(pos, 1u << (c - 0xc7), h.payload)) return false;
        h.payload += 1;
        return true;
      case 0xca:
        h.payload = 4;
        return true;
      case 0xcb:
        h.payload = 8;
        return true;
      case 0xcc:  // uint 8/16/32/64
      case 0xcd:
      case 0xce:
      case 0xcf:
        h.payload = 1u << (c - 0xcc);
        return true;
      case 0xd0:  // int 8/16/32/64
      case 0xd1:
      case 0xd2:
      case 0xd3:
        h.payload = 1u << (c - 0xd0);
        return true;
      case 0xd4:  // fixext 1/2/4/8/16 plus the type byte
      case 0xd5:
      case 0xd6:
      case 0xd7:
      case 0xd8:
        h.payload = 1 + (1u << (c - 0xd4));
        return true;
      case 0xd9:  // str 8/16/32
      case 0xda:
      case 0xdb:
        h.is_str = true;
        return read_length(pos, c == 0xd9 ? 1 : c == 0xda ? 2 : 4, h.payload);
      case 0xdc:  // array 16/32
      case 0xdd:
        return read_length(pos, c == 0xdc ? 2 : 4, h.children);
      case 0xde:  // map 16/32
      case 0xdf:
        if (!read_length(pos, c == 0xde ? 2 : 4, h.children)) return false;
        h.children *= 2;
        h.is_map = true;
        return true;
      default:  // 0xc1 is never valid
        return false;
    }
  }

  // Moves `pos` past one complete object; false if it is invalid or incomplete.
  bool skip(size_t& pos) const {
    uint64_t pending = 1;
    while (pending > 0) {
      // Every pending object needs at least one byte, which also keeps `pending` small.
      if (pending > size_ - pos) return false;
      header h;
      if (!read_header(pos, h)) return false;
      if (h.payload > size_ - pos) return false;
      pos += static_cast<size_t>(h.payload);
      pending = pending - 1 + h.children;
    }
    return true;
  }

  const unsigned char* p_;
  size_t size_;
};

// 0 on success, else the errno of the failing write; `written` counts the bytes that made it.
int write_all(int fd, std::string_view bytes, size_t& written) {
  written = 0;
  while (written < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;  // cannot happen for regular files; do not spin on it
    written += static_cast<size_t>(n);
  }
  return 0;
}

int retry_eintr(int (*call)(int), int fd) {
  while (call(fd) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

std::string directory_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// reader

record_file_reader::record_file_reader(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path_, "open", errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail(path_, "fstat", err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path_, "open", S_ISDIR(st.st_mode) ? EISDIR : ENODEV);
  }
  size_ = static_cast<size_t>(st.st_size);
  // mmap rejects a length of 0, and an empty file has nothing to map anyway.
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail(path_, "mmap", err);
    }
    ::madvise(p, size_, MADV_SEQUENTIAL);  // only a hint; failure changes nothing
    data_ = static_cast<const char*>(p);
  }
  ::close(fd);  // the mapping keeps the file open
}

record_file_reader::~record_file_reader() {
  if (data_) ::munmap(const_cast<char*>(data_), size_);
}

record_file_reader::status record_file_reader::next(value& out) {
  if (stopped_) return status::end;  // offset() keeps pointing at the damage
  if (pos_ >= size_) {
    record_start_ = size_;
    return status::end;
  }
  record_start_ = pos_;
  size_t off = pos_;
  value v;
  try {
    if (!decode_prefix(std::string_view(data_, size_), off, v)) {
      stopped_ = true;
      error_ =
          "incomplete record at end of file (" + std::to_string(size_ - record_start_) + " bytes)";
      return status::truncated;
    }
  } catch (const decode_error& e) {
    stopped_ = true;
    error_ = e.what();
    return status::damaged;
  }
  if (!v.is_map()) {
    stopped_ = true;
    error_ = std::string("record is not a map (") + kind_name(v) + ")";
    return status::damaged;
  }
  pos_ = off;
  error_.clear();
  out = std::move(v);
  return status::record;
}

bool record_file_reader::resync() {
  const size_t from = stopped_ ? record_start_ + 1 : pos_;
  stopped_ = false;
  const std::string_view bytes(data_, size_);
  const msgpack_walker walker(data_, size_);
  for (size_t at = from; at < size_; ++at) {
    const auto c = static_cast<unsigned char>(data_[at]);
    if ((c & 0xf0) != 0x80 && c != 0xde && c != 0xdf) continue;  // not a map header
    if (!walker.plausible_record(at)) continue;
    // The walker does not check UTF-8, paths or nesting depth; the decoder has the last word.
    size_t off = at;
    value v;
    try {
      if (!decode_prefix(bytes, off, v)) continue;
    } catch (const decode_error&) {
      continue;
    }
    if (!v.is_map() || !has_record_key(v)) continue;
    pos_ = at;
    return true;
  }
  pos_ = size_;
  return false;
}

// ---------------------------------------------------------------------------------------------
// writer

record_file_writer::record_file_writer(const std::string& path, bool truncate) : path_(path) {
  int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;
  if (truncate) flags |= O_TRUNC;
  fd_ = ::open(path.c_str(), flags, 0644);
  if (fd_ < 0) fail(path_, "open", errno);
  struct stat st;
  if (::fstat(fd_, &st) != 0) {
    int err = errno;
    ::close(fd_);
    fd_ = -1;
    fail(path_, "fstat", err);
  }
  size_ = static_cast<uint64_t>(st.st_size);
}

record_file_writer::~record_file_writer() {
  if (fd_ >= 0) ::close(fd_);
}

void record_file_writer::append(std::string_view bytes) {
  size_t written = 0;
  if (int err = write_all(fd_, bytes, written)) {
    // A partial record followed by later appends would read as damage in the middle of the
    // file, so cut it off again; if even that fails, it stays and the size says so.
    if (written > 0 && ::ftruncate(fd_, static_cast<off_t>(size_)) != 0) size_ += written;
    fail(path_, "write", err);
  }
  size_ += written;
}

void record_file_writer::sync() {
  if (int err = retry_eintr(::fdatasync, fd_)) fail(path_, "fdatasync", err);
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(tmp, "open", errno);
  auto abandon = [&](const std::string& name, const char* what, int err) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    fail(name, what, err);
  };
  size_t written = 0;
  if (int err = write_all(fd, bytes, written)) abandon(tmp, "write", err);
  if (int err = retry_eintr(::fdatasync, fd)) abandon(tmp, "fdatasync", err);
  // close can report a deferred write error (NFS); it is not retried on EINTR (Linux frees
  // the descriptor anyway).
  int rc = ::close(fd);
  fd = -1;
  if (rc != 0) abandon(tmp, "close", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) abandon(path, "rename", errno);
  sync_directory_of(path);
}

void rename_durably(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    int err = errno;
    ::unlink(from.c_str());
    fail(to, "rename", err);
  }
  sync_directory_of(to);
}

void sync_directory_of(const std::string& path) {
  // A rename is only durable once the directory entry is.
  const std::string dir = directory_of(path);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) fail(dir, "open", errno);
  int err = retry_eintr(::fsync, dfd);
  ::close(dfd);
  if (err) fail(dir, "fsync", err);
}

}  // namespace moatkv
