//! The relay→client parser: any bytes a relay may send in a text frame.
//!
//! Properties: parsing never panics; a frame that parses serializes back to JSON that parses
//! to the same frame (what the test relay sends and the client reads agree).
#![no_main]

use actix_nostr::protocol::RelayFrame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = RelayFrame::from_slice(data) {
        let json = frame.as_json();
        let again = RelayFrame::from_json(&json)
            .unwrap_or_else(|e| panic!("re-parse of {json:?} failed: {e}"));
        assert_eq!(again, frame, "round trip through {json:?}");
    }
});
