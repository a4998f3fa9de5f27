//! A soak test (not run by CI): the pool against several embedded relays with random faults
//! for a chosen time, a publisher and a subscriber, and a report every minute and at the
//! end — events delivered, lost, duplicated, forged-delivered, and the process's RSS.
//!
//! Every relay gets every event of a known sequence (addressable events, so each relay's
//! store stays bounded); the subscriber counts each sequence number it receives and
//! re-verifies each event. Faults, one at a time per relay, at random: killed and restarted
//! (store kept), silent (half-open) past the ping timeout, refusing connections, closing
//! with 1012 or 1013, dropping connections, and forged events (bad signature). At the end
//! the faults stop and the run waits for every event before the final report; it exits with
//! status 1 if anything was lost, duplicated or forged.
//!
//! ```text
//! cargo run --release --example soak -- --minutes 30 > /tmp/soak.log 2>&1 &
//! ```
//!
//! Flags: `--minutes <n>` (default 10), `--run-for <secs>` (instead of minutes), `--relays
//! <n>` (default 3), `--rate <events per second>` (default 100), `--seed <u64>` (default
//! random; printed, for replaying a fault schedule), `--report-every <secs>` (default 60),
//! `--fault-every <secs>` (the longest pause between two faults, default 3; the shortest is
//! a sixth of it), `--slots <n>` (events each relay keeps, default 5,000), `--dedup <n>`
//! (the pool's de-dup memory, default 32,768 ids).
//! docs/soak.md has the figures of a 30-minute run.

use std::cell::RefCell;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_nostr::pool::{RelayPool, Stats, Subscribe};
use actix_nostr::protocol::{Event, EventBuilder, Filter, Keys, Kind, PublicKey, Signature, Tag};
use actix_nostr::relay::{MessageKind, RelayMessage, RelayOptions};
use actix_nostr::testing::TestRelay;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// An addressable kind: each relay keeps one event per `d` tag, so its store holds at most
/// `--slots` events however long the run (default 5,000: far more than the events of any
/// outage, so nothing is replaced before every relay had its chance to send it).
const KIND: Kind = Kind::new(30_078);

struct Flags {
    run_for: Duration,
    relays: usize,
    rate: u32,
    seed: u64,
    report_every: Duration,
    /// The longest pause between two faults (the shortest is a sixth of it).
    fault_every: Duration,
    /// `d` tags in rotation: each relay stores at most this many events.
    slots: u64,
    /// The pool's de-dup memory, in event ids.
    dedup: usize,
}

fn usage() -> &'static str {
    "usage: soak [--minutes N | --run-for SECS] [--relays N] [--rate EVENTS_PER_SEC] \
     [--seed U64] [--report-every SECS] [--fault-every SECS] [--slots N] [--dedup N]"
}

fn parse_flags() -> Result<Flags, String> {
    let mut flags = Flags {
        run_for: Duration::from_secs(600),
        relays: 3,
        rate: 100,
        seed: rand::random(),
        report_every: Duration::from_secs(60),
        fault_every: Duration::from_secs(3),
        slots: 5_000,
        dedup: 32_768,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("{}", usage());
            std::process::exit(0);
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<f64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--minutes" => flags.run_for = Duration::from_secs_f64(number(&value)? * 60.0),
            "--run-for" => flags.run_for = Duration::from_secs_f64(number(&value)?),
            "--relays" => flags.relays = number(&value)?.max(1.0) as usize,
            "--rate" => flags.rate = number(&value)?.clamp(1.0, 10_000.0) as u32,
            "--seed" => flags.seed = value.parse().map_err(|e| format!("--seed: {e}"))?,
            "--slots" => flags.slots = number(&value)?.max(1.0) as u64,
            "--dedup" => flags.dedup = number(&value)?.max(1.0) as usize,
            "--fault-every" => {
                flags.fault_every = Duration::from_secs_f64(number(&value)?.max(0.06))
            }
            "--report-every" => {
                flags.report_every = Duration::from_secs_f64(number(&value)?.max(1.0))
            }
            other => return Err(format!("unknown flag {other}\n{}", usage())),
        }
    }
    Ok(flags)
}

/// The process's resident set size in KiB, from /proc/self/status.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// What the subscriber saw, shared with the main loop (same thread).
#[derive(Default)]
struct Tally {
    /// Per sequence number, how many times it was delivered (saturating).
    counts: Vec<u8>,
    /// Delivered events that are not ours or do not verify.
    forged: u64,
    disconnects: u64,
}

struct Subscriber {
    tally: Rc<RefCell<Tally>>,
    author: PublicKey,
}

impl Actor for Subscriber {
    type Context = Context<Self>;
}

