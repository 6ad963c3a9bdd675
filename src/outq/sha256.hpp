#pragma once
// SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104), small and pure, for
// signing webhooks (Standard Webhooks) without linking a crypto library into
// outq_core or outq_adapters. Only signing: there is no verification here,
// so nothing needs a constant-time comparison.
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string_view>

namespace outq {

using sha256_digest = std::array<std::uint8_t, 32>;

// Incremental SHA-256: update() any number of times, then finish() once.
class sha256 {
  public:
    sha256();
    void update(std::string_view data);
    sha256_digest finish();

    static constexpr std::size_t block_size = 64;

  private:
    void compress(const std::uint8_t* block);
    std::array<std::uint32_t, 8> state_;
    std::array<std::uint8_t, block_size> buffer_{};
    std::size_t buffered_ = 0;
    std::uint64_t length_ = 0;  // bytes hashed so far
};

sha256_digest sha256_of(std::string_view data);

// HMAC-SHA-256 of the concatenation of `parts` (so "id.timestamp.body" needs
// no copy of the body).
sha256_digest hmac_sha256(std::string_view key, std::initializer_list<std::string_view> parts);

}  // namespace outq
