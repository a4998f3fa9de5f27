//! The pool-wide memory of events already seen: verified once, delivered once.
//!
//! Shared by every connection of a pool (behind a mutex: critical sections are a few hash
//! lookups). Keys are the first 8 bytes of the *recomputed* event id: a SHA-256, so a relay
//! cannot aim a collision at another event, and 8-byte keys keep the memory at about
//! 40 bytes per remembered event.
//!
//! The hot path (every event) is one set insert: the subscription's part of the key is
//! hashed once per subscription ([`Dedup::subscription_key`]), and the sets hash their u64
//! keys with a keyed folded multiply ([`Mixer`]) instead of SipHash. The signature's part of
//! the verified key stays SipHash with random keys: it vouches that a signature was checked,
//! so a relay must not be able to craft a second signature with the same key.

use std::collections::hash_map::RandomState;
use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use super::url::RelayUrl;
use crate::protocol::{EventId, Signature, SubscriptionId};

/// How many event ids the pool remembers (each set, FIFO eviction). Enough for a 100,000
/// event backfill from several relays to verify each event once; ~5 MiB when full.
pub const DEFAULT_DEDUP_CAPACITY: usize = 131_072;

/// Whether an event seen on several relays is delivered once per subscription or once per
/// relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Delivery {
    /// Each event reaches each subscription once, whichever relays send it. The default.
    #[default]
    OncePerSubscription,
    /// Each relay's copy is delivered (verification still happens once).
    OncePerRelay,
}

/// Scrambles u64 keys: a random secret XORed in, then the splitmix64 finalizer (a
/// bijection in which every output bit depends on every input bit). Without the secret, a
/// relay cannot choose ids that crowd one part of the table; and it costs a few
/// instructions where SipHash costs a hundred.
#[derive(Debug, Clone, Copy)]
struct Mixer {
    secret: u64,
}

impl Mixer {
    fn new() -> Self {
        Mixer {
            secret: RandomState::new().hash_one(0x9e37_79b9_7f4a_7c15_u64),
        }
    }

    fn mix(self, key: u64) -> u64 {
        let mut z = key ^ self.secret;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl BuildHasher for Mixer {
    type Hasher = MixHasher;
    fn build_hasher(&self) -> MixHasher {
        MixHasher {
            mixer: *self,
            state: 0,
        }
    }
}

/// The [`Mixer`] as a `Hasher` for `HashSet<u64>`: one `write_u64`, one mix.
#[derive(Debug)]
struct MixHasher {
    mixer: Mixer,
    state: u64,
}

impl Hasher for MixHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not used by u64 keys; correct for anything else.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.state = self.mixer.mix(self.state ^ key);
    }

    fn finish(&self) -> u64 {
        self.state
    }
}

