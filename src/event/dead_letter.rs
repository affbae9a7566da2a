//! Dead letters: input Herald could not use, kept with where it was and why (ARCHITECTURE.md §2.3).

use std::fmt;

use serde::Serialize;

/// Where a record sits inside one input: the line it starts on and, inside an envelope or a
/// Graph page, its index in that array (`records[2]`, `value[0]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    pub line: usize,
    pub array: Option<&'static str>,
    pub index: Option<usize>,
}

impl Position {
    pub fn line(line: usize) -> Self {
        Position {
            line,
            array: None,
            index: None,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let (Some(array), Some(index)) = (self.array, self.index) {
            write!(f, ", {array}[{index}]")?;
        }
        Ok(())
    }
}

/// One unusable record or input, with everything needed to find, understand and replay it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// The input's name: a file path, `-`, or what the source calls it.
    pub input: String,
    pub position: Position,
    /// Why it was refused, naming the field.
    pub reason: String,
    /// The record's bytes as received (the whole input when it could not be split).
    #[serde(skip)]
    pub raw: Vec<u8>,
}

impl fmt::Display for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.input, self.position, self.reason)
    }
}
