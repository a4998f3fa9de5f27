//! The event path every received event takes: parse, recompute the id, verify the BIP-340
//! signature.
//!
//! Properties: nothing panics; the hand-written NIP-01 id serialization hashes to the same
//! id as serde_json's serialization of `[0, pubkey, created_at, kind, tags, content]`; an
//! event that verifies has the id it claims; an event round-trips through its JSON.
#![no_main]

use actix_nostr::protocol::Event;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(event) = Event::from_json(text) else {
        return;
    };
    let id = event.compute_id();
    let reference = serde_json::to_vec(&(
        0u8,
        &event.pubkey,
        event.created_at,
        event.kind,
        &event.tags,
        &event.content,
    ))
    .expect("serializable");
    let expected: [u8; 32] = Sha256::digest(&reference).into();
    assert_eq!(
        id.as_bytes(),
        &expected,
        "id serialization differs from serde_json's: {}",
        String::from_utf8_lossy(&reference)
    );
    let id_ok = event.verify_id().is_ok();
    assert_eq!(id_ok, id == event.id);
    if event.verify().is_ok() {
        assert!(id_ok, "verify() passed with a wrong id");
    }
    let again = Event::from_json(&event.as_json()).expect("own JSON parses");
    assert_eq!(again, event);
});
