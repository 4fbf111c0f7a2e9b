// Crypto of the `password` auth method (batteries §1.3, §1.4), including the values captured from
// the original in client-wire-messages.tsv (AUTH SCENARIO: conn17 `user add`, conn19 good login,
// conn20 wrong password). The captured exchanges cannot be decrypted (the private exponents are
// not recorded), so they check the public parts: group choice, key validity, sizes.
#include <doctest/doctest.h>
#include "tests/hex.hpp"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "actors/auth/password_crypto.hpp"
#include "messages/msgpack_codec.hpp"

using namespace moatkv;
using namespace moatkv::auth;
using moatkv::test::hex;
using moatkv::test::unhex;

namespace {

// p - k for small k, on the big-endian bytes. RFC 3526 primes end in 64 one bits, so no borrow.
std::string prime_minus(int group, unsigned char k) {
  std::string p = dh_prime(group);
  REQUIRE(static_cast<unsigned char>(p.back()) == 0xff);
  p.back() = static_cast<char>(0xff - k);
  return p;
}

void require_refused(const dh_exchange& dh, const std::string& key) {
  CHECK_THROWS_AS(dh.shared_key(key), auth_error);
}

struct captured {
  std::string conn, direction;
  value msg;
};

// The decoded messages of the auth scenario's password part.
std::vector<captured> captured_password_messages() {
  std::ifstream in(MOATKV_CONFORMANCE_DATA "/client-wire-messages.tsv");
  REQUIRE(in);
  std::string line;
  std::vector<captured> out;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string x;
    while (std::getline(ss, x, '\t')) f.push_back(x);
    if (f.size() != 5 || f[0].find("password") == std::string::npos) continue;
    out.push_back({f[1], f[2], decode(unhex(f[4]))});
  }
  return out;
}

}  // namespace

TEST_CASE("dh group follows the requested length") {
  CHECK(dh_group_for_length(0) == 5);
  CHECK(dh_group_for_length(16) == 5);  // the original's debug mode
  CHECK(dh_group_for_length(31) == 5);
  CHECK(dh_group_for_length(32) == 14);
  CHECK(dh_group_for_length(1024) == 14);  // the client default
  CHECK(dh_prime(5).size() == 1536 / 8);
  CHECK(dh_prime(14).size() == 2048 / 8);
  CHECK_THROWS_AS(dh_prime(2), std::invalid_argument);
  CHECK_THROWS_AS(dh_exchange(1), std::invalid_argument);
}

TEST_CASE("dh exchange: both sides derive the same key, public keys are minimal and valid") {
  for (int group : {5, 14}) {
    CAPTURE(group);
    for (int round = 0; round < 4; ++round) {
      dh_exchange client(group), server(group);
      CHECK(client.group() == group);
      std::string cpub = client.public_key(), spub = server.public_key();
      for (const std::string& pub : {cpub, spub}) {
        REQUIRE(!pub.empty());
        CHECK(pub[0] != '\0');
        CHECK(pub.size() <= dh_prime(group).size());
      }
      CHECK(cpub != spub);
      std::string k1 = client.shared_key(spub), k2 = server.shared_key(cpub);
      CHECK(k1.size() == 32);
      CHECK(hex(k1) == hex(k2));
      // A third party's exchange gives a different key.
      dh_exchange other(group);
      CHECK(hex(other.shared_key(spub)) != hex(k1));
      // A leading zero byte does not change the number (the original's byte2num accepts it).
      CHECK(hex(server.shared_key(std::string(1, '\0') + cpub)) == hex(k1));
    }
  }
}

TEST_CASE("dh exchange survives a move") {
  dh_exchange a(5), b(5);
  std::string apub = a.public_key();
  dh_exchange moved(std::move(a));
  CHECK(moved.public_key() == apub);
  CHECK(hex(moved.shared_key(b.public_key())) == hex(b.shared_key(apub)));
}

TEST_CASE("dh exchange refuses malformed peer keys") {
  for (int group : {5, 14}) {
    CAPTURE(group);
    dh_exchange dh(group);
    const std::string p = dh_prime(group);
    require_refused(dh, "");
    require_refused(dh, std::string(1, '\0'));
    require_refused(dh, std::string(4, '\0'));
    require_refused(dh, std::string(1, '\1'));
    require_refused(dh, std::string(1, '\2'));
    require_refused(dh, prime_minus(group, 1));          // p-1
    require_refused(dh, p);                              // p
    require_refused(dh, std::string(p.size(), '\xff'));  // > p, same length
    require_refused(dh, std::string(1, '\1') + p);       // longer than p
    require_refused(dh, prime_minus(group, 2));          // -2: -1 is a non-residue, 2 is one
    require_refused(dh, prime_minus(group, 4));          // -4 = -1 * 2^2: a non-residue
    // In range and a square (4 = 2^2), hence in the subgroup: accepted.
    CHECK(dh.shared_key(std::string(1, '\4')).size() == 32);
  }
}

