//! NIP-19 against the shared vectors (`../shared/testdata/nip19-vectors.json`: strings from the
//! NIP text, go-nostr, nostr-tools and rust-nostr), plus round trips and error cases.

mod common;

use actix_nostr::protocol::nip19::{self, Nip19Entity, Nip19Event, Nip19Profile};
use actix_nostr::protocol::{Error, EventId, Keys, Kind, PublicKey};
use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32, Bech32m, Hrp};
use serde_json::Value;

const PK_HEX: &str = "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d";
const ID_HEX: &str = "46d731680add2990efe1cc619dc9b8014feeb23261ab9dee50e9d11814de5a2b";
const NPUB: &str = "npub180cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwsyjh6w6";
const NSEC: &str = "nsec1vl029mgpspedva04g90vltkh6fvh240zqtv9k0t9af8935ke9laqsnlfe5";

fn pk() -> PublicKey {
    PublicKey::from_hex(PK_HEX).unwrap()
}

fn id() -> EventId {
    EventId::from_hex(ID_HEX).unwrap()
}

/// The message of an `Error::Nip19`; any other error fails the test.
fn nip19_message<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::Nip19(msg)) => msg,
        other => panic!("expected Error::Nip19, got {other:?}"),
    }
}

/// Raw bech32 (not NIP-19 checked) of arbitrary bytes, to build malformed inputs.
fn raw_bech32(hrp: &str, data: &[u8]) -> String {
    bech32::encode::<Bech32>(Hrp::parse(hrp).unwrap(), data).unwrap()
}

