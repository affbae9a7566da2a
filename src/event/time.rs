//! Timestamps as Entra and the tools around it actually write them.
//!
//! Seen in real records: RFC 3339 with 2 to 9 fractional digits, with `Z`, with `+00:00`, with
//! other offsets, without any offset (taken as UTC, which is what Entra means), a space instead
//! of `T`, and the US-locale `1/9/2007 9:41:00 AM` form (month first, optional offset).

use jiff::civil::DateTime;
use jiff::fmt::strtime;
use jiff::{Timestamp, tz::Offset};

/// US-locale forms, tried in order after ISO 8601 fails. `%-m` and `%-d` accept one or two digits.
const US_FORMATS: &[&str] = &[
    "%m/%d/%Y %I:%M:%S %p %:z",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M:%S %:z",
    "%m/%d/%Y %H:%M:%S",
];

/// Parses a timestamp in any of the forms above; `None` when it is none of them.
pub fn parse_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts);
    }
    // ISO 8601 without an offset: Entra writes UTC.
    if let Ok(dt) = text.parse::<DateTime>() {
        return Offset::UTC.to_timestamp(dt).ok();
    }
    for format in US_FORMATS {
        if let Ok(tm) = strtime::parse(format, text) {
            if let Ok(ts) = tm.to_timestamp() {
                return Some(ts);
            }
            if let Ok(dt) = tm.to_datetime() {
                return Offset::UTC.to_timestamp(dt).ok();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_observed_form_means_the_same_instant() {
        let forms = [
            "01/09/2007 09:41:00",
            "1/9/2007 09:41:00",
            "01/09/2007 09:41:00 AM",
            "1/9/2007 9:41:00 AM",
            "1/9/2007 10:41:00 AM +01:00",
            "2007-01-09T09:41:00",
            "2007-01-09T09:41:00Z",
            "2007-01-09T09:41:00+00:00",
            "2007-01-09 09:41:00",
            "2007-01-09T11:41:00+02:00",
        ];
        let want: Timestamp = "2007-01-09T09:41:00Z".parse().unwrap();
        for form in forms {
            assert_eq!(parse_time(form), Some(want), "{form}");
        }
    }

    #[test]
    fn fractional_digits_from_two_to_nine_are_kept() {
        assert_eq!(
            parse_time("2007-01-09T09:41:00.22Z")
                .unwrap()
                .subsec_nanosecond(),
            220_000_000
        );
        assert_eq!(
            parse_time("2007-01-09T09:41:00.6816663Z")
                .unwrap()
                .subsec_nanosecond(),
            681_666_300
        );
        assert_eq!(
            parse_time("2007-01-09T09:41:00.535404056Z")
                .unwrap()
                .subsec_nanosecond(),
            535_404_056
        );
        assert_eq!(
            parse_time("2025-01-15 14:20:35.456")
                .unwrap()
                .subsec_nanosecond(),
            456_000_000
        );
    }

    #[test]
    fn afternoon_in_twelve_hour_form() {
        assert_eq!(
            parse_time("10/4/2019 4:36:19 PM"),
            Some("2019-10-04T16:36:19Z".parse().unwrap())
        );
    }

    #[test]
    fn garbage_is_none() {
        for text in [
            "",
            "yesterday",
            "13/45/2019 1:00:00",
            "2019-02-30T00:00:00Z",
            "0",
        ] {
            assert_eq!(parse_time(text), None, "{text}");
        }
    }
}
