//! The client→relay parser (the test relay reads every frame a client sends with it).
//!
//! Properties: parsing never panics; a message that parses serializes back to JSON that
//! parses to the same message.
#![no_main]

use actix_nostr::protocol::ClientMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = ClientMessage::from_slice(data) {
        let json = message.as_json();
        let again = ClientMessage::from_json(&json)
            .unwrap_or_else(|e| panic!("re-parse of {json:?} failed: {e}"));
        assert_eq!(again, message, "round trip through {json:?}");
    }
});