#[derive(Debug)]
struct BoundedSet {
    set: HashSet<u64, Mixer>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl BoundedSet {
    fn new(capacity: usize) -> Self {
        BoundedSet {
            set: HashSet::with_hasher(Mixer::new()),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    fn contains(&self, key: u64) -> bool {
        self.set.contains(&key)
    }

    /// Inserts; returns false if it was already there.
    fn insert(&mut self, key: u64) -> bool {
        if !self.set.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }

    fn len(&self) -> usize {
        self.set.len()
    }
}

/// Ids of the events one connection wrote lately (EVENT and AUTH), so that an `OK` naming
/// anything else is recognised as unsolicited. Bounded (FIFO); 8 bytes of the id per key.
#[derive(Debug)]
pub(crate) struct RecentIds(BoundedSet);

/// How many written event ids a connection remembers for [`RecentIds`].
pub(crate) const RECENTLY_SENT: usize = 4096;

impl RecentIds {
    pub(crate) fn new(capacity: usize) -> Self {
        RecentIds(BoundedSet::new(capacity))
    }

    pub(crate) fn insert(&mut self, id: &EventId) {
        self.0.insert(id_key(id));
    }

    pub(crate) fn contains(&self, id: &EventId) -> bool {
        self.0.contains(id_key(id))
    }
}

/// Hit and miss counters of the de-dup memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DedupStats {
    /// Events whose signature check was skipped because the same id had been verified.
    pub verify_hits: u64,
    /// Events verified (not seen before).
    pub verify_misses: u64,
    /// Deliveries suppressed as duplicates.
    pub delivery_hits: u64,
    /// Deliveries made.
    pub delivery_misses: u64,
    /// Ids remembered now.
    pub remembered: u64,
}

#[derive(Debug)]
struct Inner {
    verified: BoundedSet,
    delivered: BoundedSet,
    stats: DedupStats,
}

/// The shared de-dup memory. Cheap to clone (a handle).
#[derive(Debug, Clone)]
pub(crate) struct Dedup {
    inner: Arc<Mutex<Inner>>,
    delivery: Delivery,
    /// Random keys for hashing signatures, so a relay cannot aim a collision.
    sig_keys: RandomState,
}

/// An event's key in the verified memory: its id and signature ([`Dedup::verified_key`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct VerifiedKey(u64);

fn id_key(id: &EventId) -> u64 {
    let b = id.as_bytes();
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

impl Dedup {
    pub(crate) fn new(capacity: usize, delivery: Delivery) -> Self {
        Dedup {
            inner: Arc::new(Mutex::new(Inner {
                verified: BoundedSet::new(capacity),
                delivered: BoundedSet::new(capacity),
                stats: DedupStats::default(),
            })),
            delivery,
            sig_keys: RandomState::new(),
        }
    }

    /// The verified memory vouches for an id *and* its whole signature: the signature is
    /// not part of the id, so the same content with another signature is checked again (a
    /// forged one fails; a second valid one, which BIP-340's random nonces allow, is
    /// remembered too). Computed once per event, for [`is_verified`](Self::is_verified)
    /// and then [`mark_verified`](Self::mark_verified).
    pub(crate) fn verified_key(&self, id: &EventId, sig: &Signature) -> VerifiedKey {
        VerifiedKey(id_key(id) ^ self.sig_keys.hash_one(sig.as_bytes()))
    }

    /// Whether this (recomputed) id has passed signature verification before with this
    /// signature. Counts a hit or a miss.
    pub(crate) fn is_verified(&self, key: VerifiedKey) -> bool {
        let Ok(mut inner) = self.inner.lock() else {
            return false;
        };
        let hit = inner.verified.contains(key.0);
        if hit {
            inner.stats.verify_hits += 1;
        } else {
            inner.stats.verify_misses += 1;
        }
        hit
    }

    /// Remembers that this id verified with this signature.
    pub(crate) fn mark_verified(&self, key: VerifiedKey) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.verified.insert(key.0);
        }
    }

    /// The subscription's (and with [`Delivery::OncePerRelay`] the relay's) part of the
    /// delivery keys: hashed once per subscription, not once per event.
    pub(crate) fn subscription_key(&self, subscription: &SubscriptionId, relay: &RelayUrl) -> u64 {
        let mut h = self.sig_keys.build_hasher();
        subscription.as_str().hash(&mut h);
        if self.delivery == Delivery::OncePerRelay {
            relay.as_str().hash(&mut h);
        }
        h.finish().rotate_left(17)
    }

    /// Whether the event should be delivered now to the subscription whose
    /// [`subscription_key`](Self::subscription_key) this is (the first time), and remembers
    /// that it was; with `verified`, also remembers that its signature was just checked
    /// (what [`mark_verified`](Self::mark_verified) does, under the same lock: a lock costs
    /// two locked instructions, about as much as the rest of this call).
    pub(crate) fn first_delivery(
        &self,
        verified: Option<VerifiedKey>,
        id: &EventId,
        subscription_key: u64,
    ) -> bool {
        let Ok(mut inner) = self.inner.lock() else {
            return true;
        };
        if let Some(key) = verified {
            inner.verified.insert(key.0);
        }
        let first = inner.delivered.insert(id_key(id) ^ subscription_key);
        if first {
            inner.stats.delivery_misses += 1;
        } else {
            inner.stats.delivery_hits += 1;
        }
        first
    }

    pub(crate) fn stats(&self) -> DedupStats {
        self.inner
            .lock()
            .map(|inner| DedupStats {
                remembered: inner.verified.len().max(inner.delivered.len()) as u64,
                ..inner.stats
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> EventId {
        let mut b = [0u8; 32];
        b[0] = n;
        EventId::from_bytes(b)
    }

    #[test]
    fn verifies_and_delivers_once_per_subscription() {
        let d = Dedup::new(10, Delivery::OncePerSubscription);
        let a = SubscriptionId::new("a");
        let b = SubscriptionId::new("b");
        let sig = Signature::from_bytes([9; 64]);
        assert!(!d.is_verified(d.verified_key(&id(1), &sig)));
        d.mark_verified(d.verified_key(&id(1), &sig));
        assert!(d.is_verified(d.verified_key(&id(1), &sig)));
        let mut other = [9; 64];
        other[63] = 8;
        let other = Signature::from_bytes(other);
        assert!(
            !d.is_verified(d.verified_key(&id(1), &other)),
            "another signature is checked again"
        );
        let r = RelayUrl::parse("ws://r").expect("url");
        let (ka, kb) = (d.subscription_key(&a, &r), d.subscription_key(&b, &r));
        assert!(d.first_delivery(None, &id(1), ka));
        assert!(!d.first_delivery(None, &id(1), ka));
        assert!(d.first_delivery(None, &id(1), kb));
        let s = d.stats();
        assert_eq!((s.verify_hits, s.verify_misses), (1, 2));
        assert_eq!((s.delivery_hits, s.delivery_misses), (1, 2));
        // A delivery can carry the verification it follows, remembered with it.
        let checked = d.verified_key(&id(2), &sig);
        assert!(d.first_delivery(Some(checked), &id(2), ka));
        assert!(d.is_verified(checked));
        assert!(!d.is_verified(d.verified_key(&id(2), &other)));
    }

    #[test]
    fn once_per_relay_delivers_each_relays_copy_once() {
        let d = Dedup::new(10, Delivery::OncePerRelay);
        let a = SubscriptionId::new("a");
        let r1 = RelayUrl::parse("ws://r1").expect("url");
        let r2 = RelayUrl::parse("ws://r2").expect("url");
        let (k1, k2) = (d.subscription_key(&a, &r1), d.subscription_key(&a, &r2));
        assert!(d.first_delivery(None, &id(1), k1));
        assert!(d.first_delivery(None, &id(1), k2));
        assert!(!d.first_delivery(None, &id(1), k1));
    }

    #[test]
    fn every_connection_of_a_pool_keys_a_subscription_alike() {
        // Each connection holds a clone; once per subscription means the same key whichever
        // relay the event came from.
        let d = Dedup::new(10, Delivery::OncePerSubscription);
        let other_connection = d.clone();
        let a = SubscriptionId::new("a");
        let r1 = RelayUrl::parse("ws://r1").expect("url");
        let r2 = RelayUrl::parse("ws://r2").expect("url");
        let key = d.subscription_key(&a, &r1);
        assert_eq!(other_connection.subscription_key(&a, &r2), key);
        assert!(d.first_delivery(None, &id(7), key));
        assert!(!other_connection.first_delivery(
            None,
            &id(7),
            other_connection.subscription_key(&a, &r2)
        ));
    }

    #[test]
    fn the_mixer_spreads_sequential_and_shared_prefix_keys() {
        let mixer = Mixer::new();
        // Keys that differ only in high bits, or only in low bits, land all over the table:
        // random keys would fill about 2,590 of 4,096 buckets.
        for keys in [
            (0..4096u64).map(|n| n << 48).collect::<Vec<_>>(),
            (0..4096u64).collect::<Vec<_>>(),
        ] {
            let buckets: HashSet<u64> = keys.iter().map(|&k| mixer.mix(k) & 0xfff).collect();
            assert!(
                buckets.len() > 2000,
                "{} of 4096 buckets used",
                buckets.len()
            );
        }
        let mut set = BoundedSet::new(100_000);
        assert!((0..100_000u64).all(|n| set.insert(n << 32)));
        assert!((0..100_000u64).all(|n| !set.insert(n << 32)));
    }

    #[test]
    fn memory_is_bounded() {
        let d = Dedup::new(3, Delivery::OncePerSubscription);
        let sig = Signature::from_bytes([9; 64]);
        for n in 0..10 {
            d.mark_verified(d.verified_key(&id(n), &sig));
        }
        assert_eq!(d.stats().remembered, 3);
        assert!(d.is_verified(d.verified_key(&id(9), &sig)));
        assert!(!d.is_verified(d.verified_key(&id(0), &sig)));
    }
}