impl Handler<RelayMessage> for Subscriber {
    type Result = ();
    fn handle(&mut self, msg: RelayMessage, _ctx: &mut Context<Self>) {
        let mut tally = self.tally.borrow_mut();
        match msg.kind {
            MessageKind::Event { event, .. } => {
                // The content is "soak <n>"; it is only trusted once the event verifies.
                let seq = event
                    .content
                    .strip_prefix("soak ")
                    .and_then(|n| n.parse::<u64>().ok());
                match seq {
                    Some(n) if event.pubkey == self.author && event.verify().is_ok() => {
                        let n = n as usize;
                        if tally.counts.len() <= n {
                            tally.counts.resize(n + 1, 0);
                        }
                        tally.counts[n] = tally.counts[n].saturating_add(1);
                    }
                    _ => tally.forged += 1,
                }
            }
            MessageKind::Disconnected { .. } => tally.disconnects += 1,
            _ => {}
        }
    }
}

/// A fault in progress on one relay, and when it ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Silent(Instant),
    Busy(Instant),
}

struct Counts {
    published: u64,
    delivered: u64,
    lost: u64,
    duplicated: u64,
}

/// Delivered, duplicated, and lost among the events older than `grace` (newer ones may
/// still be on their way).
fn count(tally: &Tally, published: u64, settled: u64) -> Counts {
    let mut c = Counts {
        published,
        delivered: 0,
        lost: 0,
        duplicated: 0,
    };
    for n in 0..published as usize {
        let k = tally.counts.get(n).copied().unwrap_or(0);
        if k > 0 {
            c.delivered += 1;
        }
        if k > 1 {
            c.duplicated += u64::from(k - 1);
        }
        if k == 0 && (n as u64) < settled {
            c.lost += 1;
        }
    }
    c
}

#[allow(clippy::too_many_arguments)]
async fn report(
    label: &str,
    started: Instant,
    pool: &Addr<RelayPool>,
    tally: &Rc<RefCell<Tally>>,
    published: u64,
    settled: u64,
    forged_sent: u64,
    faults: u64,
) -> Counts {
    let stats = pool.send(Stats).await.ok();
    let t = tally.borrow();
    let c = count(&t, published, settled);
    let (invalid, reconnects, attempts) = stats
        .map(|s| {
            (
                s.total.events_invalid,
                s.total.reconnects,
                s.total.connect_attempts,
            )
        })
        .unwrap_or_default();
    println!(
        "{label} t={:>5}s published={} delivered={} lost={} duplicated={} forged_delivered={} \
         forged_sent={forged_sent} forged_rejected={invalid} faults={faults} reconnects={reconnects} \
         attempts={attempts} rss_kib={}",
        started.elapsed().as_secs(),
        c.published,
        c.delivered,
        c.lost,
        c.duplicated,
        t.forged,
        rss_kib()
    );
    c
}

