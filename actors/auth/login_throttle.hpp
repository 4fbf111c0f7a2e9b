// Slows down password guessing: failed logins delay later attempts for the same user and from
// the same address (issue 5). No CAF; the tree_store actor asks it when an `auth` may run.
//
// Each key (a user "METHOD:IDENT", an address) counts its consecutive failures n. An attempt is
// admitted at the earliest time free for both of its keys, and then occupies each key for
// `base · 2^(n-1)` (capped at `cap`; nothing while n = 0). Attempts therefore run one after
// the other per key: opening many connections does not help a guesser, and a legitimate user
// with a typo waits a fraction of a second. A success clears both keys; a key with no failure
// for `forget_after` is dropped, and the table is bounded.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <unordered_map>

namespace moatkv::auth {

class login_throttle {
 public:
  using clock = std::chrono::steady_clock;

  struct limits {
    std::chrono::milliseconds base{250};
    std::chrono::milliseconds cap{8000};
    std::chrono::seconds forget_after{900};
    size_t max_keys = 10000;
  };

  login_throttle() = default;
  explicit login_throttle(limits l) : limits_(l) {}

  /// When an attempt for `user` from `address` may run (>= now); reserves that slot.
  clock::time_point admit(const std::string& user, const std::string& address,
                          clock::time_point now);
  /// The attempt failed / succeeded. `failed` returns the failure count of the user key.
  int failed(const std::string& user, const std::string& address, clock::time_point now);
  void succeeded(const std::string& user, const std::string& address);

  /// Consecutive failures recorded for a key (0 if unknown).
  int failures(const std::string& key) const;
  size_t size() const { return keys_.size(); }

 private:
  struct key_state {
    int failures = 0;
    clock::time_point last_failure;
    clock::time_point next_free;
  };
  clock::duration penalty(int failures) const;
  void prune(clock::time_point now);

  limits limits_;
  std::unordered_map<std::string, key_state> keys_;
};

}  // namespace moatkv::auth