TEST_CASE("password wrap and unwrap round trip, tamper detection") {
  dh_exchange client(14), server(14);
  std::string ckey = client.shared_key(server.public_key());
  std::string skey = server.shared_key(client.public_key());
  std::string wire = wrap_password(ckey, "test123");
  CHECK(wire.size() == 72);
  CHECK(hex(unwrap_password_digest(skey, wire)) == hex(password_digest("test123")));
  // SHA-256("test123"): the digest the original stores for joe.
  CHECK(hex(password_digest("test123")) ==
        "ecd71870d1963316a97e3ac3408c9835ad8cf0f3c1bc703527c30265534f75ae");
  // Fresh nonce every time.
  CHECK(wrap_password(ckey, "test123") != wire);

  for (size_t i : {size_t{0}, size_t{23}, size_t{24}, size_t{39}, size_t{40}, size_t{71}}) {
    CAPTURE(i);
    std::string bad = wire;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    CHECK_THROWS_AS(unwrap_password_digest(skey, bad), auth_error);
  }
  CHECK_THROWS_AS(unwrap_password_digest(skey, wire.substr(0, 71)), auth_error);
  CHECK_THROWS_AS(unwrap_password_digest(skey, wire + "x"), auth_error);
  CHECK_THROWS_AS(unwrap_password_digest(skey, ""), auth_error);
  dh_exchange other(14);
  CHECK_THROWS_AS(unwrap_password_digest(other.shared_key(client.public_key()), wire), auth_error);
  CHECK_THROWS_AS(unwrap_password_digest(skey.substr(0, 31), wire), auth_error);
  CHECK_THROWS_AS(wrap_password(ckey + "x", "test123"), auth_error);
  // UTF-8 passwords are hashed as bytes.
  CHECK(hex(unwrap_password_digest(skey, wrap_password(ckey, "p\xc3\xa4sswort"))) ==
        hex(password_digest("p\xc3\xa4sswort")));
}

TEST_CASE("password records: legacy SHA-256 and salted Argon2id") {
  const std::string good = password_digest("test123"), bad = password_digest("wrong");

  std::string legacy = password_record(good, true);
  CHECK(hex(legacy) == hex(good));  // the original's form: the raw 32 bytes
  CHECK(verify_password_record(legacy, good));
  CHECK_FALSE(verify_password_record(legacy, bad));

  std::string a = password_record(good, false), b = password_record(good, false);
  CHECK(a.rfind("$argon2id$", 0) == 0);
  CHECK(a.size() > 32);
  CHECK(a != b);  // salted
  CHECK(verify_password_record(a, good));
  CHECK(verify_password_record(b, good));
  CHECK_FALSE(verify_password_record(a, bad));
  // A record must match the digest, not the password text.
  CHECK_FALSE(verify_password_record(a, "test123"));

  CHECK_FALSE(verify_password_record("", good));
  CHECK_FALSE(verify_password_record(good.substr(0, 31), good));
  CHECK_FALSE(verify_password_record(a.substr(0, a.size() - 1), good));
  CHECK_FALSE(verify_password_record("$argon2i$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", good));
  CHECK_FALSE(verify_password_record(legacy, good.substr(0, 31)));
  CHECK_THROWS_AS(password_record(good.substr(0, 31), false), auth_error);
  CHECK_THROWS_AS(password_record(good + "x", true), auth_error);
}

TEST_CASE("password login values captured from the original") {
  auto msgs = captured_password_messages();
  int dh_requests = 0, dh_replies = 0, passwords = 0;
  int group = 0;
  for (const captured& c : msgs) {
    const value* action = c.msg.find("action");
    const value* pubkey = c.msg.find("pubkey");
    if (c.direction == "C->S" && action && action->as_str() == "diffie_hellman") {
      ++dh_requests;
      REQUIRE(pubkey);
      REQUIRE(pubkey->is_bin());
      group = dh_group_for_length(c.msg.find("length")->as_int64());
      CHECK(c.msg.find("length")->as_int64() == 1024);
      CHECK(group == 14);
    }
    if (pubkey) {
      if (c.direction == "S->C") ++dh_replies;
      CAPTURE(c.conn);
      CAPTURE(c.direction);
      const std::string& key = pubkey->as_bin();
      CHECK(key[0] != '\0');  // minimal encoding
      CHECK(key.size() == 256);
      // Valid in the group implied by `length` (14) ...
      dh_exchange dh(group);
      CHECK(dh.shared_key(key).size() == 32);
      // ... and refused in the other (2048-bit numbers exceed the 1536-bit prime).
      CHECK_THROWS_AS(dh_exchange(5).shared_key(key), auth_error);
    }
    if (c.direction == "C->S" && action &&
        (action->as_str() == "auth" || action->as_str() == "auth_set")) {
      if (const value* pw = c.msg.find("password")) {
        ++passwords;
        REQUIRE(pw->is_bin());
        CHECK(pw->as_bin().size() == 72);
        // Without the exponents the box cannot be opened; any other key is refused.
        dh_exchange a(14), b(14);
        CHECK_THROWS_AS(unwrap_password_digest(a.shared_key(b.public_key()), pw->as_bin()),
                        auth_error);
      }
    }
  }
  CHECK(dh_requests == 3);  // conn17 (user add), conn19 (good login), conn20 (wrong password)
  CHECK(dh_replies == 3);
  CHECK(passwords == 3);
}