fn main() -> ExitCode {
    let flags = match parse_flags() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let ok = actix::System::new().block_on(run(flags));
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn run(flags: Flags) -> bool {
    println!(
        "soak: {} relays, {} events/s, {:?}, seed {} (replay with --seed {})",
        flags.relays, flags.rate, flags.run_for, flags.seed, flags.seed
    );
    let mut rng = StdRng::seed_from_u64(flags.seed);
    let mut relays = Vec::new();
    for _ in 0..flags.relays {
        // No frame log: it would grow for the whole run.
        match TestRelay::builder().record_frames(false).start().await {
            Ok(r) => relays.push(r),
            Err(e) => {
                eprintln!("relay: {e}");
                return false;
            }
        }
    }
    let keys = Keys::generate();
    let tally = Rc::new(RefCell::new(Tally::default()));
    let subscriber = Subscriber {
        tally: tally.clone(),
        author: keys.public_key(),
    }
    .start();
    let options = RelayOptions::new()
        .backoff(vec![
            Duration::from_millis(100),
            Duration::from_millis(250),
            Duration::from_millis(500),
            Duration::from_secs(1),
        ])
        .stable_after(Duration::from_secs(2))
        .ping_interval(Duration::from_millis(500))
        .ping_timeout(Duration::from_secs(1));
    // A de-dup memory that fills within the first minutes at the default rate, so the
    // warm-up ends well inside a run (the default, 131,072 ids, takes 22 minutes at 100/s).
    let mut builder = RelayPool::builder()
        .recipient(subscriber.recipient())
        .dedup_capacity(flags.dedup)
        .default_options(options);
    for r in &relays {
        builder = builder.relay(r.url());
    }
    let pool = match builder.start() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pool: {e}");
            return false;
        }
    };
    let filter = Filter::new().kind(KIND).author(keys.public_key());
    if let Err(e) = pool.send(Subscribe::new(vec![filter]).id("soak")).await {
        eprintln!("subscribe: {e}");
        return false;
    }

    let started = Instant::now();
    let base = actix_nostr::protocol::Timestamp::now().as_secs();
    let interval = Duration::from_secs_f64(1.0 / f64::from(flags.rate));
    let mut faults = vec![Fault::None; relays.len()];
    let mut fault_count = 0u64;
    let mut forged_sent = 0u64;
    let mut published = 0u64;
    let mut next_publish = Instant::now();
    let mut next_fault = Instant::now() + Duration::from_secs(2);
    let mut next_report = Instant::now() + flags.report_every;
    let mut minute = 0u32;
    // Published more than this long ago and not delivered counts as lost in the reports
    // along the way (the longest fault plus reconnecting).
    let grace = Duration::from_secs(15);
    let mut published_at: std::collections::VecDeque<(Instant, u64)> = Default::default();
    report(
        "start  ",
        started,
        &pool,
        &tally,
        published,
        0,
        forged_sent,
        fault_count,
    )
    .await;

    while started.elapsed() < flags.run_for {
        let now = Instant::now();
        if now >= next_publish {
            let n = published;
            // The created_at moves one second per event: the resubscriptions' `since`
            // does real work, and no two events of a relay's store tie.
            let event = EventBuilder::new(KIND, format!("soak {n}"))
                .tag(Tag::identifier((n % flags.slots).to_string()))
                .created_at(actix_nostr::protocol::Timestamp::from_secs(base + n))
                .sign(&keys);
            for r in &relays {
                r.publish(event.clone());
            }
            published += 1;
            published_at.push_back((now, n));
            next_publish += interval;
        }
        for (i, fault) in faults.iter_mut().enumerate() {
            match *fault {
                Fault::Silent(until) if now >= until => {
                    relays[i].set_silent(false);
                    *fault = Fault::None;
                }
                Fault::Busy(until) if now >= until => *fault = Fault::None,
                _ => {}
            }
        }
        if now >= next_fault {
            let most = flags.fault_every.as_millis().max(60) as u64;
            next_fault = now + Duration::from_millis(rng.random_range(most / 6..most));
            let i = rng.random_range(0..relays.len());
            if faults[i] == Fault::None {
                fault_count += 1;
                faults[i] = inject(&mut relays[i], &mut rng, &keys, &mut forged_sent).await;
            }
        }
        if now >= next_report {
            next_report += flags.report_every;
            minute += 1;
            while published_at
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > grace)
            {
                published_at.pop_front();
            }
            let settled = published_at.front().map_or(published, |(_, n)| *n);
            report(
                &format!("rep {minute:>3}"),
                started,
                &pool,
                &tally,
                published,
                settled,
                forged_sent,
                fault_count,
            )
            .await;
        }
        let wake = next_publish.min(next_fault).min(next_report);
        actix::clock::sleep(wake.saturating_duration_since(Instant::now())).await;
    }

    // The faults stop; everything published must arrive.
    for r in &relays {
        r.set_silent(false);
        r.set_refusing(false);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let lost = count(&tally.borrow(), published, published).lost;
        if lost == 0 {
            break;
        }
        actix::clock::sleep(Duration::from_millis(100)).await;
    }
    let c = report(
        "end    ",
        started,
        &pool,
        &tally,
        published,
        published,
        forged_sent,
        fault_count,
    )
    .await;
    let forged = tally.borrow().forged;
    let ok = c.lost == 0 && c.duplicated == 0 && forged == 0;
    println!(
        "RESULT: {} (delivered {} of {}, lost {}, duplicated {}, forged delivered {forged})",
        if ok { "ok" } else { "FAILED" },
        c.delivered,
        c.published,
        c.lost,
        c.duplicated
    );
    ok
}

/// Starts one random fault on `relay`; returns what is still in progress.
async fn inject(
    relay: &mut TestRelay,
    rng: &mut StdRng,
    keys: &Keys,
    forged_sent: &mut u64,
) -> Fault {
    let now = Instant::now();
    match rng.random_range(0..6) {
        0 => {
            if let Err(e) = relay.restart(true).await {
                eprintln!("restart failed: {e}");
            }
            Fault::None
        }
        1 => {
            // Longer than ping interval + timeout, so the pool notices.
            relay.set_silent(true);
            Fault::Silent(now + Duration::from_millis(rng.random_range(2_000..4_000)))
        }
        2 => {
            let refuse = Duration::from_millis(rng.random_range(300..3_000));
            relay.refuse_for(refuse);
            relay.drop_connections();
            Fault::Busy(now + refuse)
        }
        3 => {
            let (code, reason) = if rng.random_bool(0.5) {
                (1012, "service restart")
            } else {
                (1013, "try again later")
            };
            relay.close_connections(code, reason);
            Fault::None
        }
        4 => {
            relay.drop_connections();
            Fault::None
        }
        _ => {
            let mut forged: Event = EventBuilder::new(KIND, "forged")
                .tag(Tag::identifier("forged"))
                .sign(keys);
            let mut sig = *forged.sig.as_bytes();
            sig[rng.random_range(0..64)] ^= 1;
            forged.sig = Signature::from_bytes(sig);
            *forged_sent += relay.send_forged_event(&forged) as u64;
            Fault::None
        }
    }
}
