#include "actors/auth/login_throttle.hpp"
#include <vector>

#include <algorithm>

namespace moatkv::auth {

login_throttle::clock::duration login_throttle::penalty(int failures) const {
  if (failures <= 0) return clock::duration::zero();
  clock::duration d = limits_.base;
  for (int i = 1; i < failures && d < limits_.cap; ++i) d *= 2;
  return std::min<clock::duration>(d, limits_.cap);
}

login_throttle::clock::time_point login_throttle::admit(const std::string& user,
                                                        const std::string& address,
                                                        clock::time_point now) {
  clock::time_point slot = now;
  for (const std::string* k : {&user, &address}) {
    auto it = keys_.find(*k);
    if (it == keys_.end()) continue;
    if (now - it->second.last_failure > limits_.forget_after) {
      keys_.erase(it);
      continue;
    }
    slot = std::max(slot, it->second.next_free);
  }
  for (const std::string* k : {&user, &address}) {
    auto it = keys_.find(*k);
    if (it != keys_.end()) it->second.next_free = slot + penalty(it->second.failures);
  }
  return slot;
}

int login_throttle::failed(const std::string& user, const std::string& address,
                           clock::time_point now) {
  if (keys_.size() >= limits_.max_keys) prune(now);
  int user_failures = 0;
  for (const std::string* k : {&user, &address}) {
    key_state& s = keys_[*k];
    ++s.failures;
    s.last_failure = now;
    s.next_free = std::max(s.next_free, now + penalty(s.failures));
    if (k == &user) user_failures = s.failures;
  }
  return user_failures;
}

void login_throttle::succeeded(const std::string& user, const std::string& address) {
  keys_.erase(user);
  keys_.erase(address);
}

int login_throttle::failures(const std::string& key) const {
  auto it = keys_.find(key);
  return it == keys_.end() ? 0 : it->second.failures;
}

void login_throttle::prune(clock::time_point now) {
  std::erase_if(
      keys_, [&](const auto& kv) { return now - kv.second.last_failure > limits_.forget_after; });
  // Still full (an attack from very many addresses): drop the oldest half.
  if (keys_.size() >= limits_.max_keys) {
    std::vector<clock::time_point> times;
    times.reserve(keys_.size());
    for (const auto& [k, s] : keys_) times.push_back(s.last_failure);
    auto mid = times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2);
    std::nth_element(times.begin(), mid, times.end());
    clock::time_point cut = *mid;
    std::erase_if(keys_, [&](const auto& kv) { return kv.second.last_failure <= cut; });
  }
}

}  // namespace moatkv::auth
