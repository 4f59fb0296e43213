#include "common/sha256.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>

namespace octomix {

namespace {

using InitFunction = int (*)(void*);
using UpdateFunction = int (*)(void*, const void*, size_t);
using FinalFunction = int (*)(unsigned char*, void*);

struct OpensslSha256 {
  InitFunction init = nullptr;
  UpdateFunction update = nullptr;
  FinalFunction final = nullptr;
  OpensslSha256() {
    if (std::getenv("OCTOMIX_PORTABLE_SHA256") != nullptr) return;  // lets the tests cover the fallback
    init = reinterpret_cast<InitFunction>(dlsym(RTLD_DEFAULT, "SHA256_Init"));
    update = reinterpret_cast<UpdateFunction>(dlsym(RTLD_DEFAULT, "SHA256_Update"));
    final = reinterpret_cast<FinalFunction>(dlsym(RTLD_DEFAULT, "SHA256_Final"));
    if (!init || !update || !final) init = nullptr;
  }
  bool available() const { return init != nullptr; }
};

const OpensslSha256& openssl() {
  static const OpensslSha256 instance;
  return instance;
}

constexpr uint32_t kRoundConstants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
    0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
    0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
    0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline uint32_t rotateRight(uint32_t value, int bits) { return (value >> bits) | (value << (32 - bits)); }

}  // namespace

const char* Sha256::implementation() { return openssl().available() ? "openssl" : "portable"; }

Sha256::Sha256() : useOpenssl_(openssl().available()) {
  if (useOpenssl_) {
    openssl().init(opensslContext_);
    return;
  }
  const uint32_t initial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::memcpy(state_, initial, sizeof(initial));
}

void Sha256::compress(const unsigned char* block) {
  uint32_t w[64];
  for (int i = 0; i < 16; ++i) {
    w[i] = (uint32_t(block[4 * i]) << 24) | (uint32_t(block[4 * i + 1]) << 16) | (uint32_t(block[4 * i + 2]) << 8) |
           uint32_t(block[4 * i + 3]);
  }
  for (int i = 16; i < 64; ++i) {
    uint32_t s0 = rotateRight(w[i - 15], 7) ^ rotateRight(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = rotateRight(w[i - 2], 17) ^ rotateRight(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3], e = state_[4], f = state_[5], g = state_[6],
           h = state_[7];
  for (int i = 0; i < 64; ++i) {
    uint32_t s1 = rotateRight(e, 6) ^ rotateRight(e, 11) ^ rotateRight(e, 25);
    uint32_t choose = (e & f) ^ (~e & g);
    uint32_t t1 = h + s1 + choose + kRoundConstants[i] + w[i];
    uint32_t s0 = rotateRight(a, 2) ^ rotateRight(a, 13) ^ rotateRight(a, 22);
    uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
    uint32_t t2 = s0 + majority;
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  state_[0] += a; state_[1] += b; state_[2] += c; state_[3] += d;
  state_[4] += e; state_[5] += f; state_[6] += g; state_[7] += h;
}

void Sha256::update(const void* data, size_t length) {
  if (useOpenssl_) {
    openssl().update(opensslContext_, data, length);
    return;
  }
  const auto* bytes = static_cast<const unsigned char*>(data);
  length_ += length;
  while (length > 0) {
    size_t take = std::min(length, sizeof(block_) - blockUsed_);
    std::memcpy(block_ + blockUsed_, bytes, take);
    blockUsed_ += take;
    bytes += take;
    length -= take;
    if (blockUsed_ == sizeof(block_)) {
      compress(block_);
      blockUsed_ = 0;
    }
  }
}

std::string Sha256::hex() {
  unsigned char digest[32];
  if (useOpenssl_) {
    openssl().final(digest, opensslContext_);
  } else {
    uint64_t bits = length_ * 8;
    unsigned char pad = 0x80;
    update(&pad, 1);
    unsigned char zero = 0;
    while (blockUsed_ != 56) update(&zero, 1);
    unsigned char lengthBytes[8];
    for (int i = 0; i < 8; ++i) lengthBytes[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    update(lengthBytes, 8);
    for (int i = 0; i < 8; ++i) {
      for (int k = 0; k < 4; ++k) digest[4 * i + k] = static_cast<unsigned char>(state_[i] >> (24 - 8 * k));
    }
  }
  static const char* digits = "0123456789abcdef";
  std::string out(64, '0');
  for (int i = 0; i < 32; ++i) {
    out[2 * i] = digits[digest[i] >> 4];
    out[2 * i + 1] = digits[digest[i] & 15];
  }
  return out;
}

}  // namespace octomix
