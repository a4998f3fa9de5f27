//! `wss://` end to end: a pool reaches a `TestRelay` through a TLS front on 127.0.0.1 whose
//! certificate comes from a test certificate authority (tests/data/tls), trusted through
//! `RelayOptions::tls_config`. Large messages cross many TLS records each way, a dropped
//! socket is dialled again over TLS, the close frame of a shutdown gets through, and without
//! the option the certificate is refused.
#![cfg(all(feature = "testing", feature = "rustls"))]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_nostr::pool::{Fetch, Publish, RelayPool, Shutdown, Subscribe};
use actix_nostr::protocol::{EventBuilder, Filter, Keys, Kind};
use actix_nostr::relay::{MessageKind, PublishOutcome, RelayError};
use actix_nostr::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use actix_nostr::rustls::{ClientConfig, RootCertStore, ServerConfig};
use actix_nostr::testing::TestRelay;
use support::{fast_options, recorder, WAIT};

fn tls_file(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn provider() -> Arc<actix_nostr::rustls::crypto::CryptoProvider> {
    Arc::new(actix_nostr::rustls::crypto::ring::default_provider())
}

/// A client configuration that trusts the test certificate authority only.
fn trusting_test_ca() -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(tls_file("ca.der")))
        .expect("the test CA is a valid certificate");
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Terminates TLS on 127.0.0.1 with the test certificate and passes the bytes on to
/// `upstream` (a `TestRelay`): `wss://127.0.0.1:<port>` in front of its `ws://`. Runs on
/// the test's System; each accepted socket is one task.
async fn tls_front(upstream: SocketAddr) -> SocketAddr {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(tls_file("leaf.key.der")));
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(tls_file("leaf.der"))], key)
        .expect("the test certificate and key match");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    actix::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            actix::spawn(async move {
                // A failed handshake (the client refusing the certificate) just ends here.
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut relay) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut relay).await;
            });
        }
    });
    addr
}

/// The relay's plain address, from its `ws://127.0.0.1:<port>` URL.
fn relay_addr(relay: &TestRelay) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], relay.port()))
}

#[actix::test]
async fn a_pool_publishes_subscribes_and_closes_over_wss_with_its_own_roots() {
    let relay = TestRelay::start().await.expect("relay starts");
    let front = tls_front(relay_addr(&relay)).await;
    let url = format!("wss://127.0.0.1:{}", front.port());
    let keys = Keys::generate();
    // Stored before the pool connects: read back through TLS.
    let stored = EventBuilder::text_note("stored, sent over TLS").sign(&keys);
    relay.publish(stored.clone());

    let (recipient, mut inbox) = recorder();
    let options = fast_options().tls_config(trusting_test_ca());
    let pool = RelayPool::builder()
        .recipient(recipient)
        .relay_with(url.as_str(), options)
        .start()
        .expect("pool starts");
    inbox.connected(&url).await;

    // ~200 KB out and back in: frames of a dozen TLS records each (16 KiB at most apiece).
    let big = EventBuilder::text_note("x".repeat(200_000)).sign(&keys);
    let published = pool
        .send(Publish::new(big.clone()).timeout(WAIT))
        .await
        .expect("pool alive");
    let outcome = published.relays.values().next().cloned();
    assert!(
        matches!(outcome, Some(PublishOutcome::Accepted { .. })),
        "{outcome:?}"
    );
    assert!(relay.stored_events().contains(&big));

    let filter = Filter::new()
        .kinds([Kind::TEXT_NOTE])
        .authors([keys.public_key()]);
    let fetched = pool
        .send(Fetch::new(vec![filter.clone()]).timeout(WAIT))
        .await
        .expect("pool alive");
    let mut ids: Vec<_> = fetched.events.iter().map(|e| e.id).collect();
    ids.sort();
    let mut want = vec![stored.id, big.id];
    want.sort();
    assert_eq!(ids, want, "both events read back over TLS");
    assert!(fetched.events.iter().any(|e| e.content == big.content));
    assert!(
        fetched
            .relays
            .values()
            .all(|end| matches!(end, actix_nostr::relay::FetchEnd::Eose)),
        "{:?}",
        fetched.relays
    );

    // Live: an event the relay gets from elsewhere reaches the subscription.
    pool.send(Subscribe::new(vec![filter]))
        .await
        .expect("pool alive")
        .expect("subscribed");
    let live = EventBuilder::text_note("live over TLS").sign(&keys);
    relay.publish(live.clone());
    inbox.event("the live event", live.id).await;

    // A dropped socket: the pool dials again over TLS (the thread's client for this
    // configuration, reused) and resubscribes.
    assert!(relay.drop_connections() >= 1);
    inbox.disconnected(&url).await;
    inbox.connected(&url).await;
    let after = EventBuilder::text_note("live again over TLS").sign(&keys);
    relay.publish(after.clone());
    inbox.event("the event after the reconnect", after.id).await;

    // The close frame goes through TLS (and the front) before the socket is shut.
    let closes = relay.closes_received();
    actix::clock::timeout(WAIT, pool.send(Shutdown))
        .await
        .expect("shutdown in time")
        .expect("pool alive");
    let deadline = tokio::time::Instant::now() + WAIT;
    while relay.closes_received() == closes {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no close frame reached the relay"
        );
        actix::clock::sleep(Duration::from_millis(10)).await;
    }
}

#[actix::test]
async fn without_its_roots_a_pool_refuses_the_certificate() {
    let relay = TestRelay::start().await.expect("relay starts");
    let front = tls_front(relay_addr(&relay)).await;
    let url = format!("wss://127.0.0.1:{}", front.port());
    let (recipient, mut inbox) = recorder();
    // The default: the Mozilla roots, which do not include the test CA.
    let pool = RelayPool::builder()
        .recipient(recipient)
        .relay_with(url.as_str(), fast_options())
        .start()
        .expect("pool starts");
    let failed = inbox
        .expect("a failed connect", |m| {
            matches!(
                &m.kind,
                MessageKind::Error(RelayError::ConnectFailed { .. })
            )
        })
        .await;
    let MessageKind::Error(RelayError::ConnectFailed { reason, .. }) = &failed.kind else {
        unreachable!("matched above");
    };
    assert!(
        reason.to_lowercase().contains("certificate") || reason.contains("UnknownIssuer"),
        "the reason names the certificate: {reason}"
    );
    assert!(
        !inbox
            .drain()
            .iter()
            .any(|m| matches!(m.kind, MessageKind::Connected)),
        "never connected"
    );
    let _ = pool.send(Shutdown).await;
}
