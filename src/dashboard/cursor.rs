//! Cursors of the dashboard's lists (ARCHITECTURE.md §12): a page ends with a cursor naming
//! its last row in the listing's order, and the next page starts after that row (keyset
//! pagination: however many rows were added meanwhile, none is skipped or shown twice). A
//! cursor is that row's sort keys in plain text — an id (`1234`), or a time in Unix
//! milliseconds and hex of the row's text keys (`1765000000000.6b31`) — so any cursor of that
//! shape names a place in the list, and one of another shape is refused.

/// Rows a page holds by default, and at most.
pub const PAGE: i64 = 100;
pub const MAX_PAGE: i64 = 200;

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    if !text.len().is_multiple_of(2)
        || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect();
    Some(String::from_utf8_lossy(&bytes?).into_owned())
}

fn refused() -> String {
    "cursor: not a cursor of this list".to_owned()
}

/// The cursor after a row at `time` with text keys `keys`.
pub fn encode(time: i64, keys: &[&str]) -> String {
    let mut cursor = time.to_string();
    for key in keys {
        cursor.push('.');
        cursor.push_str(&hex(key));
    }
    cursor
}

/// The time and `n` text keys a cursor names.
pub fn decode(cursor: &str, n: usize) -> Result<(i64, Vec<String>), String> {
    let mut parts = cursor.split('.');
    // A time may be before 1970 (an audit record's, which anyone may have shaped).
    let time = parts
        .next()
        .filter(|t| {
            let digits = t.strip_prefix('-').unwrap_or(t);
            !digits.is_empty() && digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit())
        })
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(refused)?;
    let keys: Vec<String> = parts
        .map(unhex)
        .collect::<Option<_>>()
        .ok_or_else(refused)?;
    if keys.len() != n {
        return Err(refused());
    }
    Ok((time, keys))
}

/// A page's size: `limit` when given (1 to [`MAX_PAGE`]), else [`PAGE`].
pub fn limit(limit: Option<i64>) -> Result<i64, String> {
    match limit {
        None => Ok(PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(format!("limit: {n} is not between 1 and {MAX_PAGE}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_names_its_row_and_nothing_else_decodes() {
        let cursor = encode(1_765_000_000_000, &["Directory_ab<c>", ""]);
        assert_eq!(
            decode(&cursor, 2).unwrap(),
            (
                1_765_000_000_000,
                vec!["Directory_ab<c>".to_owned(), String::new()]
            )
        );
        assert_eq!(decode("17", 0).unwrap(), (17, Vec::new()));
        for bad in [
            "",
            "nonsense!",
            "-1",
            "1.abc",
            "1.6",
            "1.6B",
            "99999999999999999999",
        ] {
            assert!(decode(bad, 1).is_err(), "{bad:?}");
        }
        assert!(decode(&cursor, 1).is_err(), "two keys where one is wanted");
        assert_eq!(limit(None).unwrap(), PAGE);
        assert!(limit(Some(0)).is_err() && limit(Some(201)).is_err());
    }
}
