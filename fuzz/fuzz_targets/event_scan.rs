//! The hand-written EVENT readers against the derived serde parser.
//!
//! Property: for any text, `RelayFrame::from_json` (which reads EVENT frames by hand where it
//! can and falls back to serde_json) gives exactly what serde_json alone gives, frame or
//! error; and so does `ClientMessage::from_json` (which reads publishes, `["EVENT", <event>]`,
//! the same way). Seed it with real frames (`corpus/relay_frame`): random bytes rarely reach
//! the reader's interesting paths.
#![no_main]

use actix_nostr::protocol::{serde_client_message, serde_relay_frame, ClientMessage, RelayFrame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(
            RelayFrame::from_json(text),
            serde_relay_frame(text),
            "on {text:?}"
        );
        assert_eq!(
            ClientMessage::from_json(text),
            serde_client_message(text),
            "client message on {text:?}"
        );
    }
});
