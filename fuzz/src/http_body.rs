//! `http_body`: the HTTP source's body handling (`src/source/http.rs`): the size limit on the
//! body as read, gzip detected by `Content-Encoding` or by its magic bytes, multi-member
//! decompression bounded by `max_body`, then the decoders and the starter pipeline on what
//! came out.
//!
//! The body handling is the source's own `herald::source::http::decode_body`, which its
//! request handler calls once `read_body` has checked the size as sent. Input: one byte of
//! switches (the limit, the header, how the rest is sent: as it is, gzip, two members,
//! truncated, corrupted, nested, a bomb), then the body. Asserted: nothing larger than the limit comes out; a body compressed within the
//! limit comes out exactly; one that inflates past it is refused as too large.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::checks;

/// Why the source refuses a body, without the detail.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    TooLarge,
    Gzip,
}

/// The source's own body handling, its refusal reduced to the kind.
fn decode_body(
    body: &[u8],
    content_encoding: Option<&str>,
    max_body: usize,
) -> Result<Vec<u8>, Refused> {
    herald::source::http::decode_body(body.to_vec(), content_encoding, max_body).map_err(
        |e| match e {
            herald::source::http::BodyRefused::TooLarge(_) => Refused::TooLarge,
            herald::source::http::BodyRefused::Gzip(_) => Refused::Gzip,
        },
    )
}

/// `max_body` values the switches choose from (the default is 1 MiB).
const LIMITS: [usize; 8] = [0, 1, 16, 100, 1024, 4096, 65536, 1 << 20];

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(data).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

pub fn run(data: &[u8]) {
    let Some((&switches, rest)) = data.split_first() else {
        return;
    };
    let max_body = LIMITS[usize::from(switches & 0b111)];
    let header = match (switches >> 3) & 0b11 {
        0 => None,
        1 => Some("gzip"),
        2 => Some(" GZip "),
        _ => Some("identity"),
    };
    // What the body should decode to, when it is well-formed gzip of known content.
    let mut expected: Option<Vec<u8>> = None;
    let body = match switches >> 5 {
        0 | 1 => rest.to_vec(),
        2 => {
            expected = Some(rest.to_vec());
            gzip(rest)
        }
        3 => {
            // Two members, as `cat a.gz b.gz` writes them.
            let (a, b) = rest.split_at(rest.len() / 2);
            expected = Some(rest.to_vec());
            [gzip(a), gzip(b)].concat()
        }
        4 => {
            let mut body = gzip(rest);
            body.truncate(body.len().saturating_sub(1 + rest.len() % 8));
            body
        }
        5 => {
            let mut body = gzip(rest);
            let at = rest.iter().map(|b| usize::from(*b)).sum::<usize>() % body.len();
            body[at] ^= 0x55;
            body
        }
        6 => {
            // Gzip inside gzip: decompressed once, the input is gzip bytes, not records.
            let inner = gzip(rest);
            expected = Some(inner.clone());
            gzip(&inner)
        }
        _ => {
            // A bomb: the rest repeated past the limit, compressed small.
            let unit = if rest.is_empty() { &b"{}"[..] } else { rest };
            let inflated = unit.repeat((max_body * 2 + 1).div_ceil(unit.len()));
            let body = gzip(&inflated);
            if body.len() <= max_body {
                let decoded = decode_body(&body, header, max_body);
                assert_eq!(decoded, Err(Refused::TooLarge), "a bomb was not refused");
            }
            return;
        }
    };
    // `read_body`: the body as sent may not exceed the limit either.
    if body.len() > max_body {
        return;
    }
    let bytes = match decode_body(&body, header, max_body) {
        Ok(bytes) => bytes,
        Err(refused) => {
            if let Some(expected) = &expected {
                assert!(
                    expected.len() > max_body && refused == Refused::TooLarge,
                    "well-formed gzip of {} bytes refused under a limit of {max_body}: {refused:?}",
                    expected.len()
                );
            }
            return;
        }
    };
    assert!(
        bytes.len() <= max_body,
        "{} bytes past a limit of {max_body}",
        bytes.len()
    );
    if let Some(expected) = &expected {
        assert!(bytes == *expected, "gzip did not round-trip");
    }
    checks::process(checks::starter(), &bytes);
}
