//! Per-frame cost of the protocol layer on one thread, against the floor set by libsecp256k1.
//!
//! Run with `cargo bench --bench protocol`. Needs `../shared/testdata/events-real.jsonl`
//! beside the checkout. Every real event is wrapped into a relay frame
//! `["EVENT","sub",<event>]` (the event's bytes exactly as in the corpus), and the whole
//! corpus is run through, repeated for about 2 s per measurement:
//!
//! * (a) `RelayFrame::from_slice` only;
//! * (b) the same, plus `Event::compute_id` (and the comparison with `id`);
//! * (c) the same, plus `Event::verify_signature`: what a client must do per event;
//! * (d) the floor: `secp256k1::schnorr::verify` of the same (sig, id, pubkey) triples,
//!   already parsed into secp256k1 types;
//! * (e) for the breakdown: `Event::verify_signature` alone on already parsed events.
//!
//! (c) and (e) lift each public key onto the curve unless the per-thread cache of lifted
//! keys in `Event::verify_signature` has it; (d) starts from lifted keys. On this corpus
//! about half of the events find their key in that cache, in one cold pass in file order
//! as well as in the repeated passes here, so repeating the corpus does not flatter it.
//!
//! `cargo bench --bench protocol -- b d` runs only the steps named (for profiling, e.g. under
//! `valgrind --tool=callgrind --toggle-collect='*one_run*'`).
//!
//! Each figure is the median of 5 runs; the runs of the steps take turns, so a change in
//! machine load during the benchmark hits all steps alike. On Linux the figures are the
//! benchmark thread's own CPU time (`/proc/thread-self/schedstat`), which leaves out time
//! the thread spent waiting for a CPU on a shared machine; wall-clock figures are printed
//! beside them. The ratio (c)/(d) of throughputs says how close the full per-event path
//! comes to bare signature verification (target: at least 0.90). The last line of output
//! is all figures as one JSON object.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use actix_nostr::protocol::{Event, RelayFrame};
use secp256k1::{schnorr, XOnlyPublicKey};

const RUNS: usize = 5;
const RUN_TIME: Duration = Duration::from_secs(2);
const TARGET_RATIO: f64 = 0.90;

/// Nanoseconds this thread has spent on a CPU, where Linux tells (`None` elsewhere).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Nanoseconds per item of one run: wall clock, and thread CPU time if known.
#[derive(Clone, Copy)]
struct Sample {
    wall: f64,
    cpu: Option<f64>,
}

/// Runs `f` over every item, passes over the whole slice until `RUN_TIME` has passed.
#[inline(never)]
fn one_run<T>(items: &[T], f: &mut impl FnMut(&T) -> bool) -> Sample {
    let cpu_start = thread_cpu_ns();
    let start = Instant::now();
    let mut done = 0u64;
    loop {
        for item in items {
            // The result is consumed, so no work can be optimised away; a `false` would
            // mean a broken corpus, which `main` has ruled out.
            if !black_box(f(black_box(item))) {
                panic!("benchmark step failed on an event that passed the pre-check");
            }
        }
        done += items.len() as u64;
        let elapsed = start.elapsed();
        if elapsed >= RUN_TIME {
            let cpu = cpu_start
                .zip(thread_cpu_ns())
                .map(|(a, b)| b.saturating_sub(a) as f64 / done as f64);
            return Sample {
                wall: elapsed.as_nanos() as f64 / done as f64,
                cpu,
            };
        }
    }
}

/// One benchmark step: a name and a closure doing one run.
struct Step<'a> {
    key: &'static str,
    name: &'static str,
    run: Box<dyn FnMut() -> Sample + 'a>,
    samples: Vec<Sample>,
}

impl<'a> Step<'a> {
    fn new<T>(
        key: &'static str,
        name: &'static str,
        items: &'a [T],
        mut f: impl FnMut(&T) -> bool + 'a,
    ) -> Self {
        Step {
            key,
            name,
            run: Box::new(move || one_run(items, &mut f)),
            samples: Vec::new(),
        }
    }
}

/// The median of the samples: (figure used, CPU time if known, else wall clock; wall clock).
fn median(samples: &[Sample]) -> (f64, f64) {
    let mid = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let wall = mid(samples.iter().map(|s| s.wall).collect());
    let cpu: Option<Vec<f64>> = samples.iter().map(|s| s.cpu).collect();
    (cpu.map_or(wall, mid), wall)
}

fn event_of(frame: &[u8]) -> Option<Box<Event>> {
    match RelayFrame::from_slice(frame) {
        Ok(RelayFrame::Event { event, .. }) => Some(event),
        _ => None,
    }
}

