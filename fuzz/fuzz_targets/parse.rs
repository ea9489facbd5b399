//! Arbitrary bytes through `parse_frame`, every header view, LLDP TLV
//! iteration and the ECP view (`hairpin::wire::fuzz::exercise`), which also
//! asserts the invariants `FrameInfo` documents.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    std::hint::black_box(hairpin::wire::fuzz::exercise(data));
});
