//! Small helpers shared by the examples: command-line flags, readable formatting, the NIP-10
//! reply tags, the end-of-run summary and waiting for Ctrl-C. Each example still shows its
//! whole use of actix-nostr in its own file; nothing here talks to the pool except
//! [`print_summary`], which formats a `Stats` reply.
#![allow(dead_code)] // Not every example uses every helper.

use std::collections::VecDeque;
use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use actix_nostr::pool::PoolStats;
use actix_nostr::protocol::{nip19, Event, EventId, PublicKey, Tag, Timestamp};

// ---- Flags ---------------------------------------------------------------------------------

/// The command line, taken apart flag by flag: `--name value`, `--name=value` and `--flag`.
/// Whatever no one asked for is an error at [`Args::finish`], so a typo never passes
/// silently.
pub struct Args {
    given: Vec<(String, Option<String>)>,
}

impl Args {
    /// The process's arguments, without the program name.
    pub fn from_env() -> Self {
        Self::parse(std::env::args().skip(1))
    }

    /// Takes `args` apart: a word after `--name` is its value unless it is a flag itself.
    fn parse(args: impl IntoIterator<Item = String>) -> Self {
        let mut args: VecDeque<String> = args.into_iter().collect();
        let mut given = Vec::new();
        while let Some(arg) = args.pop_front() {
            match arg.split_once('=') {
                Some((name, value)) if name.starts_with("--") => {
                    given.push((name.to_owned(), Some(value.to_owned())));
                }
                _ if arg.starts_with("--") => {
                    let value = match args.front() {
                        Some(next) if !next.starts_with("--") => args.pop_front(),
                        _ => None,
                    };
                    given.push((arg, value));
                }
                // A stray word: reported by `finish`.
                _ => given.push((arg, None)),
            }
        }
        Args { given }
    }

    /// Whether `--name` was given (without a value).
    pub fn flag(&mut self, name: &str) -> Result<bool, String> {
        let values = self.take(name);
        match values.as_slice() {
            [] => Ok(false),
            [None] => Ok(true),
            _ => Err(format!("{name} takes no value and is given once")),
        }
    }

    /// Every value of a repeatable `--name value`.
    pub fn values(&mut self, name: &str) -> Result<Vec<String>, String> {
        self.take(name)
            .into_iter()
            .map(|v| v.ok_or_else(|| format!("{name} needs a value")))
            .collect()
    }

    /// The value of `--name value`, parsed; `None` when absent.
    pub fn value<T>(&mut self, name: &str) -> Result<Option<T>, String>
    where
        T: FromStr,
        T::Err: Display,
    {
        let mut values = self.values(name)?;
        let Some(last) = values.pop() else {
            return Ok(None);
        };
        if !values.is_empty() {
            return Err(format!("{name} is given more than once"));
        }
        last.parse()
            .map(Some)
            .map_err(|e| format!("{name} {last:?}: {e}"))
    }

    /// `--name <seconds>` as a duration (fractions allowed: `--run-for 2.5`).
    pub fn seconds(&mut self, name: &str) -> Result<Option<Duration>, String> {
        match self.value::<f64>(name)? {
            None => Ok(None),
            Some(s) if s.is_finite() && s > 0.0 => Ok(Some(Duration::from_secs_f64(s))),
            Some(s) => Err(format!("{name} {s}: needs a positive number of seconds")),
        }
    }

    /// Fails on anything not asked for.
    pub fn finish(self) -> Result<(), String> {
        match self.given.first() {
            None => Ok(()),
            Some((arg, _)) => Err(format!("unknown argument {arg:?} (try --help)")),
        }
    }

    fn take(&mut self, name: &str) -> Vec<Option<String>> {
        let (mine, others) = std::mem::take(&mut self.given)
            .into_iter()
            .partition(|(n, _)| n == name);
        self.given = others;
        mine.into_iter().map(|(_, v)| v).collect()
    }
}

// ---- Formatting ----------------------------------------------------------------------------

