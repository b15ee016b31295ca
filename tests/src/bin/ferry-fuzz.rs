//! Ferry's decoder fuzzer: feeds every parser that takes bytes from a stranger millions of
//! inputs made by mutating valid ones, and fails on the first panic, or on a decoded message
//! that does not survive being encoded and decoded again; it prints the input that did it.
//!
//! The decoders: the signaling JSON both ways, the classic API's queries (through the server's
//! router), the transfer protocol's messages and their pieces, chunk headers, offers with
//! folder paths (made safe for the disk), and resume answers (checked against the offer).
//!
//! cargo-fuzz needs a nightly toolchain, which this project's machines cannot install, so this
//! is a mutation fuzzer of its own on the stable one: not coverage-guided, but it starts from
//! every message kind the protocol has and mutates the bytes, the JSON tokens and the numbers
//! in them. Run it with `cargo run --release -p ferry-e2e --bin ferry-fuzz -- --cases 10000000`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Parser;
use ferry_core::paths::arrange;
use ferry_core::resume::{held_digest, read_held};
use ferry_protocol::chunk::ChunkHeader;
use ferry_protocol::pieces::Joiner;
use ferry_protocol::{
    ClientMessage, DigestHex, FileMeta, HeldFile, ServerMessage, TransferId, TransferMessage, Wire,
};

/// Mutates valid inputs of every decoder and reports the first one that breaks a decoder.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Inputs per decoder.
    #[arg(long, default_value_t = 10_000_000)]
    cases: u64,
    /// Where the pseudo-random sequence starts; the same seed gives the same inputs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Only the decoders whose name contains this.
    #[arg(long)]
    only: Option<String>,
}

/// One decoder under test: its name, its valid inputs, and what to do with an input (an error
/// when a property broke; a panic is caught and reported as well).
struct Target {
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    check: fn(&[u8]) -> Result<()>,
}

