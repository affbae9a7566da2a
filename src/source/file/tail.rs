//! Where to cut what has been read so far, so that a record being written is never taken half.
//!
//! Newline-delimited input is cut after its last complete line. A document that is not
//! line-delimited (a pretty-printed envelope) is taken only once it parses whole. What is left
//! (an unterminated last line, a document still incomplete) is taken as it is only when it is
//! the end of the file and the file is settled: not followed, or quiet for the settle time.

use serde::de::IgnoredAny;

/// How many bytes of `buf` to commit now; `None` to wait for more. `settled`: `buf` ends where
/// the file ends and nothing more is expected, so everything goes (a broken tail becomes a dead
/// letter rather than waiting forever).
pub fn cut(buf: &[u8], settled: bool) -> Option<usize> {
    if buf.is_empty() {
        return None;
    }
    if settled {
        return Some(buf.len());
    }
    let last_newline = buf.iter().rposition(|b| *b == b'\n').map(|i| i + 1)?;
    let mut values = serde_json::Deserializer::from_slice(buf).into_iter::<IgnoredAny>();
    let complete = match values.next() {
        // Only whitespace.
        None => true,
        // The first value ends on a line that is complete: every line up to the last newline is.
        Some(Ok(_)) => last_newline >= values.byte_offset(),
        // A document still being written.
        Some(Err(e)) if e.is_eof() => false,
        // Not JSON at the start: its lines go as they are and become dead letters.
        Some(Err(_)) => true,
    };
    complete.then_some(last_newline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_lines_only_until_settled() {
        assert_eq!(cut(b"{\"a\":1}\n{\"b\":", false), Some(8));
        assert_eq!(cut(b"{\"a\":1}\n{\"b\":", true), Some(13));
        assert_eq!(cut(b"{\"b\":", false), None);
        assert_eq!(cut(b"{\"b\":1}", false), None, "an unterminated line waits");
        assert_eq!(cut(b"", true), None);
    }

    #[test]
    fn a_pretty_printed_document_goes_whole() {
        let half = b"{\n  \"records\": [\n    {\"a\": 1},\n";
        assert_eq!(
            cut(half, false),
            None,
            "cut at a newline it would be two dead letters"
        );
        let whole = b"{\n  \"records\": [\n    {\"a\": 1}\n  ]\n}\n";
        assert_eq!(cut(whole, false), Some(whole.len()));
    }

    #[test]
    fn lines_that_are_not_json_go_as_they_are() {
        assert_eq!(cut(b"not json\n{\"a\":1}\n{", false), Some(17));
    }
}
