//! Wire messages, filters and NIP-42 authentication events.
//!
//! * every [`ClientMessage`] and [`RelayFrame`] variant survives `as_json` → `from_json`;
//! * the JSON arrays printed in NIP-01, NIP-42 and NIP-45 parse to what they mean (when
//!   `../shared/nips` is present, each string is also checked to appear verbatim there);
//! * extra trailing elements are ignored; every way a frame can be wrong gives the precise
//!   [`Error`] variant;
//! * [`Filter`] JSON and NIP-01 matching; [`nip42`] event building and checking.
mod common;

use actix_nostr::protocol::nip42::{self, AuthError};
use actix_nostr::protocol::{
    ClientMessage, CountResult, Error, Event, EventBuilder, EventId, Filter, Keys, Kind, PublicKey,
    RelayFrame, SubscriptionId, Tag, Timestamp,
};

const PK_HEX: &str = "f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9";
const ID_HEX: &str = "5c83da77af1dec6d7289834998ad7aafbd9e2191396d75ec3cc27f5a77226f36";

/// The public BIP-340 test key 3 (never a real user's key).
fn test_keys() -> Keys {
    Keys::parse("0000000000000000000000000000000000000000000000000000000000000003")
        .expect("test key")
}

fn note(content: &str) -> Event {
    EventBuilder::text_note(content)
        .tag(Tag::new(["t", "nostr"]))
        .tag(Tag::new(["e", ID_HEX, "wss://nostr.example.com"]))
        .created_at(Timestamp::from_secs(1_700_000_000))
        .sign(&test_keys())
}

fn id(hex: &str) -> EventId {
    hex.parse().expect("event id hex")
}

fn pk(hex: &str) -> PublicKey {
    hex.parse().expect("pubkey hex")
}

fn sub(s: &str) -> SubscriptionId {
    SubscriptionId::new(s)
}

fn client_round_trip(message: ClientMessage) {
    let json = message.as_json();
    // `as_json` writes events by hand; it must be what the `Serialize` impl writes.
    assert_eq!(json, serde_json::to_string(&message).expect("serializes"));
    assert_eq!(
        ClientMessage::from_json(&json).as_ref(),
        Ok(&message),
        "{json}"
    );
    assert_eq!(
        ClientMessage::from_slice(json.as_bytes()),
        Ok(message.clone())
    );
    // The wire form is an array whose first element is the verb.
    let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(value[0], message.verb(), "{json}");
}

fn relay_round_trip(frame: RelayFrame) {
    let json = frame.as_json();
    assert_eq!(RelayFrame::from_json(&json).as_ref(), Ok(&frame), "{json}");
    assert_eq!(RelayFrame::from_slice(json.as_bytes()), Ok(frame.clone()));
    let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(value[0], frame.verb(), "{json}");
}

// ---- Round trips -------------------------------------------------------------------------

