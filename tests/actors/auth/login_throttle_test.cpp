// The failed-login throttle: attempts for a user or from an address that failed are spaced out,
// per key, growing with the failures; a success clears them.
#include <doctest/doctest.h>

#include "actors/auth/login_throttle.hpp"

using moatkv::auth::login_throttle;
using namespace std::chrono_literals;

TEST_CASE("login throttle: no delay without failures, growing delays after them") {
  login_throttle t;
  auto now = login_throttle::clock::now();
  CHECK(t.admit("password user joe", "10.0.0.1", now) == now);
  CHECK(t.admit("password user joe", "10.0.0.1", now) == now);  // nothing failed yet

  CHECK(t.failed("password user joe", "10.0.0.1", now) == 1);
  // The next attempt waits 250 ms; one right after it waits behind it.
  auto a = t.admit("password user joe", "10.0.0.1", now);
  CHECK(a == now + 250ms);
  auto b = t.admit("password user joe", "10.0.0.2", now);  // another address, same user
  CHECK(b == a + 250ms);
  auto c = t.admit("password user ann", "10.0.0.1", now);  // another user, same address
  CHECK(c >= a + 250ms);
  CHECK(t.admit("password user ann", "10.0.0.9", now) == now);  // unrelated: no delay

  for (int i = 2; i <= 10; ++i) t.failed("password user joe", "10.0.0.3", now);
  CHECK(t.failures("password user joe") == 10);
  // Capped at 8 s per attempt.
  auto later = now + 1h;  // long after: the slots are free again, the count is not forgotten
  auto d = t.admit("password user joe", "10.0.0.3", now + 10min);
  auto e = t.admit("password user joe", "10.0.0.3", now + 10min);
  CHECK(e - d == 8000ms);
  // Forgotten after 15 minutes without a failure.
  CHECK(t.admit("password user joe", "10.0.0.3", later) == later);
  CHECK(t.failures("password user joe") == 0);
}

TEST_CASE("login throttle: a success clears both keys; the table stays bounded") {
  login_throttle::limits l;
  l.max_keys = 100;
  login_throttle t(l);
  auto now = login_throttle::clock::now();
  t.failed("u", "addr", now);
  t.succeeded("u", "addr");
  CHECK(t.admit("u", "addr", now) == now);
  for (int i = 0; i < 1000; ++i) t.failed("u" + std::to_string(i), "a" + std::to_string(i), now);
  CHECK(t.size() <= 100);
}