fn load_vectors() -> Option<Value> {
    let path = common::testdata_dir()?.join("nip19-vectors.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Some(serde_json::from_str(&text).expect("nip19-vectors.json is JSON"))
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector has no string {key:?}: {v}"))
}

fn relays_of(decoded: &Value) -> Vec<String> {
    decoded["relays"]
        .as_array()
        .map(|a| a.iter().map(|r| r.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn kind_of(v: &Value) -> Option<Kind> {
    v.as_u64()
        .map(|k| Kind::new(u16::try_from(k).expect("vector kind fits u16")))
}

/// The entity a valid vector describes, built from its expected fields alone. `None` for
/// prefixes this crate does not decode (`ncryptsec`).
fn expected_entity(v: &Value) -> Option<Nip19Entity> {
    let decoded = &v["decoded"];
    let entity = match str_field(v, "hrp") {
        "npub" => Nip19Entity::Npub(PublicKey::from_hex(str_field(v, "hex")).unwrap()),
        "nsec" => {
            let sk = EventId::from_hex(str_field(v, "hex")).unwrap(); // any 32-byte hex type
            Nip19Entity::Nsec(*sk.as_bytes())
        }
        "note" => Nip19Entity::Note(EventId::from_hex(str_field(v, "hex")).unwrap()),
        "nprofile" => Nip19Entity::Nprofile(Nip19Profile {
            public_key: PublicKey::from_hex(str_field(decoded, "pubkey")).unwrap(),
            relays: relays_of(decoded),
        }),
        "nevent" => Nip19Entity::Nevent(Nip19Event {
            id: EventId::from_hex(str_field(decoded, "id")).unwrap(),
            relays: relays_of(decoded),
            author: decoded["author"]
                .as_str()
                .map(|a| PublicKey::from_hex(a).unwrap()),
            kind: kind_of(&decoded["kind"]),
        }),
        "naddr" => Nip19Entity::Naddr {
            identifier: str_field(decoded, "identifier").to_owned(),
            public_key: PublicKey::from_hex(str_field(decoded, "author")).unwrap(),
            kind: kind_of(&decoded["kind"]).expect("naddr vector has a kind"),
            relays: relays_of(decoded),
        },
        "ncryptsec" => return None,
        other => panic!("vector with a prefix this test does not know: {other}"),
    };
    Some(entity)
}

/// Checks one decoder-specific function agrees with `decode` for the vector's prefix.
fn check_specific_decoder(s: &str, entity: &Nip19Entity) {
    match entity {
        Nip19Entity::Npub(pk) => assert_eq!(nip19::decode_npub(s).unwrap(), *pk),
        Nip19Entity::Nsec(sk) => assert_eq!(nip19::decode_nsec(s).unwrap(), *sk),
        Nip19Entity::Note(id) => assert_eq!(nip19::decode_note(s).unwrap(), *id),
        Nip19Entity::Nprofile(p) => assert_eq!(nip19::decode_nprofile(s).unwrap(), *p),
        Nip19Entity::Nevent(e) => assert_eq!(nip19::decode_nevent(s).unwrap(), *e),
        Nip19Entity::Naddr { .. } => {}
        other => panic!("unexpected entity {other:?}"),
    }
}

/// Whether the vector's TLV records are in the order this crate's encoder writes them
/// (types ascending). Entries without TLV are trivially canonical.
fn tlv_in_canonical_order(v: &Value) -> bool {
    let Some(tlv) = v["tlv"].as_array() else {
        return true;
    };
    let types: Vec<u64> = tlv.iter().map(|t| t["type"].as_u64().unwrap()).collect();
    types.windows(2).all(|w| w[0] <= w[1])
}

#[test]
fn valid_vectors_decode_to_their_values_and_reencode() {
    let Some(vectors) = load_vectors() else {
        return;
    };
    let valid = vectors["valid"].as_array().expect("a 'valid' array");
    assert!(!valid.is_empty());
    let (mut decoded, mut reencoded, mut reordered, mut unsupported) = (0, 0, 0, 0);
    for v in valid {
        let s = str_field(v, "bech32");
        let Some(expected) = expected_entity(v) else {
            // ncryptsec: checked as plain bech32 (checksum and payload), and `decode` must
            // refuse it by name rather than misread it.
            let checked = CheckedHrpstring::new::<Bech32>(s).expect("valid bech32");
            let payload: Vec<u8> = checked.byte_iter().collect();
            let payload_hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(payload_hex, str_field(v, "payload_hex"), "{s}");
            assert_eq!(raw_bech32(checked.hrp().as_str(), &payload), s);
            let msg = nip19_message(nip19::decode(s));
            assert!(msg.contains("not supported"), "{s}: {msg}");
            unsupported += 1;
            continue;
        };
        let got = nip19::decode(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(got, expected, "{s}");
        assert_eq!(got.prefix(), str_field(v, "hrp"));
        check_specific_decoder(s, &got);
        decoded += 1;

        if v["reencodes_identically"].as_bool() == Some(true) {
            let again = got.encode().unwrap();
            if tlv_in_canonical_order(v) {
                assert_eq!(again, s, "re-encoding {:?}", v["source"]);
                reencoded += 1;
            } else {
                // The vector's TLVs are out of the order every encoder writes; the same data
                // can only come back in canonical order.
                assert_ne!(again, s);
                assert_eq!(nip19::decode(&again).unwrap(), got);
                println!(
                    "note: {s} ({}) has TLVs out of order; re-encoded canonically as {again}",
                    v["source"]["repo"]
                );
                reordered += 1;
            }
        }

        if let Some(npub) = v["derived_npub"].as_str() {
            let keys = Keys::parse(s).unwrap();
            assert_eq!(
                keys.public_key().to_hex(),
                str_field(v, "derived_pubkey_hex")
            );
            assert_eq!(keys.npub(), npub);
            assert_eq!(keys.nsec(), s);
        }
    }
    println!(
        "nip19 valid vectors: {} checked ({decoded} decoded, {reencoded} re-encoded identically, \
         {reordered} re-encoded in canonical TLV order, {unsupported} unsupported prefix refused)",
        valid.len()
    );
}

#[test]
fn invalid_vectors_are_rejected_for_the_stated_reason() {
    let Some(vectors) = load_vectors() else {
        return;
    };
    let invalid = vectors["invalid"].as_array().expect("an 'invalid' array");
    assert!(!invalid.is_empty());
    for v in invalid {
        let s = str_field(v, "bech32");
        let why = str_field(v, "error");
        let msg = nip19_message(nip19::decode(s));
        // The vector's reason, reduced to a word our message must contain.
        let keyword = if why.contains("checksum") {
            "checksum"
        } else if why.contains("author") {
            "author"
        } else if why.contains("truncated") {
            "truncated"
        } else if why.contains("character") {
            "character"
        } else {
            ""
        };
        assert!(
            msg.contains(keyword),
            "{s}: rejected with {msg:?}, expected a reason like {why:?}"
        );
        // The prefix-specific decoder rejects it too.
        let specific = match s.split('1').next().unwrap_or_default() {
            "npub" => nip19::decode_npub(s).is_err(),
            "nsec" => nip19::decode_nsec(s).is_err(),
            "note" => nip19::decode_note(s).is_err(),
            "nprofile" => nip19::decode_nprofile(s).is_err(),
            "nevent" => nip19::decode_nevent(s).is_err(),
            _ => true,
        };
        assert!(specific, "{s}");
        println!("rejected ({why}): {msg}");
    }
    println!("nip19 invalid vectors: {} rejected", invalid.len());
}

#[test]
fn keys_parse_accepts_an_nsec_vector() {
    let keys = Keys::parse(NSEC).unwrap();
    assert_eq!(
        keys.secret_key_hex(),
        "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa"
    );
    assert_eq!(
        keys.npub(),
        "npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg"
    );
    assert_eq!(keys.nsec(), NSEC);
    assert!(Keys::parse(NPUB).is_err());
}

#[test]
fn bare_keys_and_ids_round_trip() {
    assert_eq!(nip19::encode_npub(&pk()), NPUB);
    assert_eq!(nip19::decode_npub(NPUB).unwrap(), pk());
    for bytes in [[0u8; 32], [0xff; 32], *pk().as_bytes()] {
        let npub = nip19::encode_npub(&PublicKey::from_bytes(bytes));
        assert!(npub.starts_with("npub1") && npub.len() == 63, "{npub}");
        assert_eq!(nip19::decode_npub(&npub).unwrap().as_bytes(), &bytes);
        let nsec = nip19::encode_nsec(&bytes);
        assert!(nsec.starts_with("nsec1"));
        assert_eq!(nip19::decode_nsec(&nsec).unwrap(), bytes);
        let note = nip19::encode_note(&EventId::from_bytes(bytes));
        assert!(note.starts_with("note1"));
        assert_eq!(nip19::decode_note(&note).unwrap().as_bytes(), &bytes);
    }
}

#[test]
fn nprofile_round_trips_with_and_without_relays() {
    for relays in [
        vec![],
        vec!["wss://r.x.com".to_owned(), "wss://nos.lol/".to_owned()],
    ] {
        let profile = Nip19Profile {
            public_key: pk(),
            relays,
        };
        let s = nip19::encode_nprofile(&profile).unwrap();
        assert!(s.starts_with("nprofile1"));
        assert_eq!(nip19::decode_nprofile(&s).unwrap(), profile);
        assert_eq!(nip19::decode(&s).unwrap(), Nip19Entity::Nprofile(profile));
    }
}

#[test]
fn nevent_round_trips_with_every_optional_field() {
    let full = Nip19Event {
        id: id(),
        relays: vec!["wss://relay.example.com".to_owned()],
        author: Some(pk()),
        kind: Some(Kind::new(65535)),
    };
    let bare = Nip19Event {
        id: id(),
        relays: vec![],
        author: None,
        kind: None,
    };
    let kind_only = Nip19Event {
        kind: Some(Kind::TEXT_NOTE),
        ..bare.clone()
    };
    for event in [full, bare, kind_only] {
        let s = nip19::encode_nevent(&event).unwrap();
        assert!(s.starts_with("nevent1"));
        assert_eq!(nip19::decode_nevent(&s).unwrap(), event);
        assert_eq!(nip19::decode(&s).unwrap(), Nip19Entity::Nevent(event));
    }
}

#[test]
fn naddr_round_trips_including_an_empty_identifier() {
    for identifier in ["", "banana", "ünïcødé d-tag"] {
        let entity = Nip19Entity::Naddr {
            identifier: identifier.to_owned(),
            public_key: pk(),
            kind: Kind::new(30023),
            relays: vec!["wss://nostr.banana.com".to_owned()],
        };
        let s = entity.encode().unwrap();
        assert!(s.starts_with("naddr1"));
        assert_eq!(nip19::decode(&s).unwrap(), entity);
        assert_eq!(s.parse::<Nip19Entity>().unwrap(), entity);
    }
}

#[test]
fn wrong_prefix_names_both_prefixes() {
    let msg = nip19_message(nip19::decode_npub(NSEC));
    assert!(msg.contains("expected npub, found nsec"), "{msg}");
    let msg = nip19_message(nip19::decode_nsec(NPUB));
    assert!(msg.contains("expected nsec, found npub"), "{msg}");
    let msg = nip19_message(nip19::decode_note(NPUB));
    assert!(msg.contains("expected note, found npub"), "{msg}");
    let nprofile = nip19::encode_nprofile(&Nip19Profile {
        public_key: pk(),
        relays: vec![],
    })
    .unwrap();
    let msg = nip19_message(nip19::decode_nevent(&nprofile));
    assert!(msg.contains("expected nevent, found nprofile"), "{msg}");
}

#[test]
fn case_rules_follow_bech32() {
    let upper = NPUB.to_uppercase();
    assert_eq!(nip19::decode_npub(&upper).unwrap(), pk());
    let mixed = format!("{}{}", &NPUB[..10], NPUB[10..].to_uppercase());
    let msg = nip19_message(nip19::decode_npub(&mixed));
    assert!(msg.contains("mixed"), "{msg}");
}

#[test]
fn bech32m_and_bad_checksums_are_rejected() {
    let m = bech32::encode::<Bech32m>(Hrp::parse("npub").unwrap(), pk().as_bytes()).unwrap();
    let msg = nip19_message(nip19::decode_npub(&m));
    assert!(msg.contains("bech32m"), "{msg}");
    let mut typo = NPUB.to_owned();
    typo.replace_range(10..11, "q");
    let msg = nip19_message(nip19::decode(&typo));
    assert!(msg.contains("checksum"), "{msg}");
}

#[test]
fn malformed_inputs_say_what_is_wrong() {
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "separator"),
        ("npub".to_owned(), "separator"),
        ("npub1".to_owned(), "too short"),
        ("npub1qqqqqq".to_owned(), "checksum"),
        (format!("{NPUB} "), "outside US-ASCII"),
        ("npub1b".to_owned(), "bech32 character"),
        (raw_bech32("npub", &[1; 31]), "32 bytes, found 31"),
        (raw_bech32("note", &[1; 33]), "32 bytes, found 33"),
        (raw_bech32("nrelay", b"\x00\x03wss"), "deprecated"),
        (raw_bech32("lnbc", &[1; 32]), "unknown prefix"),
        (raw_bech32("nevent", &[0, 32]), "declares 32 bytes, 0 left"),
        (
            raw_bech32("nevent", &[1, 3, b'w', b's', b's']),
            "no event id",
        ),
        (raw_bech32("nprofile", &[0, 31]), "truncated"),
        (
            raw_bech32("nprofile", &[0, 3, 1, 2, 3]),
            "public key TLV must be 32 bytes",
        ),
        (
            raw_bech32(
                "nprofile",
                &[[0, 32].as_slice(), pk().as_bytes(), &[1, 2, 0xc3, 0xa9]].concat(),
            ),
            "not ASCII",
        ),
        (
            raw_bech32(
                "nevent",
                &[[0, 32].as_slice(), id().as_bytes(), &[3, 4, 0, 1, 0, 0]].concat(),
            ),
            "out of range",
        ),
        (
            raw_bech32(
                "nevent",
                &[[0, 32].as_slice(), id().as_bytes(), &[3, 2, 0, 1]].concat(),
            ),
            "kind TLV must be 4 bytes",
        ),
        (
            raw_bech32(
                "nevent",
                &[
                    [0, 32].as_slice(),
                    id().as_bytes(),
                    &[0, 32],
                    id().as_bytes(),
                ]
                .concat(),
            ),
            "twice",
        ),
        (
            raw_bech32("naddr", &[0, 1, b'x', 3, 4, 0, 0, 0, 1]),
            "no author",
        ),
        (
            raw_bech32(
                "naddr",
                &[[0, 0, 2, 32].as_slice(), pk().as_bytes()].concat(),
            ),
            "no kind",
        ),
        (
            raw_bech32(
                "naddr",
                &[
                    [0, 1, 0xff, 2, 32].as_slice(),
                    pk().as_bytes(),
                    &[3, 4, 0, 0, 0, 1],
                ]
                .concat(),
            ),
            "not UTF-8",
        ),
        ("n".repeat(5001), "limit of 5000"),
    ];
    for (input, expected) in cases {
        let msg = nip19_message(nip19::decode(&input));
        assert!(
            msg.contains(expected),
            "{input:?}: {msg:?} lacks {expected:?}"
        );
    }
}

#[test]
fn unknown_tlv_types_are_ignored() {
    let data = [
        [9u8, 3, 1, 2, 3].as_slice(),
        &[0, 32],
        pk().as_bytes(),
        &[2, 1, 7], // author is not a field of nprofile: unknown there
        &[200, 0],
    ]
    .concat();
    let s = raw_bech32("nprofile", &data);
    let profile = nip19::decode_nprofile(&s).unwrap();
    assert_eq!(profile.public_key, pk());
    assert!(profile.relays.is_empty());
}

#[test]
fn long_strings_up_to_5000_characters_are_accepted() {
    let relays: Vec<String> = (0..40)
        .map(|i| format!("wss://relay-number-{i:02}.example.com"))
        .collect();
    let profile = Nip19Profile {
        public_key: pk(),
        relays,
    };
    let s = nip19::encode_nprofile(&profile).unwrap();
    assert!(s.len() > 1023, "{}", s.len());
    assert_eq!(nip19::decode_nprofile(&s).unwrap(), profile);

    let too_many = Nip19Profile {
        public_key: pk(),
        relays: vec!["wss://".to_owned() + &"a".repeat(200); 20],
    };
    let msg = nip19_message(nip19::encode_nprofile(&too_many));
    assert!(msg.contains("5000"), "{msg}");
}

#[test]
fn encoders_reject_what_decoders_would() {
    let long = Nip19Event {
        id: id(),
        relays: vec!["wss://".to_owned() + &"a".repeat(250)],
        author: None,
        kind: None,
    };
    assert!(nip19_message(nip19::encode_nevent(&long)).contains("255"));
    let unicode = Nip19Profile {
        public_key: pk(),
        relays: vec!["wss://rélay.example".to_owned()],
    };
    assert!(nip19_message(nip19::encode_nprofile(&unicode)).contains("not ASCII"));
    let msg = nip19_message(nip19::encode_naddr(
        &"x".repeat(256),
        &pk(),
        Kind::new(30023),
        &[],
    ));
    assert!(msg.contains("identifier"), "{msg}");
}

#[test]
fn nsec_debug_hides_the_secret() {
    let sk = nip19::decode_nsec(NSEC).unwrap();
    let entity = nip19::decode(NSEC).unwrap();
    assert_eq!(entity, Nip19Entity::Nsec(sk));
    let debug = format!("{entity:?}");
    assert!(
        !debug.contains("67dea2ed") && !debug.contains("103"),
        "{debug}"
    );
    assert!(debug.contains("redacted"));
}

/// Every truncation and many one-character edits of every vector: errors are fine, panics
/// are not.
#[test]
fn mangled_vectors_never_panic() {
    let Some(vectors) = load_vectors() else {
        return;
    };
    let mut inputs = 0;
    for v in vectors["valid"]
        .as_array()
        .into_iter()
        .chain(vectors["invalid"].as_array())
        .flatten()
    {
        let s = str_field(v, "bech32");
        let chars: Vec<char> = s.chars().collect();
        for cut in 0..chars.len() {
            let _ = nip19::decode(&chars[..cut].iter().collect::<String>());
            for replacement in ['q', 'p', 'Q', '1', 'ã'] {
                let mut edited = chars.clone();
                edited[cut] = replacement;
                let _ = nip19::decode(&edited.iter().collect::<String>());
                inputs += 1;
            }
        }
    }
    println!("decoded {inputs} mangled strings without panicking");
}