/// `HH:MM:SS` (UTC) of a timestamp.
pub fn hhmmss(at: Timestamp) -> String {
    let secs = at.as_secs() % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `HH:MM:SS` (UTC) now.
pub fn now_hhmmss() -> String {
    hhmmss(Timestamp::now())
}

/// `npub1abcd…wxyz`: enough of a NIP-19 key to tell people apart in a feed.
pub fn short_npub(pubkey: &PublicKey) -> String {
    let npub = nip19::encode_npub(pubkey);
    format!("{}…{}", &npub[..9], &npub[npub.len() - 4..])
}

/// `note1abcd…wxyz` for an event id.
pub fn short_note(id: &EventId) -> String {
    let note = nip19::encode_note(id);
    format!("{}…{}", &note[..9], &note[note.len() - 4..])
}

/// Content on one line, cut to `max` characters.
pub fn one_line(content: &str, max: usize) -> String {
    let flat: String = content
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

// ---- NIP-10 --------------------------------------------------------------------------------

/// The tags of a kind-1 reply to `parent`, as NIP-10 (marked `e` tags) says:
///
/// * a reply to a thread's root: `["e", <parent id>, <relay>, "root", <parent author>]`;
/// * a reply deeper in a thread: the parent's root again as `"root"`, then
///   `["e", <parent id>, <relay>, "reply", <parent author>]`;
/// * `p` tags: the parent's author and every `p` of the parent, except `me`.
///
/// `relay` is where the parent was seen (the relay hint).
pub fn reply_tags(parent: &Event, relay: &str, me: &PublicKey) -> Vec<Tag> {
    let root = parent.tags.iter().find(|t| {
        let v = t.as_slice();
        v.len() >= 4 && v[0] == "e" && v[3] == "root"
    });
    let mut tags = Vec::new();
    let parent_ref = |marker: &str| {
        Tag::new([
            "e".to_owned(),
            parent.id.to_hex(),
            relay.to_owned(),
            marker.to_owned(),
            parent.pubkey.to_hex(),
        ])
    };
    match root {
        Some(root) => {
            tags.push(root.clone());
            tags.push(parent_ref("reply"));
        }
        None => tags.push(parent_ref("root")),
    }
    let mut people = vec![parent.pubkey.to_hex()];
    for tag in &parent.tags {
        if let (Some("p"), Some(pubkey)) = (tag.name(), tag.value()) {
            if !people.iter().any(|p| p == pubkey) {
                people.push(pubkey.to_owned());
            }
        }
    }
    let me = me.to_hex();
    tags.extend(
        people
            .into_iter()
            .filter(|p| *p != me)
            .map(|p| Tag::new(["p".to_owned(), p])),
    );
    tags
}

/// `"↳ "` when `event` is a NIP-10 reply (it has an `e` tag), empty otherwise.
pub fn reply_mark(event: &Event) -> &'static str {
    if event.tags.iter().any(|t| t.name() == Some("e")) {
        "↳ "
    } else {
        ""
    }
}

// ---- Ending a run --------------------------------------------------------------------------

/// Prints the pool's counters: one line per relay, the totals, and the de-dup memory.
pub fn print_summary(stats: &PoolStats, ran_for: Duration) {
    println!();
    println!(
        "summary after {:.1} s (from pool::Stats)",
        ran_for.as_secs_f64()
    );
    println!(
        "  {:<34} {:>8} {:>9} {:>10} {:>10} {:>8} {:>14}",
        "relay", "connects", "received", "delivered", "duplicate", "invalid", "frames in/out"
    );
    let row = |name: &str, s: &actix_nostr::relay::RelayStatsSnapshot| {
        println!(
            "  {:<34} {:>8} {:>9} {:>10} {:>10} {:>8} {:>14}",
            name,
            s.connects,
            s.events_received,
            s.events_delivered,
            s.events_duplicate,
            s.events_invalid,
            format!("{}/{}", s.frames_in, s.frames_out),
        );
    };
    for (url, s) in &stats.relays {
        row(url.as_str(), s);
    }
    row("total", &stats.total);
    println!(
        "  de-dup: {} events verified, {} signature checks skipped, {} duplicate deliveries suppressed",
        stats.dedup.verify_misses, stats.dedup.verify_hits, stats.dedup.delivery_hits
    );
}

/// Waits for Ctrl-C, or for `limit` when given, whichever comes first. Returns whether it
/// was Ctrl-C.
pub async fn ctrl_c_or(limit: Option<Duration>) -> bool {
    use futures_util::future::{select, Either};
    let ctrl_c = Box::pin(actix_rt::signal::ctrl_c());
    let timer = Box::pin(async move {
        match limit {
            Some(d) => actix::clock::sleep(d).await,
            None => std::future::pending::<()>().await,
        }
    });
    match select(ctrl_c, timer).await {
        Either::Left((Ok(()), _)) => true,
        // No signal handler could be installed: wait for the limit alone.
        Either::Left((Err(e), timer)) => {
            log::warn!("cannot listen for Ctrl-C ({e}); stop with the time limit or kill");
            timer.await;
            false
        }
        Either::Right(((), _)) => false,
    }
}

/// Starts env_logger: `RUST_LOG` when set, otherwise `default` (for example `"warn"`).
pub fn init_logging(default: &str) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default)).init();
}

/// The `main` every example shares: parse the flags (`--help` prints `help`; a bad flag
/// prints the error and `help` and exits 2), then run, printing an error and exiting 1 if
/// the run fails.
pub async fn main_with<C, F>(
    name: &str,
    help: &str,
    parsed: Result<Option<C>, String>,
    run: impl FnOnce(C) -> F,
) -> std::process::ExitCode
where
    F: std::future::Future<Output = Result<(), Box<dyn std::error::Error>>>,
{
    use std::process::ExitCode;
    let config = match parsed {
        Ok(Some(config)) => config,
        Ok(None) => {
            println!("{help}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{name}: {e}\n\n{help}");
            return ExitCode::from(2);
        }
    };
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