#[test]
fn every_client_message_round_trips() {
    let filter_a = Filter::new().kind(Kind::TEXT_NOTE).limit(10);
    let filter_b = Filter::new()
        .author(pk(PK_HEX))
        .since(Timestamp::from_secs(1))
        .until(Timestamp::from_secs(2));
    let filter_c = Filter::new()
        .id(id(ID_HEX))
        .tag('e', [ID_HEX])
        .tag('p', [PK_HEX])
        .tag('t', ["nostr", "rust"]);
    let all = [
        ClientMessage::event(note("hello")),
        ClientMessage::req(sub("sub1"), vec![filter_a.clone()]),
        ClientMessage::req(
            sub("sub3"),
            vec![filter_a.clone(), filter_b.clone(), filter_c.clone()],
        ),
        ClientMessage::Close(sub("sub1")),
        ClientMessage::Auth(Box::new(nip42::auth_event(
            &test_keys(),
            "wss://relay.example.com/",
            "challengestringhere",
        ))),
        ClientMessage::Count {
            subscription_id: sub("q1"),
            filters: vec![filter_a],
        },
        ClientMessage::Count {
            subscription_id: sub("q3"),
            filters: vec![Filter::new(), filter_b, filter_c],
        },
    ];
    let verbs: Vec<&str> = all.iter().map(ClientMessage::verb).collect();
    assert_eq!(
        verbs,
        ["EVENT", "REQ", "REQ", "CLOSE", "AUTH", "COUNT", "COUNT"]
    );
    for message in all {
        client_round_trip(message);
    }
    // The exact wire form of the small ones.
    assert_eq!(ClientMessage::Close(sub("s")).as_json(), r#"["CLOSE","s"]"#);
    assert_eq!(
        ClientMessage::req(
            sub("s"),
            vec![Filter::new(), Filter::new().kind(Kind::new(7))]
        )
        .as_json(),
        r#"["REQ","s",{},{"kinds":[7]}]"#
    );
    let event = note("x");
    assert_eq!(
        ClientMessage::event(event.clone()).as_json(),
        format!(r#"["EVENT",{}]"#, event.as_json())
    );
    // What the connection writes for a publish, without building the message.
    assert_eq!(
        ClientMessage::event_json(&event),
        ClientMessage::event(event).as_json()
    );
}

#[test]
fn every_relay_frame_round_trips() {
    let all = [
        RelayFrame::Event {
            subscription_id: sub("sub1"),
            event: Box::new(note("hello \"relay\"\n")),
        },
        RelayFrame::Ok {
            event_id: id(ID_HEX),
            accepted: true,
            message: String::new(),
        },
        RelayFrame::Ok {
            event_id: id(ID_HEX),
            accepted: false,
            message: "blocked: you are banned from posting here".into(),
        },
        RelayFrame::Eose(sub("sub1")),
        RelayFrame::Closed {
            subscription_id: sub("sub1"),
            message: "error: shutting down idle subscription".into(),
        },
        RelayFrame::Notice("hello".into()),
        RelayFrame::Auth {
            challenge: "challengestringhere".into(),
        },
        RelayFrame::Count {
            subscription_id: sub("q"),
            result: CountResult {
                count: 5,
                approximate: false,
            },
        },
        RelayFrame::Count {
            subscription_id: sub("q"),
            result: CountResult {
                count: 93_412_452,
                approximate: true,
            },
        },
    ];
    let verbs: Vec<&str> = all.iter().map(RelayFrame::verb).collect();
    assert_eq!(
        verbs,
        ["EVENT", "OK", "OK", "EOSE", "CLOSED", "NOTICE", "AUTH", "COUNT", "COUNT"]
    );
    for frame in all.clone() {
        relay_round_trip(frame);
    }
    let wire: Vec<String> = all[1..].iter().map(RelayFrame::as_json).collect();
    assert_eq!(
        wire,
        [
            format!(r#"["OK","{ID_HEX}",true,""]"#),
            format!(r#"["OK","{ID_HEX}",false,"blocked: you are banned from posting here"]"#),
            r#"["EOSE","sub1"]"#.into(),
            r#"["CLOSED","sub1","error: shutting down idle subscription"]"#.into(),
            r#"["NOTICE","hello"]"#.into(),
            r#"["AUTH","challengestringhere"]"#.into(),
            r#"["COUNT","q",{"count":5}]"#.into(),
            r#"["COUNT","q",{"count":93412452,"approximate":true}]"#.into(),
        ]
    );
}

// ---- The strings printed in the NIPs -------------------------------------------------------

/// The text of `../shared/nips/<n>.md`, if the shared folder is there.
fn nip_text(n: &str) -> Option<String> {
    let path = common::testdata_dir()?
        .join("..")
        .join("nips")
        .join(format!("{n}.md"));
    std::fs::read_to_string(&path).ok()
}

/// A string copied from a NIP, with its placeholders (`<query_id>`, `"b1a649ebe8..."`)
/// replaced by concrete values.
struct Quoted {
    nip: &'static str,
    text: &'static str,
}

impl Quoted {
    fn fill(&self, substitutions: &[(&str, &str)]) -> String {
        let mut s = self.text.to_owned();
        for (placeholder, value) in substitutions {
            assert!(
                s.contains(placeholder),
                "{placeholder} not in {}",
                self.text
            );
            s = s.replace(placeholder, value);
        }
        s
    }
}

/// Checks that each quoted string appears verbatim in its NIP (when `../shared/nips` exists).
fn assert_quoted(quotes: &[&Quoted]) {
    for q in quotes {
        let Some(text) = nip_text(q.nip) else { return };
        assert!(
            text.contains(q.text),
            "not found verbatim in NIP-{}: {}",
            q.nip,
            q.text
        );
    }
}

const fn q(nip: &'static str, text: &'static str) -> Quoted {
    Quoted { nip, text }
}

/// The 64-hex id we put where a NIP writes `"b1a649ebe8..."`.
fn full_id(prefix: &str) -> String {
    format!("{prefix:0<64}")
}

#[test]
fn nip01_ok_and_closed_examples_parse() {
    const OK: [Quoted; 11] = [
        q("01", r#"["OK", "b1a649ebe8...", true, ""]"#),
        q(
            "01",
            r#"["OK", "b1a649ebe8...", true, "pow: difficulty 25>=24"]"#,
        ),
        q(
            "01",
            r#"["OK", "b1a649ebe8...", true, "duplicate: already have this event"]"#,
        ),
        q(
            "01",
            r#"["OK", "b1a649ebe8...", false, "blocked: you are banned from posting here"]"#,
        ),
        q(
            "01",
            r#"["OK", "b1a649ebe8...", false, "blocked: please register your pubkey at https://my-expensive-relay.example.com"]"#,
        ),
        q(
            "01",
            r#"["OK", "b1a649ebe8...", false, "rate-limited: slow down there chief"]"#,
        ),
        q(
            "01",
            r#"["OK", "b1a649ebe8...", false, "invalid: event creation date is too far off from the current time"]"#,
        ),
        q(
            "01",
            r#"["OK", "b1a649ebe8...", false, "pow: difficulty 26 is less than 30"]"#,
        ),
        q(
            "01",
            r#"["OK", "b1a649ebe8...", false, "restricted: not allowed to write."]"#,
        ),
        q(
            "01",
            r#"["OK", "b1a649ebe8...", false, "error: could not connect to the database"]"#,
        ),
        q(
            "01",
            r#"["OK", "b1a649ebe8...", false, "mute: no one was listening to your ephemeral event and it wasn't handled in any way, it was ignored"]"#,
        ),
    ];
    const CLOSED: [Quoted; 3] = [
        q(
            "01",
            r#"["CLOSED", "sub1", "unsupported: filter contains unknown elements"]"#,
        ),
        q(
            "01",
            r#"["CLOSED", "sub1", "error: could not connect to the database"]"#,
        ),
        q(
            "01",
            r#"["CLOSED", "sub1", "error: shutting down idle subscription"]"#,
        ),
    ];
    assert_quoted(&OK.iter().chain(&CLOSED).collect::<Vec<_>>());

    let event_id = full_id("b1a649ebe8");
    for quote in &OK {
        // As printed, the id is an abbreviation: not 64 hex characters.
        assert!(
            matches!(RelayFrame::from_json(quote.text), Err(Error::Malformed(_))),
            "{}",
            quote.text
        );
        let json = quote.fill(&[("b1a649ebe8...", &event_id)]);
        let expected: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        assert_eq!(
            RelayFrame::from_json(&json),
            Ok(RelayFrame::Ok {
                event_id: id(&event_id),
                accepted: expected[2].as_bool().expect("bool"),
                message: expected[3].as_str().expect("str").to_owned(),
            }),
            "{json}"
        );
    }
    for quote in &CLOSED {
        let expected: serde_json::Value = serde_json::from_str(quote.text).expect("JSON");
        assert_eq!(
            RelayFrame::from_json(quote.text),
            Ok(RelayFrame::Closed {
                subscription_id: sub("sub1"),
                message: expected[2].as_str().expect("str").to_owned(),
            })
        );
    }
}

#[test]
fn nip01_message_forms_parse() {
    let event = note("from NIP-01");
    let event_json = event.as_json();
    let filter1 = r#"{"kinds":[1],"authors":["f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9"]}"#;
    let filter2 = r##"{"#e":["5c83da77af1dec6d7289834998ad7aafbd9e2191396d75ec3cc27f5a77226f36"],"since":1,"until":2,"limit":3}"##;
    let forms = [
        q("01", r#"["EVENT", <event JSON as defined above>]"#),
        q(
            "01",
            r#"["REQ", <subscription_id>, <filters1>, <filters2>, ...]"#,
        ),
        q("01", r#"["CLOSE", <subscription_id>]"#),
        q(
            "01",
            r#"["EVENT", <subscription_id>, <event JSON as defined above>]"#,
        ),
        q("01", r#"["OK", <event_id>, <true|false>, <message>]"#),
        q("01", r#"["EOSE", <subscription_id>]"#),
        q("01", r#"["CLOSED", <subscription_id>, <message>]"#),
        q("01", r#"["NOTICE", <message>]"#),
        q(
            "01",
            r##"{"#e": ["5c83da77af1dec6d7289834998ad7aafbd9e2191396d75ec3cc27f5a77226f36"]}"##,
        ),
        q("01", r#"{"kinds":[0],"authors":[<hex-key>]}"#),
    ];
    assert_quoted(&forms.iter().collect::<Vec<_>>());
    let subs: &[(&str, &str)] = &[
        ("<event JSON as defined above>", &event_json),
        ("<subscription_id>", r#""sub1""#),
    ];

    assert_eq!(
        ClientMessage::from_json(&forms[0].fill(&subs[..1])),
        Ok(ClientMessage::event(event.clone()))
    );
    let filter_a = Filter::new().kind(Kind::TEXT_NOTE).author(pk(PK_HEX));
    let filter_b = Filter::new()
        .tag('e', [ID_HEX])
        .since(Timestamp::from_secs(1))
        .until(Timestamp::from_secs(2))
        .limit(3);
    assert_eq!(
        ClientMessage::from_json(&forms[1].fill(&[
            ("<subscription_id>", r#""sub1""#),
            ("<filters1>", filter1),
            ("<filters2>", filter2),
            (", ...", ""),
        ])),
        Ok(ClientMessage::req(sub("sub1"), vec![filter_a, filter_b]))
    );
    assert_eq!(
        ClientMessage::from_json(&forms[2].fill(&subs[1..])),
        Ok(ClientMessage::Close(sub("sub1")))
    );
    assert_eq!(
        RelayFrame::from_json(&forms[3].fill(subs)),
        Ok(RelayFrame::Event {
            subscription_id: sub("sub1"),
            event: Box::new(event.clone()),
        })
    );
    let ok_id = format!("\"{}\"", event.id);
    assert_eq!(
        RelayFrame::from_json(&forms[4].fill(&[
            ("<event_id>", &ok_id),
            ("<true|false>", "false"),
            ("<message>", r#""invalid: bad signature""#),
        ])),
        Ok(RelayFrame::Ok {
            event_id: event.id,
            accepted: false,
            message: "invalid: bad signature".into(),
        })
    );
    assert_eq!(
        RelayFrame::from_json(&forms[5].fill(&subs[1..])),
        Ok(RelayFrame::Eose(sub("sub1")))
    );
    assert_eq!(
        RelayFrame::from_json(&forms[6].fill(&[
            ("<subscription_id>", r#""sub1""#),
            ("<message>", r#""error: shutting down idle subscription""#),
        ])),
        Ok(RelayFrame::Closed {
            subscription_id: sub("sub1"),
            message: "error: shutting down idle subscription".into(),
        })
    );
    assert_eq!(
        RelayFrame::from_json(&forms[7].fill(&[("<message>", r#""hello""#)])),
        Ok(RelayFrame::Notice("hello".into()))
    );
    assert_eq!(
        serde_json::from_str::<Filter>(forms[8].text).expect("filter"),
        Filter::new().tag('e', [ID_HEX])
    );
    let pk_json = format!("\"{PK_HEX}\"");
    assert_eq!(
        serde_json::from_str::<Filter>(&forms[9].fill(&[("<hex-key>", &pk_json)])).expect("filter"),
        Filter::new().kind(Kind::METADATA).author(pk(PK_HEX))
    );
}

#[test]
fn nip42_messages_parse() {
    let quotes = [
        q("42", r#"["AUTH", <challenge-string>]"#),
        q("42", r#"["AUTH", <signed-event-json>]"#),
        q("42", r#"["AUTH", "<challenge>"]"#),
        q("42", r#"["REQ", "sub_1", {"kinds": [4]}]"#),
        q(
            "42",
            r#"["CLOSED", "sub_1", "auth-required: we can't serve DMs to unauthenticated users"]"#,
        ),
        q("42", r#"["OK", "abcdef...", true, ""]"#),
        q(
            "42",
            r#"["OK", "012345...", false, "auth-required: we only accept events from registered users"]"#,
        ),
        q("42", r#"["relay", "wss://relay.example.com/"]"#),
        q("42", r#"["challenge", "challengestringhere"]"#),
    ];
    assert_quoted(&quotes.iter().collect::<Vec<_>>());

    assert_eq!(
        RelayFrame::from_json(&quotes[0].fill(&[("<challenge-string>", r#""c-123""#)])),
        Ok(RelayFrame::Auth {
            challenge: "c-123".into()
        })
    );
    let auth = nip42::auth_event(
        &test_keys(),
        "wss://relay.example.com/",
        "challengestringhere",
    );
    assert_eq!(
        ClientMessage::from_json(&quotes[1].fill(&[("<signed-event-json>", &auth.as_json())])),
        Ok(ClientMessage::Auth(Box::new(auth.clone())))
    );
    // The same form, by the other side, is the other message.
    assert!(matches!(
        ClientMessage::from_json(quotes[2].text),
        Err(Error::Malformed(_))
    ));
    assert_eq!(
        RelayFrame::from_json(quotes[2].text),
        Ok(RelayFrame::Auth {
            challenge: "<challenge>".into()
        })
    );
    assert_eq!(
        ClientMessage::from_json(quotes[3].text),
        Ok(ClientMessage::req(
            sub("sub_1"),
            vec![Filter::new().kind(Kind::new(4))]
        ))
    );
    assert_eq!(
        RelayFrame::from_json(quotes[4].text),
        Ok(RelayFrame::Closed {
            subscription_id: sub("sub_1"),
            message: "auth-required: we can't serve DMs to unauthenticated users".into(),
        })
    );
    let abcdef = full_id("abcdef");
    assert_eq!(
        RelayFrame::from_json(&quotes[5].fill(&[("abcdef...", &abcdef)])),
        Ok(RelayFrame::Ok {
            event_id: id(&abcdef),
            accepted: true,
            message: String::new(),
        })
    );
    let id012345 = full_id("012345");
    assert_eq!(
        RelayFrame::from_json(&quotes[6].fill(&[("012345...", &id012345)])),
        Ok(RelayFrame::Ok {
            event_id: id(&id012345),
            accepted: false,
            message: "auth-required: we only accept events from registered users".into(),
        })
    );
    // The canonical authentication event carries exactly the two tags of the NIP.
    let tags: Vec<serde_json::Value> = auth
        .tags
        .iter()
        .map(|t| serde_json::to_value(t).expect("tag"))
        .collect();
    let expected: Vec<serde_json::Value> = [quotes[7].text, quotes[8].text]
        .iter()
        .map(|s| serde_json::from_str(s).expect("JSON"))
        .collect();
    assert_eq!(tags, expected);
    assert_eq!(auth.kind.as_u16(), 22242);
}

#[test]
fn nip45_messages_parse() {
    let quotes = [
        q("45", r#"["COUNT", <query_id>, <filters JSON>...]"#),
        q("45", r#"["COUNT", <query_id>, {"count": <integer>}]"#),
        q(
            "45",
            r#"["COUNT", <subscription_id>, {"count": <integer>, "hll": "<hex>"}]"#,
        ),
        q(
            "45",
            r#"["COUNT", <query_id>, {"kinds": [1, 7], "authors": [<pubkey>]}]"#,
        ),
        q("45", r#"["COUNT", <query_id>, {"count": 5}]"#),
        q("45", r#"["COUNT", <query_id>, {"kinds": [1]}]"#),
        q(
            "45",
            r#"["COUNT", <query_id>, {"count": 93412452, "approximate": true}]"#,
        ),
        q(
            "45",
            r##"["COUNT", <subscription_id>, {"kinds": [3], "#p": [<pubkey>]}]"##,
        ),
        q(
            "45",
            r#"["CLOSED", <query_id>, "auth-required: cannot count other people's DMs"]"#,
        ),
        q("45", r##"{"#e": ["<id>"], "kinds": [7]}"##),
        q("45", r##"{"#q": ["<id>"], "kinds": [1, 1111]}"##),
        q("45", r##"{"#E": ["<id>"], "kinds": [1111]}"##),
    ];
    assert_quoted(&quotes.iter().collect::<Vec<_>>());
    let query = ("<query_id>", r#""q1""#);
    let sub_id = ("<subscription_id>", r#""q1""#);
    let pk_json = format!("\"{PK_HEX}\"");
    let pubkey = ("<pubkey>", pk_json.as_str());
    let count = |n: u64, approximate: bool| {
        Ok(RelayFrame::Count {
            subscription_id: sub("q1"),
            result: CountResult {
                count: n,
                approximate,
            },
        })
    };
    let count_req = |filters: Vec<Filter>| {
        Ok(ClientMessage::Count {
            subscription_id: sub("q1"),
            filters,
        })
    };

    assert_eq!(
        ClientMessage::from_json(&quotes[0].fill(&[
            query,
            ("<filters JSON>...", r##"{"kinds":[7]},{"#e":["x"]}"##)
        ])),
        count_req(vec![
            Filter::new().kind(Kind::REACTION),
            Filter::new().tag('e', ["x"])
        ])
    );
    assert_eq!(
        RelayFrame::from_json(&quotes[1].fill(&[query, ("<integer>", "42")])),
        count(42, false)
    );
    // The HyperLogLog registers are not kept; the count still parses.
    assert_eq!(
        RelayFrame::from_json(&quotes[2].fill(&[
            sub_id,
            ("<integer>", "16578"),
            ("<hex>", "0607070505060806"),
        ])),
        count(16578, false)
    );
    assert_eq!(
        ClientMessage::from_json(&quotes[3].fill(&[query, pubkey])),
        count_req(vec![Filter::new()
            .kinds([Kind::TEXT_NOTE, Kind::REACTION])
            .author(pk(PK_HEX))])
    );
    assert_eq!(
        RelayFrame::from_json(&quotes[4].fill(&[query])),
        count(5, false)
    );
    assert_eq!(
        ClientMessage::from_json(&quotes[5].fill(&[query])),
        count_req(vec![Filter::new().kind(Kind::TEXT_NOTE)])
    );
    assert_eq!(
        RelayFrame::from_json(&quotes[6].fill(&[query])),
        count(93_412_452, true)
    );
    assert_eq!(
        ClientMessage::from_json(&quotes[7].fill(&[sub_id, pubkey])),
        count_req(vec![Filter::new().kind(Kind::CONTACTS).tag('p', [PK_HEX])])
    );
    assert_eq!(
        RelayFrame::from_json(&quotes[8].fill(&[query])),
        Ok(RelayFrame::Closed {
            subscription_id: sub("q1"),
            message: "auth-required: cannot count other people's DMs".into(),
        })
    );
    let id_sub = ("<id>", ID_HEX);
    assert_eq!(
        serde_json::from_str::<Filter>(&quotes[9].fill(&[id_sub])).expect("filter"),
        Filter::new().tag('e', [ID_HEX]).kind(Kind::REACTION)
    );
    assert_eq!(
        serde_json::from_str::<Filter>(&quotes[10].fill(&[id_sub])).expect("filter"),
        Filter::new()
            .tag('q', [ID_HEX])
            .kinds([Kind::TEXT_NOTE, Kind::new(1111)])
    );
    // Tag letters are case-sensitive: `#E` is not `#e`.
    let upper = serde_json::from_str::<Filter>(&quotes[11].fill(&[id_sub])).expect("filter");
    assert_eq!(
        upper,
        Filter::new().tag('E', [ID_HEX]).kind(Kind::new(1111))
    );
    assert_ne!(
        upper,
        Filter::new().tag('e', [ID_HEX]).kind(Kind::new(1111))
    );
}

// ---- Tolerance ---------------------------------------------------------------------------

#[test]
fn extra_trailing_elements_are_ignored() {
    let event = note("trailing");
    let ev = event.as_json();
    let extra = r#""future",1,null,{"x":[1,{"y":"]"}]},[[]]"#;
    let relay = [
        (
            format!(r#"["EVENT","s",{ev},{extra}]"#),
            RelayFrame::Event {
                subscription_id: sub("s"),
                event: Box::new(event.clone()),
            },
        ),
        (
            format!(r#"["OK","{ID_HEX}",true,"",{extra}]"#),
            RelayFrame::Ok {
                event_id: id(ID_HEX),
                accepted: true,
                message: String::new(),
            },
        ),
        (
            format!(r#"["EOSE","s",{extra}]"#),
            RelayFrame::Eose(sub("s")),
        ),
        (
            format!(r#"["CLOSED","s","error: x",{extra}]"#),
            RelayFrame::Closed {
                subscription_id: sub("s"),
                message: "error: x".into(),
            },
        ),
        (
            format!(r#"["NOTICE","n",{extra}]"#),
            RelayFrame::Notice("n".into()),
        ),
        (
            format!(r#"["AUTH","c",{extra}]"#),
            RelayFrame::Auth {
                challenge: "c".into(),
            },
        ),
        (
            format!(r#"["COUNT","q",{{"count":3,"hll":"00"}},{extra}]"#),
            RelayFrame::Count {
                subscription_id: sub("q"),
                result: CountResult {
                    count: 3,
                    approximate: false,
                },
            },
        ),
    ];
    for (json, expected) in relay {
        assert_eq!(RelayFrame::from_json(&json), Ok(expected), "{json}");
    }
    let client = [
        (
            format!(r#"["EVENT",{ev},{extra}]"#),
            ClientMessage::event(event.clone()),
        ),
        (
            format!(r#"["CLOSE","s",{extra}]"#),
            ClientMessage::Close(sub("s")),
        ),
        (
            format!(r#"["AUTH",{ev},{extra}]"#),
            ClientMessage::Auth(Box::new(event.clone())),
        ),
    ];
    for (json, expected) in client {
        assert_eq!(ClientMessage::from_json(&json), Ok(expected), "{json}");
    }
    // REQ and COUNT are variadic: everything after the id is a filter, so a trailing
    // non-object is malformed rather than ignored.
    assert!(matches!(
        ClientMessage::from_json(r#"["REQ","s",{},"future"]"#),
        Err(Error::Malformed(_))
    ));
}

#[test]
fn missing_ok_and_closed_messages_read_as_empty() {
    // NIP-01 asks for the message, but some relays leave it out.
    assert_eq!(
        RelayFrame::from_json(&format!(r#"["OK","{ID_HEX}",false]"#)),
        Ok(RelayFrame::Ok {
            event_id: id(ID_HEX),
            accepted: false,
            message: String::new(),
        })
    );
    assert_eq!(
        RelayFrame::from_json(r#"["CLOSED","s"]"#),
        Ok(RelayFrame::Closed {
            subscription_id: sub("s"),
            message: String::new(),
        })
    );
}

// ---- Errors ------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    Json,
    Malformed,
    Unknown(&'static str),
}

fn is<T>(result: &Result<T, Error>, want: Want) -> bool {
    match (result, want) {
        (Err(Error::Json(_)), Want::Json) | (Err(Error::Malformed(_)), Want::Malformed) => true,
        (Err(Error::UnknownMessage(verb)), Want::Unknown(expected)) => verb == expected,
        _ => false,
    }
}

fn check_relay_errors(cases: &[(&str, Want)]) {
    for (json, want) in cases {
        let result = RelayFrame::from_json(json);
        assert!(
            is(&result, *want),
            "RelayFrame {json}: {result:?}, want {want:?}"
        );
        let result = RelayFrame::from_slice(json.as_bytes());
        assert!(
            is(&result, *want),
            "RelayFrame bytes {json}: {result:?}, want {want:?}"
        );
    }
}

fn check_client_errors(cases: &[(&str, Want)]) {
    for (json, want) in cases {
        let result = ClientMessage::from_json(json);
        assert!(
            is(&result, *want),
            "ClientMessage {json}: {result:?}, want {want:?}"
        );
        let result = ClientMessage::from_slice(json.as_bytes());
        assert!(
            is(&result, *want),
            "ClientMessage bytes {json}: {result:?}, want {want:?}"
        );
    }
}

/// Shapes that are wrong whatever the side: not JSON, not an array, no verb.
const NOT_A_MESSAGE: [(&str, Want); 16] = [
    ("", Want::Json),
    ("   ", Want::Json),
    ("nope", Want::Json),
    (r#"["EOSE","s""#, Want::Json),
    (r#"["EOSE","s",]"#, Want::Json),
    (r#"["EOSE","s"] x"#, Want::Json),
    (r#"["EOSE","s"]]"#, Want::Json),
    (r#"["EOSE",'s']"#, Want::Json),
    (r#"{"EOSE":"s"}"#, Want::Malformed),
    (r#""EOSE""#, Want::Malformed),
    ("null", Want::Malformed),
    ("42", Want::Malformed),
    ("[]", Want::Malformed),
    (r#"[1,"s"]"#, Want::Malformed),
    (r#"[null]"#, Want::Malformed),
    (r#"[["EOSE"],"s"]"#, Want::Malformed),
];

#[test]
fn relay_frame_errors_have_the_precise_variant() {
    check_relay_errors(&NOT_A_MESSAGE);
    let signed = note("e");
    let event = signed.as_json();
    let upper_id_event = event.replace(&signed.id.to_hex(), &signed.id.to_hex().to_uppercase());
    let upper = ID_HEX.to_uppercase();
    let short = &ID_HEX[1..];
    let cases: Vec<(String, Want)> = vec![
        // Wrong arity.
        (r#"["EVENT"]"#.into(), Want::Malformed),
        (r#"["EVENT","s"]"#.into(), Want::Malformed),
        (r#"["OK"]"#.into(), Want::Malformed),
        (format!(r#"["OK","{ID_HEX}"]"#), Want::Malformed),
        (r#"["EOSE"]"#.into(), Want::Malformed),
        (r#"["CLOSED"]"#.into(), Want::Malformed),
        (r#"["NOTICE"]"#.into(), Want::Malformed),
        (r#"["AUTH"]"#.into(), Want::Malformed),
        (r#"["COUNT"]"#.into(), Want::Malformed),
        (r#"["COUNT","q"]"#.into(), Want::Malformed),
        // Wrong element types.
        (r#"["EVENT",1,{}]"#.into(), Want::Malformed),
        (r#"["EVENT","s","event"]"#.into(), Want::Malformed),
        (r#"["EVENT","s",{}]"#.into(), Want::Malformed),
        (format!(r#"["EVENT",{event}]"#), Want::Malformed),
        (r#"["OK",1,true,""]"#.into(), Want::Malformed),
        (format!(r#"["OK","{ID_HEX}","true",""]"#), Want::Malformed),
        (format!(r#"["OK","{ID_HEX}",1,""]"#), Want::Malformed),
        (format!(r#"["OK","{ID_HEX}",true,5]"#), Want::Malformed),
        (format!(r#"["OK","{ID_HEX}",true,null]"#), Want::Malformed),
        (r#"["EOSE",1]"#.into(), Want::Malformed),
        (r#"["EOSE",null]"#.into(), Want::Malformed),
        (r#"["CLOSED","s",null]"#.into(), Want::Malformed),
        (r#"["CLOSED",["s"],"x"]"#.into(), Want::Malformed),
        (r#"["NOTICE",{}]"#.into(), Want::Malformed),
        (r#"["AUTH",{}]"#.into(), Want::Malformed),
        (format!(r#"["AUTH",{event}]"#), Want::Malformed),
        (r#"["COUNT","q",5]"#.into(), Want::Malformed),
        (r#"["COUNT","q",{}]"#.into(), Want::Malformed),
        (r#"["COUNT","q",{"count":"5"}]"#.into(), Want::Malformed),
        (r#"["COUNT","q",{"count":-1}]"#.into(), Want::Malformed),
        (
            r#"["COUNT","q",{"count":1,"approximate":"yes"}]"#.into(),
            Want::Malformed,
        ),
        // Bad hex.
        (format!(r#"["OK","{upper}",true,""]"#), Want::Malformed),
        (format!(r#"["OK","{short}",true,""]"#), Want::Malformed),
        (format!(r#"["OK","0x{short}",true,""]"#), Want::Malformed),
        (
            format!(r#"["EVENT","s",{upper_id_event}]"#),
            Want::Malformed,
        ),
        // Unknown types, including the client's verbs and a wrong case.
        (r#"["HELLO"]"#.into(), Want::Unknown("HELLO")),
        (r#"["eose","s"]"#.into(), Want::Unknown("eose")),
        (r#"["REQ","s",{}]"#.into(), Want::Unknown("REQ")),
        (r#"["CLOSE","s"]"#.into(), Want::Unknown("CLOSE")),
        (r#"["X",{"a":[1,{"b":"]"}]},3]"#.into(), Want::Unknown("X")),
        // An unknown type does not hide a syntax error after it.
        (r#"["X",1"#.into(), Want::Json),
    ];
    let cases: Vec<(&str, Want)> = cases.iter().map(|(j, w)| (j.as_str(), *w)).collect();
    check_relay_errors(&cases);
    // A verb spelled with a JSON escape is still that verb.
    assert_eq!(
        RelayFrame::from_json(r#"["EOS\u0045","s"]"#),
        Ok(RelayFrame::Eose(sub("s")))
    );
    // Invalid UTF-8 in a text frame is not JSON, wherever it is: in a string, after the
    // array, or in a part that is otherwise skipped (trailing elements, unknown types,
    // unknown keys).
    let event = note("e").as_json();
    let unknown_field = event.replacen('{', "{\"x\":\"\u{0}\",", 1).into_bytes();
    let unknown_field: Vec<u8> = unknown_field
        .iter()
        .map(|&b| if b == 0 { 0xff } else { b })
        .collect();
    let frames: Vec<Vec<u8>> = vec![
        b"[\"NOTICE\",\"\xff\"]".to_vec(),
        b"[\"NOTICE\",\"ok\"]\xc3".to_vec(),
        b"[\"EOSE\",\"s\",\"\xed\xa0\x80\"]".to_vec(),
        b"[\"X\",\"\xc0\xaf\"]".to_vec(),
        [&b"[\"EVENT\",\"s\","[..], &unknown_field, b"]"].concat(),
        [&b"[\"EVENT\","[..], &unknown_field, b"]"].concat(),
        b"[\"REQ\",\"s\",{\"search\":\"\xff\"}]".to_vec(),
    ];
    for bytes in &frames {
        let text = String::from_utf8_lossy(bytes);
        let result = RelayFrame::from_slice(bytes);
        assert!(matches!(result, Err(Error::Json(_))), "{text}: {result:?}");
        let result = ClientMessage::from_slice(bytes);
        assert!(matches!(result, Err(Error::Json(_))), "{text}: {result:?}");
    }
    // The same frames with the bad bytes made valid parse (so only UTF-8 was wrong).
    let valid = String::from_utf8_lossy(&frames[4]).into_owned();
    assert!(RelayFrame::from_json(&valid).is_ok(), "{valid}");
    // Escapes that are not characters.
    assert!(matches!(
        RelayFrame::from_json(r#"["NOTICE","\ud800"]"#),
        Err(Error::Json(_))
    ));
}

#[test]
fn client_message_errors_have_the_precise_variant() {
    check_client_errors(&NOT_A_MESSAGE);
    let event = note("e").as_json();
    let bad_sig_hex = event.replace("\"sig\":\"", "\"sig\":\"zz");
    let cases: Vec<(String, Want)> = vec![
        // Wrong arity.
        (r#"["EVENT"]"#.into(), Want::Malformed),
        (r#"["REQ"]"#.into(), Want::Malformed),
        (r#"["REQ","s"]"#.into(), Want::Malformed),
        (r#"["CLOSE"]"#.into(), Want::Malformed),
        (r#"["AUTH"]"#.into(), Want::Malformed),
        (r#"["COUNT"]"#.into(), Want::Malformed),
        (r#"["COUNT","q"]"#.into(), Want::Malformed),
        // Wrong element types.
        (format!(r#"["EVENT","s",{event}]"#), Want::Malformed),
        (r#"["EVENT",{}]"#.into(), Want::Malformed),
        (r#"["EVENT",null]"#.into(), Want::Malformed),
        (format!(r#"["EVENT",[{event}]]"#), Want::Malformed),
        (r#"["REQ",1,{}]"#.into(), Want::Malformed),
        (r#"["REQ","s",[]]"#.into(), Want::Malformed),
        (r#"["REQ","s",null]"#.into(), Want::Malformed),
        (r#"["REQ","s","{}"]"#.into(), Want::Malformed),
        (r#"["REQ","s",{"kinds":["1"]}]"#.into(), Want::Malformed),
        (r#"["REQ","s",{"kinds":[65536]}]"#.into(), Want::Malformed),
        (r#"["REQ","s",{"since":-1}]"#.into(), Want::Malformed),
        (r#"["REQ","s",{"limit":1.5}]"#.into(), Want::Malformed),
        (r##"["REQ","s",{"#e":"abc"}]"##.into(), Want::Malformed),
        (r##"["REQ","s",{"#e":[1]}]"##.into(), Want::Malformed),
        (r#"["REQ","s",{},1]"#.into(), Want::Malformed),
        (r#"["CLOSE",{}]"#.into(), Want::Malformed),
        (r#"["CLOSE",null]"#.into(), Want::Malformed),
        (r#"["AUTH","challenge"]"#.into(), Want::Malformed),
        (r#"["COUNT","q",5]"#.into(), Want::Malformed),
        // Bad hex.
        (format!(r#"["EVENT",{bad_sig_hex}]"#), Want::Malformed),
        (r#"["REQ","s",{"ids":["xyz"]}]"#.into(), Want::Malformed),
        (
            format!(r#"["REQ","s",{{"authors":["{}"]}}]"#, PK_HEX.to_uppercase()),
            Want::Malformed,
        ),
        (
            format!(r#"["COUNT","q",{{"ids":["{}"]}}]"#, &ID_HEX[2..]),
            Want::Malformed,
        ),
        // Unknown types, including the relay's verbs.
        (r#"["HELLO","x"]"#.into(), Want::Unknown("HELLO")),
        (r#"["req","s",{}]"#.into(), Want::Unknown("req")),
        (r#"["EOSE","s"]"#.into(), Want::Unknown("EOSE")),
        (r#"["NOTICE","x"]"#.into(), Want::Unknown("NOTICE")),
        (format!(r#"["OK","{ID_HEX}",true,""]"#), Want::Unknown("OK")),
    ];
    let cases: Vec<(&str, Want)> = cases.iter().map(|(j, w)| (j.as_str(), *w)).collect();
    check_client_errors(&cases);
}

// ---- Filters -----------------------------------------------------------------------------

#[test]
fn filter_json_round_trip_with_tags() {
    let other = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    let filter = Filter::new()
        .ids([id(ID_HEX)])
        .authors([pk(PK_HEX), pk(other)])
        .kinds([Kind::TEXT_NOTE, Kind::new(30023)])
        .tag('e', [ID_HEX])
        .tag('p', [PK_HEX, other])
        .tag('t', ["nostr", "ünïcode \"quoted\""])
        .since(Timestamp::from_secs(1_600_000_000))
        .until(Timestamp::from_secs(1_700_000_000))
        .limit(500);
    let json = filter.as_json();
    assert_eq!(
        json,
        format!(
            r##"{{"ids":["{ID_HEX}"],"authors":["{PK_HEX}","{other}"],"kinds":[1,30023],"#e":["{ID_HEX}"],"#p":["{PK_HEX}","{other}"],"#t":["nostr","ünïcode \"quoted\""],"since":1600000000,"until":1700000000,"limit":500}}"##
        )
    );
    assert_eq!(
        serde_json::from_str::<Filter>(&json).expect("parses"),
        filter
    );
    assert_eq!(Filter::new().as_json(), "{}");
    assert_eq!(
        serde_json::from_str::<Filter>("{}").expect("parses"),
        Filter::new()
    );
    // Key order on the wire does not matter.
    let reordered = format!(
        r##"{{"limit":500,"#t":["nostr","ünïcode \"quoted\""],"until":1700000000,"#p":["{PK_HEX}","{other}"],"since":1600000000,"kinds":[1,30023],"#e":["{ID_HEX}"],"authors":["{PK_HEX}","{other}"],"ids":["{ID_HEX}"]}}"##
    );
    assert_eq!(
        serde_json::from_str::<Filter>(&reordered).expect("parses"),
        filter
    );
    // Builders add to what is there.
    assert_eq!(
        Filter::new().tag('t', ["a"]).tag('t', ["b"]),
        Filter::new().tag('t', ["a", "b"])
    );
    assert_eq!(
        Filter::new().pubkey_ref(&pk(PK_HEX)).event_ref(&id(ID_HEX)),
        Filter::new().tag('p', [PK_HEX]).tag('e', [ID_HEX])
    );
}

#[test]
fn filter_ignores_unknown_keys() {
    let json = r##"{"kinds":[1],"search":"best nostr apps","#emoji":["x"],"#1":["y"],"#":["z"],"foo":{"bar":[1,{"baz":null}]},"ids_":5}"##;
    assert_eq!(
        serde_json::from_str::<Filter>(json).expect("parses"),
        Filter::new().kind(Kind::TEXT_NOTE)
    );
    assert!(serde_json::from_str::<Filter>("[]").is_err());
    assert!(serde_json::from_str::<Filter>("null").is_err());
}

fn event_with(kind: u16, created_at: u64, tags: &[&[&str]]) -> Event {
    EventBuilder::new(Kind::new(kind), "content")
        .tags(tags.iter().map(|t| Tag::new(t.iter().copied())))
        .created_at(Timestamp::from_secs(created_at))
        .sign(&test_keys())
}

#[test]
fn filter_matches_like_nip01() {
    let other_pk = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    let event = event_with(
        1,
        1000,
        &[
            &["e", ID_HEX, "wss://relay", "first-value-only"],
            &["p", PK_HEX],
            &["t", "nostr"],
            &["tt", "long-name"],
            &["x"],
        ],
    );
    let t = |s: u64| Timestamp::from_secs(s);

    // Nothing asked: everything matches.
    assert!(Filter::new().matches(&event));
    // ids, authors, kinds: one of the entries.
    assert!(Filter::new().id(id(ID_HEX)).id(event.id).matches(&event));
    assert!(!Filter::new().id(id(ID_HEX)).matches(&event));
    assert!(Filter::new()
        .authors([pk(other_pk), event.pubkey])
        .matches(&event));
    assert!(!Filter::new().author(pk(other_pk)).matches(&event));
    assert!(Filter::new()
        .kinds([Kind::new(7), Kind::TEXT_NOTE])
        .matches(&event));
    assert!(!Filter::new().kind(Kind::new(7)).matches(&event));
    // A present but empty list matches nothing.
    assert!(!Filter::new().ids([]).matches(&event));
    assert!(!Filter::new().authors([]).matches(&event));
    assert!(!Filter::new().kinds([]).matches(&event));
    assert!(!Filter::new().tag('t', Vec::<String>::new()).matches(&event));
    let empty: Filter = serde_json::from_str(r##"{"ids":[],"#e":[]}"##).expect("parses");
    assert!(!empty.matches(&event));
    // since <= created_at <= until, both inclusive.
    assert!(Filter::new().since(t(1000)).until(t(1000)).matches(&event));
    assert!(Filter::new().since(t(999)).until(t(1001)).matches(&event));
    assert!(!Filter::new().since(t(1001)).matches(&event));
    assert!(!Filter::new().until(t(999)).matches(&event));
    assert!(!Filter::new().since(t(1001)).until(t(999)).matches(&event));
    // limit plays no part in matching.
    assert!(Filter::new().limit(0).matches(&event));
    assert!(Filter::new().kind(Kind::TEXT_NOTE).limit(1).matches(&event));
    // Tags: the first value of a tag with that single-letter name.
    assert!(Filter::new().tag('e', [ID_HEX]).matches(&event));
    assert!(Filter::new().tag('e', ["nope", ID_HEX]).matches(&event));
    assert!(!Filter::new().tag('e', ["wss://relay"]).matches(&event));
    assert!(!Filter::new().tag('e', ["first-value-only"]).matches(&event));
    assert!(!Filter::new().tag('E', [ID_HEX]).matches(&event));
    assert!(!Filter::new().tag('t', ["long-name"]).matches(&event));
    assert!(!Filter::new().tag('x', [""]).matches(&event));
    assert!(!Filter::new().tag('q', [ID_HEX]).matches(&event));
    // Several tag letters, and tags with other fields: all must hold.
    assert!(Filter::new()
        .tag('t', ["nostr"])
        .tag('p', [PK_HEX])
        .matches(&event));
    assert!(!Filter::new()
        .tag('t', ["nostr"])
        .tag('p', [other_pk])
        .matches(&event));
    assert!(!Filter::new()
        .tag('t', ["nostr"])
        .tag('d', ["x"])
        .matches(&event));
    assert!(Filter::new()
        .kind(Kind::TEXT_NOTE)
        .author(event.pubkey)
        .tag('t', ["nostr"])
        .since(t(1))
        .matches(&event));
    assert!(!Filter::new()
        .kind(Kind::TEXT_NOTE)
        .author(event.pubkey)
        .tag('t', ["nostr"])
        .since(t(1001))
        .matches(&event));
    // The same tag letter twice in an event: any of them may match.
    let two_t = event_with(1, 5, &[&["t", "a"], &["t", "b"]]);
    assert!(Filter::new().tag('t', ["b"]).matches(&two_t));
    // An empty tag does not trip matching.
    let empty_tag = event_with(1, 5, &[&[], &["t", "a"]]);
    assert!(Filter::new().tag('t', ["a"]).matches(&empty_tag));
}

// ---- NIP-42 ------------------------------------------------------------------------------

const RELAY: &str = "wss://relay.example.com/";
const CHALLENGE: &str = "challengestringhere";
const WINDOW: u64 = 600;

/// A kind-22242-shaped event with any kind, tags and time, correctly signed.
fn auth_like(kind: Kind, tags: &[&[&str]], created_at: Timestamp) -> Event {
    EventBuilder::new(kind, "")
        .tags(tags.iter().map(|t| Tag::new(t.iter().copied())))
        .created_at(created_at)
        .sign(&test_keys())
}

#[test]
fn nip42_auth_event_is_accepted() {
    let keys = Keys::generate();
    let auth = nip42::auth_event(&keys, RELAY, CHALLENGE);
    assert_eq!(auth.kind, Kind::AUTH);
    assert_eq!(auth.content, "");
    assert_eq!(auth.pubkey, keys.public_key());
    assert_eq!(auth.tag_value("relay"), Some(RELAY));
    assert_eq!(auth.tag_value("challenge"), Some(CHALLENGE));
    assert!(
        auth.created_at
            .as_secs()
            .abs_diff(Timestamp::now().as_secs())
            <= 5
    );
    auth.verify().expect("signed");
    assert_eq!(
        nip42::check_auth_event(&auth, RELAY, CHALLENGE, WINDOW),
        Ok(())
    );
    // The relay URL is compared without one trailing slash and without case in scheme and
    // host.
    for url in [
        "wss://relay.example.com",
        "WSS://Relay.Example.COM/",
        " wss://relay.example.com/ ",
    ] {
        assert_eq!(
            nip42::check_auth_event(&auth, url, CHALLENGE, WINDOW),
            Ok(()),
            "{url}"
        );
    }
    // It survives the wire.
    let parsed = ClientMessage::from_json(&ClientMessage::Auth(Box::new(auth.clone())).as_json());
    let Ok(ClientMessage::Auth(parsed)) = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(
        nip42::check_auth_event(&parsed, RELAY, CHALLENGE, WINDOW),
        Ok(())
    );
}

#[test]
fn nip42_rejects_wrong_challenge_relay_kind_time_and_tampering() {
    let keys = test_keys();
    let auth = nip42::auth_event(&keys, RELAY, CHALLENGE);
    let check = |e: &Event| nip42::check_auth_event(e, RELAY, CHALLENGE, WINDOW);

    assert_eq!(
        nip42::check_auth_event(&auth, RELAY, "otherchallenge", WINDOW),
        Err(AuthError::WrongChallenge)
    );
    assert_eq!(
        nip42::check_auth_event(&auth, RELAY, "", WINDOW),
        Err(AuthError::WrongChallenge)
    );
    for url in [
        "wss://other.example.com/",
        "ws://relay.example.com/",
        "wss://relay.example.com.evil.com/",
        "wss://relay.example.com/private",
    ] {
        assert_eq!(
            nip42::check_auth_event(&auth, url, CHALLENGE, WINDOW),
            Err(AuthError::WrongRelay),
            "{url}"
        );
    }
    // The path keeps its case: one host may serve several relays.
    let path_auth = nip42::auth_event(&keys, "wss://relay.example.com/Private", CHALLENGE);
    assert_eq!(
        nip42::check_auth_event(
            &path_auth,
            "wss://relay.example.com/Private/",
            CHALLENGE,
            WINDOW
        ),
        Ok(())
    );
    assert_eq!(
        nip42::check_auth_event(
            &path_auth,
            "wss://relay.example.com/private",
            CHALLENGE,
            WINDOW
        ),
        Err(AuthError::WrongRelay)
    );

    let now = Timestamp::now();
    let tags: &[&[&str]] = &[&["relay", RELAY], &["challenge", CHALLENGE]];
    assert_eq!(
        check(&auth_like(Kind::TEXT_NOTE, tags, now)),
        Err(AuthError::WrongKind)
    );
    assert_eq!(
        check(&auth_like(Kind::AUTH, &[&["relay", RELAY]], now)),
        Err(AuthError::WrongChallenge)
    );
    assert_eq!(
        check(&auth_like(Kind::AUTH, &[&["challenge", CHALLENGE]], now)),
        Err(AuthError::WrongRelay)
    );
    // created_at within the window on either side of now.
    let minutes = |m: u64| std::time::Duration::from_secs(60 * m);
    assert_eq!(
        check(&auth_like(Kind::AUTH, tags, now.saturating_sub(minutes(1)))),
        Ok(())
    );
    assert_eq!(
        check(&auth_like(
            Kind::AUTH,
            tags,
            now.saturating_sub(minutes(60))
        )),
        Err(AuthError::Stale)
    );
    assert_eq!(
        check(&auth_like(
            Kind::AUTH,
            tags,
            now.saturating_add(minutes(60))
        )),
        Err(AuthError::Stale)
    );
    assert_eq!(
        check(&auth_like(Kind::AUTH, tags, Timestamp::from_secs(0))),
        Err(AuthError::Stale)
    );

    // Tampering after signing: the id no longer matches, before any tag is looked at.
    let mut tampered = auth.clone();
    tampered.tags[1] = Tag::new(["challenge", "otherchallenge"]);
    assert!(matches!(
        nip42::check_auth_event(&tampered, RELAY, "otherchallenge", WINDOW),
        Err(AuthError::Invalid(Error::IdMismatch { .. }))
    ));
    let mut tampered = auth.clone();
    tampered.created_at = Timestamp::from_secs(auth.created_at.as_secs() + 1);
    assert!(matches!(
        check(&tampered),
        Err(AuthError::Invalid(Error::IdMismatch { .. }))
    ));
    // Signed by someone else, or a signature over another id.
    let mut forged = auth.clone();
    forged.sig = nip42::auth_event(&Keys::generate(), RELAY, CHALLENGE).sig;
    assert_eq!(
        check(&forged),
        Err(AuthError::Invalid(Error::InvalidSignature))
    );
    let mut forged = auth.clone();
    forged.pubkey = Keys::generate().public_key();
    forged.id = forged.compute_id();
    assert_eq!(
        check(&forged),
        Err(AuthError::Invalid(Error::InvalidSignature))
    );
}

/// `SubscriptionId` is a shared string with its own serde impls: it reads and writes what a
/// plain `String` did, escapes, bytes and errors included.
#[test]
fn subscription_ids_read_and_write_like_strings() {
    use serde::de::value::{BytesDeserializer, Error as ValueError};
    use serde::Deserialize as _;

    let plain: SubscriptionId = serde_json::from_str(r#""feed-1""#).expect("plain");
    assert_eq!(plain, sub("feed-1"));
    let escaped: SubscriptionId = serde_json::from_str(r#""a\"b\u00e9""#).expect("escaped");
    assert_eq!(escaped.as_str(), "a\"bé");
    assert_eq!(
        serde_json::to_string(&escaped).expect("writes"),
        r#""a\"bé""#
    );
    let cloned = escaped.clone();
    assert_eq!(cloned, escaped);

    let from_bytes = SubscriptionId::deserialize(BytesDeserializer::<ValueError>::new(b"bytes"));
    assert_eq!(from_bytes.expect("UTF-8 bytes"), sub("bytes"));
    let bad = SubscriptionId::deserialize(BytesDeserializer::<ValueError>::new(b"\xff"));
    assert!(bad.is_err(), "non-UTF-8 bytes are refused");

    let as_string = serde_json::from_str::<String>("5").expect_err("a number");
    let as_id = serde_json::from_str::<SubscriptionId>("5").expect_err("a number");
    assert_eq!(as_id.to_string(), as_string.to_string());
}
