//! The hand-written EVENT frame reader against the derived serde parser.
//!
//! Property: for any text, `RelayFrame::from_json` (which reads EVENT frames by hand where it
//! can and falls back to serde_json) gives exactly what serde_json alone gives, frame or
//! error. Seed it with real frames (`corpus/relay_frame`): random bytes rarely reach the
//! reader's interesting paths.
#![no_main]

use actix_nostr::protocol::{serde_relay_frame, RelayFrame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(
            RelayFrame::from_json(text),
            serde_relay_frame(text),
            "on {text:?}"
        );
    }
});
