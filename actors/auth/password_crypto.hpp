// Crypto of the `password` auth method (batteries.md §1.3, §1.4). No CAF, no I/O.
//
// The login: client and server run Diffie-Hellman over an RFC 3526 MODP group (generator 2;
// group 5 = 1536-bit prime if the client's `length` < 32, else group 14 = 2048-bit prime),
// exchanging public keys as minimal big-endian bytes. The NaCl SecretBox key is the first 32 bytes
// of the minimal big-endian encoding of the shared secret (the original's `num2byte(s)[0:32]`, not
// a hash of it). The client sends `nonce(24) || crypto_secretbox_easy(SHA-256(password), …)`
// (72 bytes); the server decrypts it and compares the 32-byte digest with the stored record.
//
// Records: the original stores the raw, unsalted SHA-256 digest (32 bytes). New records are a
// libsodium Argon2id string of that digest (salted, slow); the server never sees the password
// itself, so the digest is what gets hashed. Both forms verify, so records written by Python
// nodes keep working; `legacy` writes the original's form for mixed clusters.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace moatkv::auth {

/// A login that must be refused: malformed public key, wrong-sized or forged box, crypto failure.
struct auth_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The original's group choice: 5 if `length` < 32 (its debug mode uses 16), else 14.
int dh_group_for_length(int64_t length);

/// The group's prime p as minimal big-endian bytes (for tests and diagnostics).
/// Throws std::invalid_argument for a group other than 5 or 14.
std::string dh_prime(int group);

/// One side of one Diffie-Hellman exchange: holds a fresh random private exponent.
/// Movable (a moved-from object may only be destroyed or assigned to), not copyable; the
/// exponent is wiped on destruction.
class dh_exchange {
 public:
  /// Throws std::invalid_argument for a group other than 5 or 14.
  explicit dh_exchange(int group);
  ~dh_exchange();
  dh_exchange(dh_exchange&&) noexcept;
  dh_exchange& operator=(dh_exchange&&) noexcept;
  dh_exchange(const dh_exchange&) = delete;
  dh_exchange& operator=(const dh_exchange&) = delete;

  int group() const;
  /// g^x mod p, minimal big-endian (no leading zero byte), as sent in `pubkey`.
  std::string public_key() const;
  /// Validates the peer's key (2 < y < p-1 and y^((p-1)/2) == 1 mod p, i.e. y lies in the
  /// prime-order subgroup; leading zero bytes are tolerated, as the original's `byte2num` does)
  /// and returns the 32-byte SecretBox key. Throws auth_error on a malformed key.
  std::string shared_key(std::string_view peer_public) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// SHA-256 of the password's UTF-8 bytes: what the original sends (boxed) and stores.
std::string password_digest(std::string_view password);

/// Client side: nonce(24, random) || crypto_secretbox_easy(SHA-256(password)) = 72 bytes.
/// Throws auth_error if `key32` is not 32 bytes.
std::string wrap_password(std::string_view key32, std::string_view password);

/// Server side: opens the box and returns the 32-byte digest. Throws auth_error if `wire` is not
/// 72 bytes, the key is not 32 bytes, or the MAC does not verify (wrong key or tampering).
std::string unwrap_password_digest(std::string_view key32, std::string_view wire);

/// The stored `password` field for a digest. legacy: the raw 32 bytes (store as msgpack bin, as
/// the original does); else an Argon2id string "$argon2id$v=19$…" (ASCII; store as str) with a
/// fresh random salt. Throws auth_error if `digest32` is not 32 bytes or hashing fails (memory).
std::string password_record(std::string_view digest32, bool legacy);

/// True if `record` (either form) matches `digest32`. A 32-byte record is the original's form
/// and is compared in constant time; an Argon2id string is verified with libsodium; anything
/// else (and a wrong-sized digest) is false.
bool verify_password_record(std::string_view record, std::string_view digest32);

}  // namespace moatkv::auth