fn main() {
    let args = Args::parse();
    // Panics are caught and reported with their input; the default hook would print each.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failed = false;
    for target in targets() {
        if args
            .only
            .as_ref()
            .is_some_and(|only| !target.name.contains(only))
        {
            continue;
        }
        match run(&target, args.cases, args.seed) {
            Ok(report) => println!("{}: {report}", target.name),
            Err(error) => {
                println!("{}: FAILED: {error:#}", target.name);
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}

/// Runs `cases` inputs through `target`; says how many, how fast and how many decoded.
fn run(target: &Target, cases: u64, seed: u64) -> Result<String> {
    let mut rng = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    let mut input = Vec::new();
    let mut decoded = 0u64;
    for case in 0..cases {
        mutate(&target.seeds, &mut rng, &mut input);
        match catch_unwind(AssertUnwindSafe(|| (target.check)(&input))) {
            Ok(Ok(())) => decoded += 1,
            Ok(Err(error)) if error.downcast_ref::<Rejected>().is_some() => {}
            Ok(Err(error)) => bail!(
                "case {case}: {error:#}\ninput: {:?}",
                String::from_utf8_lossy(&input)
            ),
            Err(_) => bail!(
                "case {case} panicked\ninput: {:?}",
                String::from_utf8_lossy(&input)
            ),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(format!(
        "{cases} cases in {secs:.1} s ({:.0}/s), {decoded} accepted, nothing broke",
        cases as f64 / secs
    ))
}

/// An input the decoder refused, as it should refuse what it cannot read.
#[derive(Debug, thiserror::Error)]
#[error("refused")]
struct Rejected;

trait Refused<T> {
    /// A decoder's error as a plain refusal: not a failure of the fuzzed property.
    fn refused(self) -> Result<T>;
}

impl<T, E> Refused<T> for Result<T, E> {
    fn refused(self) -> Result<T> {
        self.map_err(|_| Rejected.into())
    }
}

/// Decodes `text` as `T`; if it decodes, it must come back the same through its encoding.
fn round_trip<T: Wire + PartialEq + std::fmt::Debug>(input: &[u8]) -> Result<()> {
    let text = std::str::from_utf8(input).refused()?;
    let message = T::from_json(text).refused()?;
    let again = T::from_json(&message.to_json())?;
    if again != message {
        bail!("decoded {message:?}, but its encoding decodes as {again:?}");
    }
    Ok(())
}

fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "signaling: client messages",
            seeds: client_messages(),
            check: round_trip::<ClientMessage>,
        },
        Target {
            name: "signaling: server messages",
            seeds: server_messages(),
            check: round_trip::<ServerMessage>,
        },
        Target {
            name: "classic API queries",
            seeds: [
                "username=ana&identity=0123abcd",
                "friends=ana&friends=B%C3%B3&listUsers=true",
                "username=%E2%80%AEana&identity=0",
                "listUsers=true&username=x&identity=1&friends=",
            ]
            .iter()
            .map(|seed| seed.as_bytes().to_vec())
            .collect(),
            check: classic::query,
        },
        Target {
            name: "transfer messages",
            seeds: transfer_messages(),
            check: round_trip::<TransferMessage>,
        },
        Target {
            name: "transfer messages in pieces",
            seeds: pieces(),
            check: joined,
        },
        Target {
            name: "chunk headers",
            seeds: vec![
                [
                    ChunkHeader {
                        file: 3,
                        offset: 1 << 40,
                    }
                    .encode()
                    .as_slice(),
                    b"data",
                ]
                .concat(),
                ChunkHeader { file: 0, offset: 0 }.encode().to_vec(),
            ],
            check: chunk,
        },
        Target {
            name: "offers with folder paths",
            seeds: offers(),
            check: offer,
        },
        Target {
            name: "resume answers",
            seeds: resume_answers(),
            check: resume_answer,
        },
    ]
}

fn client_messages() -> Vec<Vec<u8>> {
    [
        r#"{"type":"join","version":4,"nick":"ana","token":null}"#,
        r#"{"type":"join","version":4,"nick":"Bó 🚢","token":"3ac01e973c4150cbd32fcc23bf4bc5fe9becc8af2324d2b4d820722c61abb5f8"}"#,
        r#"{"type":"heartbeat"}"#,
        r#"{"type":"leave"}"#,
        r#"{"type":"signal","to":"b208e9e14fdb7d2b5ea695f8dfbe3122","payload":{"kind":"offer","sdp":"v=0\r\n"},"lane":3}"#,
        r#"{"type":"signal","to":"b208e9e14fdb7d2b5ea695f8dfbe3122","payload":{"kind":"ice_candidate","candidate":"candidate:1 1 udp 2122260223 192.0.2.1 5000 typ host","sdp_mid":"0","sdp_m_line_index":0}}"#,
    ]
    .iter()
    .map(|seed| seed.as_bytes().to_vec())
    .collect()
}

fn server_messages() -> Vec<Vec<u8>> {
    [
        r#"{"type":"welcome","id":"b208e9e14fdb7d2b5ea695f8dfbe3122","nick":"ana","token":"3ac01e973c4150cbd32fcc23bf4bc5fe9becc8af2324d2b4d820722c61abb5f8","resumed":false,"users":[{"id":"a51a910afa626c99974ec9d3c726d3b2","nick":"bo"}],"ice_servers":[{"urls":["turn:192.0.2.1:3478"],"username":"1:a","credential":"x"}],"relay_only":false,"heartbeat_secs":30}"#,
        r#"{"type":"users_changed","joined":[{"id":"a51a910afa626c99974ec9d3c726d3b2","nick":"bo"}],"left":["b208e9e14fdb7d2b5ea695f8dfbe3122"]}"#,
        r#"{"type":"signal","from":"a51a910afa626c99974ec9d3c726d3b2","from_nick":"bo","payload":{"kind":"answer","sdp":"v=0"},"lane":0}"#,
        r#"{"type":"error","code":"peer_busy","message":"dropped"}"#,
        r#"{"type":"ice_servers","ice_servers":[]}"#,
    ]
    .iter()
    .map(|seed| seed.as_bytes().to_vec())
    .collect()
}

fn transfer_id() -> TransferId {
    TransferId::from_random_bytes([7; TransferId::BYTES])
}

fn digest() -> DigestHex {
    DigestHex::from_digest([0xab; 32])
}

fn file(path: &str, name: &str, size: u64) -> FileMeta {
    FileMeta {
        name: name.to_owned(),
        path: path.to_owned(),
        size,
        mime: "text/plain".to_owned(),
    }
}

fn transfer_messages() -> Vec<Vec<u8>> {
    let held = HeldFile {
        complete: false,
        blocks: vec![[0, 3], [5, 9]],
        digest: digest(),
    };
    [
        TransferMessage::Offer {
            id: transfer_id(),
            files: vec![file("Holiday/day 1", "a.jpg", 5_000_000), file("", "b", 0)],
            version: 4,
            empty_folders: vec!["Holiday/empty".to_owned()],
        },
        TransferMessage::Accept { version: 4 },
        TransferMessage::Decline,
        TransferMessage::Cancel,
        TransferMessage::Block {
            file: 1,
            index: 7,
            digest: digest(),
        },
        TransferMessage::FileEnd {
            index: 0,
            digest: digest(),
        },
        TransferMessage::Stored { file: 0, block: 2 },
        TransferMessage::Resend { file: 0, block: 2 },
        TransferMessage::FileVerified { index: 1 },
        TransferMessage::Failed {
            reason: "disk full".to_owned(),
        },
        TransferMessage::Resume {
            id: transfer_id(),
            version: 4,
        },
        TransferMessage::Resumed { files: vec![held] },
        TransferMessage::Probe {
            id: transfer_id(),
            version: 4,
        },
        TransferMessage::Piece {
            text: "{\"type\":".to_owned(),
            last: false,
        },
    ]
    .iter()
    .map(|message| message.to_json().into_bytes())
    .collect()
}

/// Messages in pieces, one text per line, so mutations can cut across pieces: the check feeds
/// each line to a joiner. The joiner takes pieces of any length, so short ones make short,
/// fast cases.
fn pieces() -> Vec<Vec<u8>> {
    transfer_messages()
        .into_iter()
        .map(|message| {
            let text = String::from_utf8(message).unwrap_or_default();
            let mut lines = Vec::new();
            let mut rest = text.as_str();
            while !rest.is_empty() {
                let mut end = rest.len().min(40);
                while !rest.is_char_boundary(end) {
                    end -= 1;
                }
                let (piece, after) = rest.split_at(end);
                rest = after;
                lines.push(
                    TransferMessage::Piece {
                        text: piece.to_owned(),
                        last: rest.is_empty(),
                    }
                    .to_json(),
                );
            }
            lines.join("\n").into_bytes()
        })
        .collect()
}

/// Feeds each line of `input` to one joiner: whatever comes out must be a message that
/// encodes and decodes the same.
fn joined(input: &[u8]) -> Result<()> {
    let text = std::str::from_utf8(input).refused()?;
    let mut joiner = Joiner::default();
    for line in text.split('\n') {
        if let Some(message) = joiner.read(line).refused()? {
            let again = TransferMessage::from_json(&message.to_json())?;
            if again != message {
                bail!("joined {message:?}, which encodes as another message");
            }
        }
    }
    Ok(())
}

fn chunk(input: &[u8]) -> Result<()> {
    let header = ChunkHeader::decode(input).refused()?;
    if header.encode() != input[..12] {
        bail!("{header:?} does not encode as the bytes it came from");
    }
    Ok(())
}

fn offers() -> Vec<Vec<u8>> {
    let offer = |files: Vec<FileMeta>, empty: Vec<&str>| TransferMessage::Offer {
        id: transfer_id(),
        files,
        version: 4,
        empty_folders: empty.into_iter().map(str::to_owned).collect(),
    };
    [
        offer(
            vec![
                file("Top/sub", "a.bin", 5),
                file("Top", "CON", 1),
                file("Top/día 1", "ü 🚢.txt", 2),
                file("top/SUB", "A.bin", 3),
            ],
            vec!["Top/empty", "Top/sub/"],
        ),
        offer(vec![file("", "notes.txt", 10)], vec![]),
        offer(vec![file("a/../b", "x", 1)], vec!["C:/x"]),
    ]
    .iter()
    .map(|message| message.to_json().into_bytes())
    .collect()
}

/// An offer's files and empty folders made safe: every name and folder that comes out is
/// relative, climbs nowhere, and names no drive.
fn offer(input: &[u8]) -> Result<()> {
    let text = std::str::from_utf8(input).refused()?;
    let TransferMessage::Offer {
        files,
        empty_folders,
        ..
    } = TransferMessage::from_json(text).refused()?
    else {
        return Err(Rejected.into());
    };
    let arranged = arrange(&files, &empty_folders).refused()?;
    if arranged.files.len() != files.len() {
        bail!(
            "{} files came in, {} went out",
            files.len(),
            arranged.files.len()
        );
    }
    let paths = arranged
        .files
        .iter()
        .flat_map(|file| [file.path.as_str(), file.name.as_str()])
        .chain(arranged.empty_folders.iter().map(String::as_str));
    for path in paths {
        let unsafe_part = path.starts_with('/')
            || path.contains('\\')
            || path.contains(':')
            || path.split('/').any(|part| part == ".." || part == ".");
        if unsafe_part {
            bail!("{path:?} came out of arrange");
        }
    }
    Ok(())
}

fn resume_answers() -> Vec<Vec<u8>> {
    // Answers that read well against the offer below: some blocks held, every block, none.
    let answer = |blocks: Vec<[u32; 2]>, complete: bool| {
        let held: u32 = blocks.iter().map(|[start, end]| end - start).sum();
        let digests = vec![[1u8; 32]; held as usize];
        TransferMessage::Resumed {
            files: vec![HeldFile {
                complete,
                blocks,
                digest: held_digest(&digests),
            }],
        }
        .to_json()
        .into_bytes()
    };
    vec![
        answer(vec![[0, 3], [5, 9]], false),
        answer(vec![[0, 10]], true),
        answer(Vec::new(), false),
    ]
}

/// A resume answer read against a one-file offer of 10 blocks whose digests are all known:
/// what is read as held lies within the file.
fn resume_answer(input: &[u8]) -> Result<()> {
    let text = std::str::from_utf8(input).refused()?;
    let TransferMessage::Resumed { files } = TransferMessage::from_json(text).refused()? else {
        return Err(Rejected.into());
    };
    let digests = vec![vec![Some([1u8; 32]); 10]];
    let held = read_held(&files, &[("a.bin", 10 * 1024 * 1024)], &digests).refused()?;
    if held.len() != 1 {
        bail!("one file offered, {} read as held", held.len());
    }
    Ok(())
}

/// The classic API, asked through the server's own router.
mod classic {
    use std::sync::OnceLock;

    use axum::body::Body;
    use axum::http::Request;
    use ferry_signaling::{AppState, Config, Limits};
    use tower::ServiceExt;

    use super::{Refused, Result, bail};

    fn runtime() -> &'static tokio::runtime::Runtime {
        static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
        RUNTIME.get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
        })
    }

    fn router() -> &'static axum::Router {
        static ROUTER: OnceLock<axum::Router> = OnceLock::new();
        ROUTER.get_or_init(|| {
            ferry_signaling::app(AppState::new(Config {
                limits: Limits {
                    http_requests_per_sec: u32::MAX,
                    http_request_burst: u32::MAX,
                    ..Limits::default()
                },
                ..Config::default()
            }))
        })
    }

    /// Asks `/?QUERY`: every answer is a complete response, XML for the classic API.
    pub(super) fn query(input: &[u8]) -> Result<()> {
        let query = std::str::from_utf8(input).refused()?;
        let request = Request::get(format!("/?{query}"))
            .body(Body::empty())
            .refused()?;
        let response = runtime().block_on(router().clone().oneshot(request))?;
        let status = response.status();
        let body = runtime().block_on(axum::body::to_bytes(response.into_body(), 1 << 20))?;
        let body = String::from_utf8(body.to_vec())?;
        if status.is_success() && body.starts_with("<?xml") && !body.ends_with("</result>") {
            bail!("a cut-off answer: {body}");
        }
        if status.is_server_error() {
            bail!("{status}: {body}");
        }
        Ok(())
    }
}

