// One comparison of two equal LEN-byte strings, 1,000 times with
// mcpauth::ct_equal (src/crypto.cpp) and 1,000 times with CRYPTO_memcmp,
// each loop in a function of its own so that callgrind counts them apart:
//
//   g++ -std=c++17 -O2 -Isrc bench/ct_equal_cost.cpp src/crypto.cpp src/encoding.cpp -lcrypto -o build/ct-equal-cost
//   valgrind --tool=callgrind --callgrind-out-file=build/ct.out build/ct-equal-cost 43
//   callgrind_annotate --inclusive=yes build/ct.out | grep -E 'loop_(ct_equal|memcmp)'
//
// (bench/savings.sh runs it for the lengths compared in practice.)
#include <openssl/crypto.h>

#include <cstdlib>
#include <string>

#include "crypto.hpp"

__attribute__((noinline)) long loop_ct_equal(const std::string& a, const std::string& b, int n) {
    long k = 0;
    for (int i = 0; i < n; ++i) k += mcpauth::ct_equal(a, b);
    return k;
}

__attribute__((noinline)) long loop_memcmp(const std::string& a, const std::string& b, int n) {
    long k = 0;
    for (int i = 0; i < n; ++i) k += a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
    return k;
}

int main(int argc, char** argv) {
    const size_t len = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 32;
    const int n = 1000;
    const std::string a(len, 'x'), b(len, 'x');
    return loop_ct_equal(a, b, n) + loop_memcmp(a, b, n) == 2 * n ? 0 : 1;
}
