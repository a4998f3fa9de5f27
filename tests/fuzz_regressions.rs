//! The properties of the fuzz targets (fuzz/fuzz_targets/*.rs, docs/fuzzing.md), checked on
//! fixed inputs on every `cargo test`: the shapes the fuzzers found interesting, and every
//! input a fuzzer ever crashed on (none so far: the first runs, 10 million executions per
//! target or 30 minutes, found no crash). A new crash input goes into `CRASHES` below, as
//! bytes, next to the target it crashed.

use actix_nostr::protocol::{nip19, ClientMessage, Event, RelayFrame};
use sha2::{Digest, Sha256};

/// `fuzz_targets/relay_frame.rs`: parsing never panics; what parses round-trips.
fn relay_frame(data: &[u8]) {
    if let Ok(frame) = RelayFrame::from_slice(data) {
        let json = frame.as_json();
        let again = RelayFrame::from_json(&json)
            .unwrap_or_else(|e| panic!("re-parse of {json:?} failed: {e}"));
        assert_eq!(again, frame, "round trip through {json:?}");
    }
}

/// `fuzz_targets/client_message.rs`: the same for client messages.
fn client_message(data: &[u8]) {
    if let Ok(message) = ClientMessage::from_slice(data) {
        let json = message.as_json();
        let again = ClientMessage::from_json(&json)
            .unwrap_or_else(|e| panic!("re-parse of {json:?} failed: {e}"));
        assert_eq!(again, message, "round trip through {json:?}");
    }
}

/// `fuzz_targets/event_verify.rs`: the id is the SHA-256 of serde_json's serialization of
/// `[0, pubkey, created_at, kind, tags, content]`; `verify` implies the claimed id.
fn event_verify(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(event) = Event::from_json(text) else {
        return;
    };
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
    let id = event.compute_id();
    assert_eq!(
        id.as_bytes(),
        &expected,
        "{}",
        String::from_utf8_lossy(&reference)
    );
    assert_eq!(event.verify_id().is_ok(), id == event.id);
    if event.verify().is_ok() {
        assert_eq!(id, event.id);
    }
    assert_eq!(
        Event::from_json(&event.as_json()).expect("own JSON parses"),
        event
    );
}

/// `fuzz_targets/nip19_decode.rs`: decoding never panics; what decodes re-encodes to the
/// same entity.
fn nip19_decode(data: &[u8]) {
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
}

type Target = fn(&[u8]);

/// Inputs a fuzzer crashed on, by target. Empty: no crash found yet.
const CRASHES: &[(&str, Target, &[u8])] = &[];

const EVENT: &str = r#"{"id":"53410bc6d47e87f3f18ecbc93c716b5a6ef8ee3805516b2ff4d155154a685b7c","pubkey":"fa984bd7dbb282f07e16e7ae87b26a2a7b9b90b7246a44771f0cf5ae58018f52","created_at":1681945005,"kind":1,"tags":[],"content":"x","sig":"3d2fbcefdfac2183601076c8f9e518e05620cefe74cba233684cce931a69b51befa329c3b5a2b3c6a2b5d1e0a2e3e8d0c7f6b5a4c3d2e1f0a9b8c7d6e5f4a3b2"}"#;

#[test]
fn crash_inputs_stay_fixed() {
    for (target, check, input) in CRASHES {
        println!("{target}: {} bytes", input.len());
        check(input);
    }
}

