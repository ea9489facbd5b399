//! Arbitrary bytes through `hairpin::control::fuzz::vdp` (802.1Qbg parsers and
//! state machines; asserts their invariants).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    std::hint::black_box(hairpin::control::fuzz::vdp(data));
});
