//! NIP-19 decoding of any string (npub, nsec, note, nprofile, nevent, naddr).
//!
//! Properties: decoding never panics; an entity that decodes encodes again (within the
//! encoders' documented limits) to a string that decodes to the same entity.
#![no_main]

use actix_nostr::protocol::nip19;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(entity) = nip19::decode(text) else {
        return;
    };
    if let Ok(encoded) = entity.encode() {
        let again = nip19::decode(&encoded)
            .unwrap_or_else(|e| panic!("re-decode of {encoded:?} failed: {e}"));
        assert_eq!(again, entity, "round trip through {encoded:?}");
    }
});
