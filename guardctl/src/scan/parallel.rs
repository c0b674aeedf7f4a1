//! Parsing a large log on every core while the tally stays in line order.
//!
//! A reader thread cuts the input into blocks of whole lines; workers parse
//! blocks into [`Parsed`] lines that point into their block (no allocation
//! per line); the caller's thread receives blocks back in input order and
//! hands each line, with its event re-borrowed from the block, to `each`.
//! While the next block is not parsed yet, the caller's thread parses one
//! itself, so both cores stay busy although tallying costs less than parsing.

use ssh_hook::{Classifier, Event, Parsed, Unaddressed};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;
use std::ops::Range;
use std::sync::mpsc::{Receiver, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex};

/// Bytes per block: big enough to amortise the hand-offs.
const BLOCK: usize = 1 << 20;

/// What one line is, pointing into its block: a user name borrowed from
/// the line is kept as its range.
enum Line {
    Other,
    Missed,
    Event(Event<'static>, Option<UserAt>),
    // Rare: boxed, so every line's record stays small.
    Unaddressed(Box<(Unaddressed<'static>, Option<UserAt>)>),
    RepeatLast(u32),
}

/// Where a user name sits in its block: start and length.
type UserAt = (u32, u32);

/// A line's bytes in its block: start and end.
type LineAt = (u32, u32);

/// A block's parsed lines (each with its byte range).
type Lines = Vec<(LineAt, Line)>;

/// A block to parse: its number, its bytes, and a spare (empty) line list to fill.
type Todo = (u64, Vec<u8>, Lines);

/// A block and its parsed lines (each with its byte range).
struct Done {
    seq: u64,
    block: Vec<u8>,
    lines: Lines,
}

/// Reads `input` to its end, parsing on `workers` threads, and calls
/// `each(line, parsed)` for every line in input order. Returns the bytes read.
///
/// The calling thread reads the blocks itself between deliveries (a
/// reader thread of its own was a third thread on two cores, and the
/// parsers' core paid for it).
pub fn for_each_line(
    input: Box<dyn Read + Send>,
    year: i32,
    workers: usize,
    mut each: impl FnMut(&[u8], Parsed<'_>) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    let workers = workers.max(1);
    let depth = workers * 4;
    std::thread::scope(|scope| {
        let (block_tx, block_rx) = sync_channel::<Todo>(depth);
        let (done_tx, done_rx) = sync_channel::<Done>(depth);
        let block_rx = Arc::new(Mutex::new(block_rx));
        for _ in 0..workers {
            let block_rx = Arc::clone(&block_rx);
            let done_tx = done_tx.clone();
            scope.spawn(move || parse_blocks(&block_rx, &done_tx, year));
        }
        drop(done_tx);
        let mut reader = BlockReader::new(input);
        // Delivered blocks' line lists, emptied, for the next blocks (a
        // megabyte each: reused, they are not faulted in anew every block).
        let mut spare_lines: Vec<Lines> = Vec::new();
        let mut block_tx = Some(block_tx);
        let mut in_flight = 0usize;
        let mut waiting = BTreeMap::new();
        let mut next = 0u64;
        let mut result = Ok(());
        // The block delivered last, for a `last message repeated` that opens the next.
        let mut before: Option<Done> = None;
        loop {
            // Keep the parsers fed: read until `depth` blocks are out.
            while in_flight < depth && result.is_ok() {
                let Some(tx) = &block_tx else { break };
                match reader.next_block() {
                    Ok(Some((seq, block))) => {
                        match tx.send((seq, block, spare_lines.pop().unwrap_or_default())) {
                            Ok(()) => in_flight += 1,
                            Err(_) => block_tx = None,
                        }
                    }
                    Ok(None) => block_tx = None,
                    Err(e) => result = Err(e),
                }
            }
            if result.is_err() {
                block_tx = None;
            }
            if in_flight == 0 {
                break;
            }
            let done = match done_rx.try_recv() {
                Ok(done) => done,
                Err(TryRecvError::Disconnected) => break,
                // Nothing parsed yet: parse a waiting block here rather than
                // sit idle (the tally is lighter than the parsing).
                Err(TryRecvError::Empty) => match steal(&block_rx) {
                    Some((seq, block, mut lines)) => {
                        parse_block(&block, year, &mut lines);
                        Done { seq, block, lines }
                    }
                    None => match done_rx.recv() {
                        Ok(done) => done,
                        Err(_) => break,
                    },
                },
            };
            in_flight -= 1;
            waiting.insert(done.seq, done);
            while let Some(done) = waiting.remove(&next) {
                next += 1;
                if result.is_ok() {
                    result = deliver(&done, before.as_ref(), &mut each);
                }
                if let Some(old) = before.replace(done) {
                    let Done {
                        block, mut lines, ..
                    } = old;
                    lines.clear();
                    spare_lines.push(lines);
                    reader.spare.push(block);
                }
            }
        }
        drop(block_tx);
        result.map(|()| reader.total)
    })
}

/// Hands each line of `done` to `each`, a syslog daemon's `last message
/// repeated N times` as the line before it N times over (so the caller's
/// [`ssh_hook::Sequencer`] need not keep every line's event).
fn deliver(
    done: &Done,
    before: Option<&Done>,
    each: &mut impl FnMut(&[u8], Parsed<'_>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    for (at, (range, line)) in done.lines.iter().enumerate() {
        let text = &done.block[span(*range)];
        let parsed = match line {
            Line::RepeatLast(times) => repeated(done, before, at, *times),
            _ => parsed_at(done, at),
        };
        each(text, parsed)?;
    }
    Ok(())
}

/// The line before line `at` (in `done`, or the last of `before`),
/// `times` over; lines that are themselves repeats are looked past.
fn repeated<'d>(done: &'d Done, before: Option<&'d Done>, at: usize, times: u32) -> Parsed<'d> {
    let in_block = done.lines[..at]
        .iter()
        .rposition(|(_, line)| !matches!(line, Line::RepeatLast(_)))
        .map(|earlier| (done, earlier));
    let origin = in_block.or_else(|| {
        let before = before?;
        let last = before.lines.len().checked_sub(1)?;
        Some((before, last))
    });
    match origin.map(|(block, earlier)| parsed_at(block, earlier)) {
        Some(Parsed::Event(event)) => Parsed::Event(Event { times, ..event }),
        Some(Parsed::Unaddressed(line)) => Parsed::Unaddressed(Unaddressed { times, ..line }),
        _ => Parsed::NotSshd,
    }
}

/// Line `at` of `done` as parsed, its user name re-borrowed from the block.
fn parsed_at(done: &Done, at: usize) -> Parsed<'_> {
    let user = |at: &Option<UserAt>, owned: &Option<Cow<'static, [u8]>>| match at {
        Some((start, len)) => Some(Cow::Borrowed(&done.block[span((*start, start + len))])),
        None => owned.clone(),
    };
    match &done.lines[at].1 {
        Line::Other => Parsed::NotSshd,
        Line::Missed => Parsed::Unrecognised,
        Line::Event(event, range) => Parsed::Event(Event {
            user: user(range, &event.user),
            ..event.clone()
        }),
        Line::Unaddressed(boxed) => {
            let (line, at) = &**boxed;
            Parsed::Unaddressed(Unaddressed {
                user: user(at, &line.user),
                ..line.clone()
            })
        }
        Line::RepeatLast(_) => Parsed::NotSshd,
    }
}

/// Cuts the input into numbered blocks ending at a line end (the last may not).
struct BlockReader {
    input: Box<dyn Read + Send>,
    /// Delivered blocks, to read the next ones into.
    spare: Vec<Vec<u8>>,
    carry: Vec<u8>,
    seq: u64,
    total: u64,
    done: bool,
}

impl BlockReader {
    fn new(input: Box<dyn Read + Send>) -> BlockReader {
        BlockReader {
            input,
            spare: Vec::new(),
            carry: Vec::new(),
            seq: 0,
            total: 0,
            done: false,
        }
    }

    /// The next block, `None` at the end.
    fn next_block(&mut self) -> std::io::Result<Option<(u64, Vec<u8>)>> {
        if self.done {
            return Ok(None);
        }
        let mut block = self.spare.pop().unwrap_or_default();
        block.clear();
        block.extend_from_slice(&self.carry);
        self.carry.clear();
        block.reserve(BLOCK);
        // `take` + `read_to_end` fills spare capacity: no zeroing a megabyte per block.
        let n = (&mut self.input)
            .take(BLOCK as u64)
            .read_to_end(&mut block)?;
        self.total += n as u64;
        if n == 0 {
            self.done = true;
            if block.is_empty() {
                return Ok(None);
            }
        } else if let Some(last) = block.iter().rposition(|&b| b == b'\n') {
            self.carry.extend_from_slice(&block[last + 1..]);
            block.truncate(last + 1);
        }
        let seq = self.seq;
        self.seq += 1;
        Ok(Some((seq, block)))
    }
}

/// A block no parser has taken yet, if one is there. `try_lock`: a
/// parser holds the lock while it waits for a block, and only this thread
/// sends them.
fn steal(blocks: &Mutex<Receiver<Todo>>) -> Option<Todo> {
    blocks.try_lock().ok().and_then(|rx| rx.try_recv().ok())
}

fn parse_blocks(
    blocks: &Mutex<Receiver<Todo>>,
    out: &std::sync::mpsc::SyncSender<Done>,
    year: i32,
) {
    loop {
        let next = blocks.lock().ok().and_then(|rx| rx.recv().ok());
        let Some((seq, block, mut lines)) = next else {
            return;
        };
        parse_block(&block, year, &mut lines);
        if out.send(Done { seq, block, lines }).is_err() {
            return;
        }
    }
}

fn parse_block(block: &[u8], year: i32, lines: &mut Lines) {
    let base = block.as_ptr() as usize;
    lines.reserve(block.len() / 100);
    let mut classifier = Classifier::new(year);
    let mut start = 0;
    while start < block.len() {
        let end = memchr::memchr(b'\n', &block[start..]).map_or(block.len(), |i| start + i + 1);
        let line = match classifier.classify(&block[start..end]) {
            Parsed::NotSshd => Line::Other,
            Parsed::Unrecognised => Line::Missed,
            Parsed::Event(event) => {
                let (range, user) = detach_user(event.user, base);
                let owned = Event {
                    kind: event.kind,
                    addr: event.addr,
                    port: event.port,
                    user,
                    method: event.method,
                    pid: event.pid,
                    time: event.time,
                    times: event.times,
                };
                Line::Event(owned, range)
            }
            Parsed::Unaddressed(line) => {
                let (range, user) = detach_user(line.user, base);
                let owned = Unaddressed {
                    kind: line.kind,
                    user,
                    pid: line.pid,
                    time: line.time,
                    times: line.times,
                    follows: line.follows,
                };
                Line::Unaddressed(Box::new((owned, range)))
            }
            Parsed::RepeatLast(times) => Line::RepeatLast(times),
        };
        lines.push(((offset(start), offset(end)), line));
        start = end;
    }
}

/// A user name borrowed from the block at `base` as its place there; an
/// owned one (from a journal JSON line) as it is.
fn detach_user(
    user: Option<Cow<'_, [u8]>>,
    base: usize,
) -> (Option<UserAt>, Option<Cow<'static, [u8]>>) {
    match user {
        Some(Cow::Borrowed(u)) => {
            let at = u.as_ptr() as usize - base;
            (Some((offset(at), offset(u.len()))), None)
        }
        Some(Cow::Owned(u)) => (None, Some(Cow::Owned(u))),
        None => (None, None),
    }
}

/// An offset into a block as stored: blocks are [`BLOCK`] bytes plus a
/// partial line, far below 4 GiB.
fn offset(at: usize) -> u32 {
    u32::try_from(at).expect("a block is smaller than 4 GiB")
}

/// The bytes `(start, end)` of a block.
fn span((start, end): (u32, u32)) -> Range<usize> {
    start as usize..end as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_back_in_order_with_their_events() {
        let mut text = String::new();
        for i in 0..30_000u32 {
            text.push_str(&format!(
                "Nov 24 10:00:01 h sshd[1]: Invalid user u{i} from 192.0.2.{} port {}\n",
                i % 250 + 1,
                i % 60_000 + 1
            ));
            text.push_str("Nov 24 10:00:01 h CRON[2]: something else\n");
        }
        let mut seen = 0u32;
        let bytes = for_each_line(
            Box::new(std::io::Cursor::new(text.clone().into_bytes())),
            2026,
            2,
            |line, parsed| {
                if seen.is_multiple_of(2) {
                    let Parsed::Event(e) = parsed else {
                        panic!("line {seen}: {parsed:?}")
                    };
                    let user = format!("u{}", seen / 2);
                    assert_eq!(e.user.as_deref(), Some(user.as_bytes()));
                    assert!(line.starts_with(b"Nov 24"));
                } else {
                    assert_eq!(parsed, Parsed::NotSshd);
                }
                seen += 1;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, 60_000);
        assert_eq!(bytes, text.len() as u64);
    }

    #[test]
    fn a_repeat_is_the_line_before_even_across_blocks() {
        let mut text = String::new();
        for i in 0..30_000u32 {
            text.push_str(&format!(
                "Nov 24 10:00:01 h sshd[1]: Invalid user u{i} from 192.0.2.{} port 4\n",
                i % 250 + 1
            ));
            // Repeats of repeats look past each other to the sshd line.
            text.push_str("Nov 24 10:00:01 h last message repeated 2 times\n");
            text.push_str("Nov 24 10:00:01 h last message repeated 3 times\n");
        }
        assert!(text.len() > 2 * BLOCK, "crosses block boundaries");
        let mut seen = 0u32;
        for_each_line(
            Box::new(std::io::Cursor::new(text.into_bytes())),
            2026,
            2,
            |_, parsed| {
                let Parsed::Event(e) = parsed else {
                    panic!("line {seen}: {parsed:?}")
                };
                let user = format!("u{}", seen / 3);
                assert_eq!(e.user.as_deref(), Some(user.as_bytes()), "line {seen}");
                assert_eq!(e.times, [1, 2, 3][seen as usize % 3]);
                seen += 1;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, 90_000);
    }
}
