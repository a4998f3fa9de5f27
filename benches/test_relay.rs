//! How fast `TestRelay` serves stored events to one plain reader, so that client benchmarks
//! can show the relay is not their bottleneck.
//!
//! Run with `cargo bench --bench test_relay --features testing`. The relay is preloaded with
//! N signed kind-1 events (N = 100,000, or `TEST_RELAY_BENCH_EVENTS`), each sized so that its
//! `["EVENT","all",<event>]` frame is about 785 bytes (a typical note). A plain awc client
//! then sends `["REQ","all",{}]` and counts EVENT frames until EOSE, without parsing them;
//! the time runs from sending the REQ to receiving EOSE. Three runs, each on a fresh
//! connection; the figures are their median. The last line of output is the same figures
//! as one JSON object.

use std::time::{Duration, Instant};

use actix_nostr::protocol::{Event, EventBuilder, Keys, Timestamp};
use actix_nostr::testing::TestRelay;
use awc::ws::{Frame, Message};
use futures_util::{SinkExt as _, StreamExt as _};

const DEFAULT_EVENTS: usize = 100_000;
const RUNS: usize = 3;
const TARGET_FRAME_BYTES: usize = 785;
const SUB: &str = "all";
/// Generous bound for one run, so a broken relay ends the bench instead of hanging it.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn frame_len(event: &Event) -> usize {
    format!("[\"EVENT\",\"{SUB}\",{}]", event.as_json()).len()
}

/// N notes by one author, one second apart, with content padded to the target frame size.
fn sign_events(n: usize) -> Vec<Event> {
    let keys = Keys::generate();
    let base = Timestamp::now().as_secs().saturating_sub(n as u64);
    let probe = EventBuilder::text_note("").sign(&keys);
    let pad = TARGET_FRAME_BYTES.saturating_sub(frame_len(&probe));
    (0..n)
        .map(|i| {
            let mut content = format!("note {i} ");
            let fill = pad.saturating_sub(content.len());
            content.extend(std::iter::repeat_n('x', fill));
            EventBuilder::text_note(content)
                .created_at(Timestamp::from_secs(base + i as u64))
                .sign(&keys)
        })
        .collect()
}

struct Run {
    frames: usize,
    bytes: usize,
    elapsed: Duration,
}

async fn one_run(url: &str) -> Result<Run, String> {
    let client = awc::Client::builder()
        .max_http_version(awc::http::Version::HTTP_11)
        .finish();
    let (_, mut ws) = client
        .ws(url)
        .max_frame_size(1 << 20)
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let req = format!("[\"REQ\",\"{SUB}\",{{}}]");
    let start = Instant::now();
    ws.send(Message::Text(req.into()))
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut frames = 0;
    let mut bytes = 0;
    loop {
        match ws.next().await {
            Some(Ok(Frame::Text(text))) if text.starts_with(b"[\"EVENT\"") => {
                frames += 1;
                bytes += text.len();
            }
            Some(Ok(Frame::Text(text))) if text.starts_with(b"[\"EOSE\"") => break,
            Some(Ok(other)) => return Err(format!("unexpected frame {other:?}")),
            Some(Err(e)) => return Err(format!("protocol error: {e}")),
            None => return Err("the relay closed the connection".to_owned()),
        }
    }
    Ok(Run {
        frames,
        bytes,
        elapsed: start.elapsed(),
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let n = std::env::var("TEST_RELAY_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_EVENTS);

    let signing = Instant::now();
    let events = sign_events(n);
    let avg_frame = events.iter().map(frame_len).sum::<usize>() as f64 / n.max(1) as f64;
    println!(
        "signed {n} events in {:.2} s (average frame {avg_frame:.0} bytes)",
        signing.elapsed().as_secs_f64()
    );

    let result = actix::System::new().block_on(async move {
        let relay = TestRelay::builder()
            .record_frames(false)
            .start()
            .await
            .map_err(|e| format!("relay: {e}"))?;
        let preloading = Instant::now();
        let stored = relay.preload(events);
        println!(
            "preloaded {stored} events in {:.2} s",
            preloading.elapsed().as_secs_f64()
        );
        let mut runs = Vec::new();
        for i in 1..=RUNS {
            let run = actix::clock::timeout(RUN_TIMEOUT, one_run(&relay.url()))
                .await
                .map_err(|_| format!("run {i} took longer than {RUN_TIMEOUT:?}"))??;
            if run.frames != stored {
                return Err(format!(
                    "run {i}: {} EVENT frames, expected {stored}",
                    run.frames
                ));
            }
            let secs = run.elapsed.as_secs_f64();
            println!(
                "run {i}: {} frames, {:.1} MB in {:.3} s: {:.0} frames/s, {:.1} MB/s",
                run.frames,
                run.bytes as f64 / 1e6,
                secs,
                run.frames as f64 / secs,
                run.bytes as f64 / 1e6 / secs
            );
            runs.push(run);
        }
        Ok::<_, String>(runs)
    });

    let runs = match result {
        Ok(runs) => runs,
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
    };
    let frames_per_s = median(
        runs.iter()
            .map(|r| r.frames as f64 / r.elapsed.as_secs_f64())
            .collect(),
    );
    let mb_per_s = median(
        runs.iter()
            .map(|r| r.bytes as f64 / 1e6 / r.elapsed.as_secs_f64())
            .collect(),
    );
    let secs = median(runs.iter().map(|r| r.elapsed.as_secs_f64()).collect());
    println!(
        "median of {RUNS}: {frames_per_s:.0} EVENT frames/s, {mb_per_s:.1} MB/s ({n} events in {secs:.3} s)"
    );
    println!(
        "{{\"bench\":\"test_relay\",\"events\":{n},\"avg_frame_bytes\":{avg_frame:.0},\"runs\":{RUNS},\"median_seconds\":{secs:.4},\"frames_per_s\":{frames_per_s:.0},\"mb_per_s\":{mb_per_s:.2}}}"
    );
}