fn main() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("shared")
        .join("testdata")
        .join("events-real.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!(
                "cannot read {}: {e}\nthis benchmark needs ../shared/testdata beside the checkout",
                path.display()
            );
            std::process::exit(2);
        }
    };

    // Frames and the pre-parsed triples for the floor; events that do not parse or verify
    // are skipped (there should be none).
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut events: Vec<Event> = Vec::new();
    let mut triples: Vec<(schnorr::Signature, [u8; 32], XOnlyPublicKey)> = Vec::new();
    let mut skipped = 0usize;
    for line in text.split('\n').filter(|l| !l.trim().is_empty()) {
        let frame = format!(r#"["EVENT","sub",{}]"#, line.trim()).into_bytes();
        let Some(event) = event_of(&frame).filter(|e| e.verify().is_ok()) else {
            skipped += 1;
            continue;
        };
        let Ok(pubkey) = XOnlyPublicKey::from_byte_array(*event.pubkey.as_bytes()) else {
            skipped += 1;
            continue;
        };
        triples.push((
            schnorr::Signature::from_byte_array(*event.sig.as_bytes()),
            *event.id.as_bytes(),
            pubkey,
        ));
        events.push(*event);
        frames.push(frame);
    }
    if frames.is_empty() {
        eprintln!("no usable events in {}", path.display());
        std::process::exit(2);
    }
    let bytes: usize = frames.iter().map(Vec::len).sum();
    let avg_bytes = bytes as f64 / frames.len() as f64;
    eprintln!(
        "{} frames ({} skipped: did not parse or verify), {:.0} bytes on average; \
         median of {RUNS} runs of ~{} s each, one thread",
        frames.len(),
        skipped,
        avg_bytes,
        RUN_TIME.as_secs()
    );

    // Step keys on the command line select steps; `cargo bench` itself passes `--bench`.
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut steps = vec![
        Step::new("a", "(a) RelayFrame::from_slice", &frames, |frame| {
            event_of(frame).is_some()
        }),
        Step::new("b", "(b) parse + compute_id", &frames, |frame| {
            event_of(frame).is_some_and(|e| e.compute_id() == e.id)
        }),
        Step::new(
            "c",
            "(c) parse + compute_id + verify_signature",
            &frames,
            |frame| {
                event_of(frame)
                    .is_some_and(|e| e.compute_id() == e.id && e.verify_signature().is_ok())
            },
        ),
        Step::new(
            "d",
            "(d) secp256k1 schnorr::verify, pre-parsed (floor)",
            &triples,
            |(sig, msg, pk)| schnorr::verify(sig, msg, pk).is_ok(),
        ),
        Step::new(
            "e",
            "(e) Event::verify_signature, pre-parsed event",
            &events,
            |e| e.verify_signature().is_ok(),
        ),
    ];
    steps.retain(|s| wanted.is_empty() || wanted.iter().any(|w| w == s.key));
    for run in 1..=RUNS {
        for step in &mut steps {
            let sample = (step.run)();
            eprintln!(
                "  run {run}/{RUNS} {}: {:.3} µs/frame CPU, {:.3} µs/frame wall",
                step.name,
                sample.cpu.unwrap_or(f64::NAN) / 1000.0,
                sample.wall / 1000.0
            );
            step.samples.push(sample);
        }
    }
    let cpu_time = steps
        .iter()
        .all(|s| s.samples.iter().all(|x| x.cpu.is_some()));
    let figures: Vec<(&str, &str, f64, f64)> = steps
        .iter()
        .map(|s| {
            let (ns, wall) = median(&s.samples);
            (s.key, s.name, ns, wall)
        })
        .collect();
    let get = |key: &str| figures.iter().find(|f| f.0 == key).map(|f| f.2);

    let basis = if cpu_time {
        "thread CPU time"
    } else {
        "wall clock"
    };
    println!();
    println!("median of {RUNS} runs; frames/s and µs/frame from {basis}");
    println!();
    println!("| step | frames/s | µs/frame | wall µs/frame |");
    println!("|---|---:|---:|---:|");
    for (_, name, ns, wall) in &figures {
        println!(
            "| {name} | {:.0} | {:.3} | {:.3} |",
            1e9 / ns,
            ns / 1000.0,
            wall / 1000.0
        );
    }
    if let (Some(a), Some(b)) = (get("a"), get("b")) {
        println!(
            "| compute_id alone, (b) − (a) | | {:.3} | |",
            (b - a) / 1000.0
        );
    }
    let ratio = get("c").zip(get("d")).map(|(c, d)| d / c);
    if let Some(ratio) = ratio {
        println!();
        println!(
            "(c)/(d) throughput ratio: {ratio:.3} (target >= {TARGET_RATIO:.2}: {})",
            if ratio >= TARGET_RATIO {
                "met"
            } else {
                "NOT met"
            }
        );
    }
    let mut json = serde_json::json!({
        "bench": "protocol",
        "frames": frames.len(),
        "skipped": skipped,
        "avg_frame_bytes": avg_bytes.round(),
        "runs": RUNS,
        "run_secs": RUN_TIME.as_secs(),
        "basis": basis,
        "ratio_c_d": ratio,
    });
    for (key, name, ns, wall) in &figures {
        json[*key] = serde_json::json!({
            "step": name,
            "per_s": (1e9 / ns).round(),
            "us": ns / 1000.0,
            "wall_us": wall / 1000.0,
        });
    }
    println!("{json}");
}
