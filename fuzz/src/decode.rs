//! `decode`: any bytes as one input: the format detection and the scan
//! (`herald::event::scan`), the full decode of every record it yields, then the pure pipeline
//! (rules and planning) under the starter configuration's rules.
//!
//! Asserted: decoded events keep an id and an activity and carry no control character; dead
//! letters are located; selected events render (see [`super::checks`]).

use herald::event::{Item, scan};

use super::checks;

pub fn run(data: &[u8]) {
    scan("fuzz input", data, |item| match item {
        Item::Record(view) => {
            assert!(!view.id().is_empty() && !view.activity().is_empty());
            // Fails only past the JSON parser's nesting limit, which the scan refuses first.
            if let Ok(event) = view.decode() {
                checks::event(&event);
            }
        }
        Item::Skipped(_) => {}
        Item::Dead(dead) => checks::dead_letter(&dead),
    });
    checks::process(checks::starter(), data);
}