/// A small, fast pseudo-random generator (xorshift64*): the same seed, the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes and tokens mutations like to put in: JSON's structure, numbers at their edges,
/// characters that are hard to get right.
const DICTIONARY: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "null",
    "true",
    "false",
    "-1",
    "0",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "1e308",
    "-0",
    "1.5",
    "\"\"",
    "\"type\"",
    "..",
    "/",
    "C:",
    "CON",
    "\u{202e}",
    "\u{0}",
    "é",
    "🚢",
    "%",
    "%zz",
    "%00",
    "&",
    "=",
    "+",
    "\r\n",
];

/// Numbers at the edges of what the fields hold.
const EDGES: &[&str] = &[
    "0",
    "1",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "-1",
    "1e3",
    "0.5",
];

/// Where the runs of bytes that `is` holds for are, as `(start, end)`.
fn runs(input: &[u8], is: impl Fn(u8) -> bool) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (at, &byte) in input.iter().enumerate() {
        match (is(byte), start) {
            (true, None) => start = Some(at),
            (false, Some(from)) => {
                runs.push((from, at));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        runs.push((from, input.len()));
    }
    runs
}

/// Where the contents of the input's JSON strings are (between their quotes), near enough:
/// an escaped quote ends one early, which is one more mutation.
fn strings(input: &[u8]) -> Vec<(usize, usize)> {
    let quotes: Vec<usize> = input
        .iter()
        .enumerate()
        .filter(|(_, byte)| **byte == b'"')
        .map(|(at, _)| at)
        .collect();
    quotes
        .chunks_exact(2)
        .map(|pair| (pair[0] + 1, pair[1]))
        .collect()
}

/// Makes `input` from a seed with a few mutations.
fn mutate(seeds: &[Vec<u8>], rng: &mut Rng, input: &mut Vec<u8>) {
    input.clear();
    input.extend_from_slice(&seeds[rng.below(seeds.len())]);
    // One mutation half the time, two a quarter of the time, and so on: most inputs stay
    // close enough to valid to get past the first checks.
    let mutations = 1 + (rng.next().trailing_zeros() as usize).min(5);
    for _ in 0..mutations {
        let at = rng.below(input.len() + 1);
        match rng.below(11) {
            // A number in the input at its edges: the JSON stays valid, the value does not.
            8 | 9 => {
                let numbers = runs(input, |b| b.is_ascii_digit());
                if !numbers.is_empty() {
                    let (start, end) = numbers[rng.below(numbers.len())];
                    let edge = EDGES[rng.below(EDGES.len())];
                    input.splice(start..end, edge.bytes());
                }
            }
            // A string's contents made hard: a token, or many of one.
            10 => {
                let strings = strings(input);
                if !strings.is_empty() {
                    let (start, end) = strings[rng.below(strings.len())];
                    let token = DICTIONARY[rng.below(DICTIONARY.len())].replace('"', "\\\"");
                    let times = 1 + rng.below(3) * rng.below(200);
                    input.splice(start..end, token.repeat(times).into_bytes());
                }
            }
            // Flip a bit.
            0 if !input.is_empty() => {
                let at = at.min(input.len() - 1);
                input[at] ^= 1 << rng.below(8);
            }
            // A random byte in place of one.
            1 if !input.is_empty() => {
                let at = at.min(input.len() - 1);
                input[at] = rng.next() as u8;
            }
            // Cut a stretch out.
            2 => {
                let end = (at + rng.below(16)).min(input.len());
                input.drain(at..end);
            }
            // Repeat a stretch.
            3 => {
                let end = (at + rng.below(64)).min(input.len());
                let stretch = input[at..end].to_vec();
                input.splice(at..at, stretch);
            }
            // Put in a token.
            4 | 5 => {
                let token = DICTIONARY[rng.below(DICTIONARY.len())].as_bytes();
                input.splice(at..at, token.iter().copied());
            }
            // Cut the input short.
            6 => input.truncate(at),
            // Splice in a stretch of another seed.
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                let end = (from + rng.below(64)).min(other.len());
                input.splice(at..at, other[from..end].iter().copied());
            }
        }
    }
}
