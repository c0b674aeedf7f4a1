//! Any bytes through every framing and the message parser, then through the
//! weighing state machine: no panic, and the invariants below hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssh_hook::{Parsed, Sequencer, Tracker, Weights, classify_line, parse_message};
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let weights = Weights {
        probe: 0.5,
        pam_active: false,
    };
    let mut sequencer = Sequencer::new();
    let mut tracker = Tracker::new();
    // A line may hold several: feed each, so the sequencer and the tracker see sequences.
    for line in data.split(|&b| b == b'\n') {
        if let Parsed::Event(event) = sequencer.resolve(classify_line(line, 2026)) {
            tracker.weigh(&event, &weights);
        }
        if let Some(event) = parse_message(line) {
            // The address was read from the line: an IPv4 address appears
            // in it as written, unless it came as IPv4-mapped IPv6 (then in
            // any IPv6 spelling: `::ffff:196:abc` is 1.150.10.188).
            if let IpAddr::V4(v4) = event.addr {
                let text = v4.to_string();
                let mapped = line.to_ascii_lowercase().windows(5).any(|w| w == b"ffff:");
                assert!(
                    mapped || line.windows(text.len()).any(|w| w == text.as_bytes()),
                    "address {text} not in the line"
                );
            }
            // The user name is a piece of the line.
            if let Some(user) = event.user.as_deref()
                && !user.is_empty()
            {
                assert!(
                    line.windows(user.len()).any(|w| w == user),
                    "user not in the line"
                );
            }
        }
    }
});
