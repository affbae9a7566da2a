//! A silence's weekly window, in a time zone: `"sat,sun 22:00-04:00 Europe/Berlin"` is active
//! from 22:00 on every Saturday and Sunday until 04:00 the next morning, Berlin time (a window
//! whose end is not after its start runs past midnight). Times are civil: a window keeps its
//! hours across daylight-saving changes.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;

/// A weekly recurring window.
#[derive(Debug, Clone)]
pub struct Weekly {
    days: Vec<Weekday>,
    from: Time,
    to: Time,
    zone: TimeZone,
    text: String,
}

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

impl Weekly {
    /// Reads `DAYS FROM-TO ZONE`: days as `mon`…`sun` joined by commas (or `daily`), times as
    /// `HH:MM`, the zone an IANA name (`UTC` allowed).
    pub fn parse(text: &str) -> Result<Weekly, String> {
        let bad = |m: &str| {
            format!(
                "{text:?}: {m} (write e.g. \"sat,sun 22:00-04:00 Europe/Berlin\" or \"daily 01:00-02:00 UTC\")"
            )
        };
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [days, hours, zone] = parts[..] else {
            return Err(bad("days, hours and a time zone"));
        };
        let days = if days.eq_ignore_ascii_case("daily") {
            DAYS.iter().map(|(_, d)| *d).collect()
        } else {
            days.split(',')
                .map(|d| {
                    let d = d.trim().to_ascii_lowercase();
                    DAYS.iter()
                        .find(|(n, _)| d.starts_with(n) && n.len() >= 3)
                        .map(|(_, w)| *w)
                        .ok_or_else(|| bad(&format!("{d:?} is not a day")))
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        let (from, to) = hours
            .split_once('-')
            .ok_or_else(|| bad("hours are FROM-TO"))?;
        let time =
            |t: &str| Time::strptime("%H:%M", t).map_err(|_| bad(&format!("{t:?} is not HH:MM")));
        let (from, to) = (time(from)?, time(to)?);
        let zone = TimeZone::get(zone).map_err(|_| bad(&format!("no time zone {zone:?}")))?;
        Ok(Weekly {
            days,
            from,
            to,
            zone,
            text: text.split_whitespace().collect::<Vec<_>>().join(" "),
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the window is open at `millis` (Unix ms).
    pub fn active_at(&self, millis: i64) -> bool {
        let Ok(now) = jiff::Timestamp::from_millisecond(millis) else {
            return false;
        };
        let today = now.to_zoned(self.zone.clone()).date();
        // A window that began yesterday may still be open.
        [today.yesterday().ok(), Some(today)]
            .into_iter()
            .flatten()
            .filter(|d| self.days.contains(&d.weekday()))
            .any(|d| {
                let (start, end) = self.span(d);
                start.is_some_and(|s| s <= now) && end.is_some_and(|e| now < e)
            })
    }

    /// The window beginning on `day`.
    fn span(&self, day: Date) -> (Option<jiff::Timestamp>, Option<jiff::Timestamp>) {
        let at = |d: Date, t: Time| {
            d.to_datetime(t)
                .to_zoned(self.zone.clone())
                .ok()
                .map(|z| z.timestamp())
        };
        let end_day = if self.to > self.from {
            Some(day)
        } else {
            day.tomorrow().ok()
        };
        (at(day, self.from), end_day.and_then(|d| at(d, self.to)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn a_window_is_open_only_in_its_hours_in_its_zone() {
        let w = Weekly::parse("sat,sun 22:00-04:00 Europe/Berlin").unwrap();
        // Saturday 5 December 2026, 22:30 in Berlin is 21:30 UTC.
        assert!(w.active_at(at("2026-12-05T21:30:00Z")));
        // Sunday 03:59 Berlin (from Saturday's window).
        assert!(w.active_at(at("2026-12-06T02:59:00Z")));
        // Sunday 04:00 Berlin: closed.
        assert!(!w.active_at(at("2026-12-06T03:00:00Z")));
        // Saturday 21:59 Berlin: not yet.
        assert!(!w.active_at(at("2026-12-05T20:59:00Z")));
        // Monday 03:00 Berlin: Sunday's window.
        assert!(w.active_at(at("2026-12-07T02:00:00Z")));
        // Monday 22:30: Monday is not a day of it.
        assert!(!w.active_at(at("2026-12-07T21:30:00Z")));
    }

    #[test]
    fn a_window_keeps_its_civil_hours_across_daylight_saving() {
        let w = Weekly::parse("daily 01:00-02:00 Europe/Berlin").unwrap();
        // In July, 01:30 Berlin is 23:30 UTC the day before; in January, 00:30 UTC.
        assert!(w.active_at(at("2026-07-14T23:30:00Z")));
        assert!(!w.active_at(at("2026-01-15T23:30:00Z")));
        assert!(w.active_at(at("2026-01-16T00:30:00Z")));
    }

    #[test]
    fn bad_windows_say_why() {
        assert!(
            Weekly::parse("funday 01:00-02:00 UTC")
                .unwrap_err()
                .contains("not a day")
        );
        assert!(Weekly::parse("mon 1-2 UTC").unwrap_err().contains("HH:MM"));
        assert!(
            Weekly::parse("mon 01:00-02:00 Mars/Olympus")
                .unwrap_err()
                .contains("time zone")
        );
        assert!(Weekly::parse("mon 01:00-02:00").is_err());
    }
}