#[test]
fn relay_frames_of_odd_shapes() {
    let deep = "[".repeat(10_000);
    let inputs: Vec<Vec<u8>> = vec![
        deep.into_bytes(),
        br#"["NOTICE","\ud800"]"#.to_vec(),
        br#"["NOTICE","\u0000\u001f\"\\\/"]"#.to_vec(),
        br#"["COUNT","q",{"count":18446744073709551615,"approximate":true,"x":[1,{}]}]"#.to_vec(),
        br#"["COUNT","q",{"count":18446744073709551616}]"#.to_vec(),
        br#"["COUNT","q",{"count":1e3}]"#.to_vec(),
        br#"["OK","53410bc6d47e87f3f18ecbc93c716b5a6ef8ee3805516b2ff4d155154a685b7c",true]"#
            .to_vec(),
        br#"["EOSE","sub",null,{},[]]"#.to_vec(),
        br#"["CLOSED","sub"]"#.to_vec(),
        br#"["AUTH",""]"#.to_vec(),
        format!(r#"["EVENT","sub",{EVENT},"trailing"]"#).into_bytes(),
        format!(r#"["EVENT","",{EVENT}]"#).into_bytes(),
        b"\xff\xfe[\"NOTICE\",\"x\"]".to_vec(),
        b"[\"NOTICE\",\"x\"] ".to_vec(),
        b"[\"NOTICE\",\"x\"]]".to_vec(),
        Vec::new(),
    ];
    for input in &inputs {
        relay_frame(input);
        client_message(input);
    }
}

#[test]
fn client_messages_of_odd_shapes() {
    let inputs: Vec<Vec<u8>> = vec![
        br##"["REQ","s",{"#e":[],"#":["x"],"#ee":["y"],"limit":0,"since":0,"until":18446744073709551615}]"##.to_vec(),
        br#"["REQ","s",{"kinds":[65535,65536]}]"#.to_vec(),
        br#"["REQ","s",{"kinds":[-1]}]"#.to_vec(),
        br#"["REQ","s",{"ids":["53410BC6D47E87F3F18ECBC93C716B5A6EF8EE3805516B2FF4D155154A685B7C"]}]"#.to_vec(),
        br#"["REQ","s",{"authors":[""]}]"#.to_vec(),
        br#"["REQ","s",{"unknown":{"nested":[1,2,3]}}]"#.to_vec(),
        br#"["COUNT","s",{},{},{}]"#.to_vec(),
        br#"["CLOSE",""]"#.to_vec(),
        br#"["CLOSE","s","extra"]"#.to_vec(),
        format!(r#"["EVENT",{EVENT}]"#).into_bytes(),
        format!(r#"["AUTH",{EVENT},1]"#).into_bytes(),
    ];
    for input in &inputs {
        client_message(input);
        relay_frame(input);
    }
}

#[test]
fn event_ids_of_odd_contents_match_the_reference_serialization() {
    let head = r#"{"id":"53410bc6d47e87f3f18ecbc93c716b5a6ef8ee3805516b2ff4d155154a685b7c","pubkey":"fa984bd7dbb282f07e16e7ae87b26a2a7b9b90b7246a44771f0cf5ae58018f52","created_at":"#;
    let sig = r#""sig":"3d2fbcefdfac2183601076c8f9e518e05620cefe74cba233684cce931a69b51befa329c3b5a2b3c6a2b5d1e0a2e3e8d0c7f6b5a4c3d2e1f0a9b8c7d6e5f4a3b2"}"#;
    let cases = [
        (r#"0"#, r#"0"#, r#"[]"#, r#""""#),
        (
            "18446744073709551615",
            "65535",
            r#"[[]]"#,
            r#""\u0000\u0001\u001f\u007f\u2028\u2029""#,
        ),
        (
            "1",
            "1",
            r#"[["e","",""],["\"\\"]]"#,
            r#""\ud83d\ude00 é \/ \b\f\n\r\t""#,
        ),
        ("2", "3", r#"[["x"]]"#, r#""<>&'""#),
    ];
    for (created_at, kind, tags, content) in cases {
        let json =
            format!(r#"{head}{created_at},"kind":{kind},"tags":{tags},"content":{content},{sig}"#);
        assert!(Event::from_json(&json).is_ok(), "{json}");
        event_verify(json.as_bytes());
    }
    event_verify(EVENT.as_bytes());
}

#[test]
fn nip19_strings_of_odd_shapes() {
    let inputs: &[&[u8]] = &[
        b"npub1",
        b"NPUB180CVV07TJDRRGPA0J7J7TMNYL2YR6YR7L8J4S3EVF6U64TH6GKWSYJH6W6",
        b"npub180CVV07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwsyjh6w6",
        b"nprofile1qqqqqqqqqq",
        b"naddr1",
        b"nevent1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
        b"note1\xff",
        b"",
        b"1",
        b"ncryptsec1qqqq",
    ];
    for input in inputs {
        nip19_decode(input);
    }
}
