//! Times on the command line: RFC 3339 in, RFC 3339 out, and IANA time
//! zones checked against the tz database bundled with `jiff` (the same on
//! every machine, whatever `/usr/share/zoneinfo` holds).

use std::time::Duration;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

use crate::home::UsageError;

/// The zone of a time given with only an offset (or `Z`).
pub(crate) const UTC: &str = "UTC";

/// Longest `--expires` accepted for an invite link.
pub(crate) const MAX_INVITE_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

/// A moment and the IANA zone it was meant in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Moment {
    /// Milliseconds since the Unix epoch.
    pub(crate) ms: u64,
    /// The zone's canonical IANA name (`UTC` when none was given).
    pub(crate) zone: String,
}

/// Reads `--at`: an RFC 3339 time with an offset (`2025-03-07T17:00:00Z`,
/// `...T18:00:00+01:00`), an RFC 9557 one with its zone
/// (`...T18:00:00+01:00[Europe/Berlin]`), or a time without offset that is
/// read in `zone` (`2025-03-07T18:00` with `--tz Europe/Berlin`).
pub(crate) fn parse_moment(text: &str, zone: Option<&str>) -> Result<Moment, UsageError> {
    let zone = zone.map(time_zone).transpose()?;
    let text = text.trim();
    if text.contains('[') {
        let zoned: ZonedDateTime = text
            .parse()
            .map_err(|e| UsageError(format!("`{text}` is not an RFC 3339 time ({e})")))?;
        let named = name_of(zoned.time_zone());
        if let Some(zone) = &zone
            && name_of(zone) != named
        {
            return Err(UsageError(format!(
                "`{text}` names another time zone than --tz {}",
                name_of(zone)
            )));
        }
        return moment(zoned.timestamp(), named);
    }
    if let Ok(timestamp) = text.parse::<Timestamp>() {
        let named = zone.as_ref().map_or_else(|| UTC.to_owned(), name_of);
        return moment(timestamp, named);
    }
    let civil: DateTime = text
        .parse()
        .map_err(|e| UsageError(format!("`{text}` is not an RFC 3339 time ({e})")))?;
    let Some(zone) = zone else {
        return Err(UsageError(format!(
            "`{text}` has no offset: add one (Z, +01:00) or give --tz ZONE"
        )));
    };
    let zoned = civil.to_zoned_datetime(zone.clone()).map_err(|e| {
        UsageError(format!(
            "`{text}` does not exist in {} ({e})",
            name_of(&zone)
        ))
    })?;
    moment(zoned.timestamp(), name_of(&zone))
}

/// Reads an instant (`due --at`): RFC 3339 with an offset, or RFC 9557.
pub(crate) fn parse_instant(text: &str) -> Result<u64, UsageError> {
    parse_moment(text, None).map(|moment| moment.ms)
}

/// Checks that `name` is a zone of the IANA database (any case); returns
/// the zone.
pub(crate) fn time_zone(name: &str) -> Result<TimeZone, UsageError> {
    jiff::tz::db().get(name.trim()).map_err(|_| {
        UsageError(format!(
            "`{name}` is not an IANA time zone (like Europe/Berlin or UTC)"
        ))
    })
}

/// The canonical name of `zone` (the one its lookup gave).
fn name_of(zone: &TimeZone) -> String {
    zone.iana_name().unwrap_or(UTC).to_owned()
}

fn moment(timestamp: Timestamp, zone: String) -> Result<Moment, UsageError> {
    let ms = u64::try_from(timestamp.as_millisecond())
        .map_err(|_| UsageError(format!("{timestamp} is before 1970")))?;
    Ok(Moment { ms, zone })
}

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    u64::try_from(Timestamp::now().as_millisecond()).unwrap_or(0)
}

/// `ms` as RFC 3339 UTC with milliseconds (`2025-03-07T17:00:00.000Z`).
pub(crate) fn utc(ms: u64) -> String {
    match timestamp(ms) {
        Some(timestamp) => timestamp.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => String::from("(out of range)"),
    }
}

/// `ms` as RFC 3339 UTC to the second (`2025-03-07T17:00:00Z`), for people.
pub(crate) fn utc_seconds(ms: u64) -> String {
    match timestamp(ms) {
        Some(timestamp) => timestamp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => String::from("(out of range)"),
    }
}

/// `ms` in `zone` for people: `2025-03-07 18:00 CET (Europe/Berlin)`; UTC
/// for a zone this build does not know.
pub(crate) fn local(ms: u64, zone: &str) -> String {
    let Some(timestamp) = timestamp(ms) else {
        return String::from("(out of range)");
    };
    let zone = jiff::tz::db().get(zone).unwrap_or(TimeZone::UTC);
    let zoned = timestamp.to_zoned_datetime(zone.clone());
    let name = name_of(&zone);
    let abbreviation = zoned.strftime("%Z").to_string();
    if abbreviation == name {
        zoned.strftime("%Y-%m-%d %H:%M ").to_string() + &name
    } else {
        format!("{} ({name})", zoned.strftime("%Y-%m-%d %H:%M %Z"))
    }
}

/// `ms` in `zone` as RFC 9557 (`2025-03-07T18:00:00+01:00[Europe/Berlin]`).
pub(crate) fn zoned(ms: u64, zone: &str) -> String {
    let Some(timestamp) = timestamp(ms) else {
        return String::from("(out of range)");
    };
    let zone = jiff::tz::db().get(zone).unwrap_or(TimeZone::UTC);
    timestamp.to_zoned_datetime(zone).to_string()
}

fn timestamp(ms: u64) -> Option<Timestamp> {
    Timestamp::from_millisecond(i64::try_from(ms).ok()?).ok()
}

/// Reads `--expires`: `30m`, `48h`, `7d`, `1day 12h` (humantime), at most
/// [`MAX_INVITE_LIFETIME`].
pub(crate) fn parse_lifetime(text: &str) -> Result<Duration, String> {
    let lifetime = humantime::parse_duration(text)
        .map_err(|_| format!("`{text}` is not a duration (like 30m, 48h or 7d)"))?;
    if lifetime.is_zero() {
        return Err(String::from("an invite must live longer than 0s"));
    }
    if lifetime > MAX_INVITE_LIFETIME {
        return Err(format!(
            "an invite lives at most {}",
            humantime::format_duration(MAX_INVITE_LIFETIME)
        ));
    }
    Ok(lifetime)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-03-07T17:00:00Z.
    const FRIDAY_17_UTC: u64 = 1_741_366_800_000;

    #[test]
    fn rfc3339_with_an_offset_is_utc_unless_a_zone_is_given() {
        let at = parse_moment("2025-03-07T17:00:00Z", None).unwrap();
        assert_eq!(
            at,
            Moment {
                ms: FRIDAY_17_UTC,
                zone: "UTC".into()
            }
        );
        let at = parse_moment("2025-03-07T18:00:00+01:00", Some("europe/berlin")).unwrap();
        assert_eq!(at.ms, FRIDAY_17_UTC);
        assert_eq!(at.zone, "Europe/Berlin", "the canonical name");
        assert_eq!(
            parse_instant("2025-03-07T17:00:00.000Z").unwrap(),
            FRIDAY_17_UTC
        );
    }

    #[test]
    fn a_time_without_offset_is_read_in_the_zone() {
        let at = parse_moment("2025-03-07T18:00", Some("Europe/Berlin")).unwrap();
        assert_eq!(at.ms, FRIDAY_17_UTC);
        let at = parse_moment("2025-03-07T12:00:00", Some("America/New_York")).unwrap();
        assert_eq!(at.ms, FRIDAY_17_UTC);
        let error = parse_moment("2025-03-07T18:00", None).unwrap_err();
        assert!(error.0.contains("no offset"), "{error}");
    }

    #[test]
    fn an_rfc9557_zone_annotation_names_the_zone() {
        let at = parse_moment("2025-03-07T18:00:00+01:00[Europe/Berlin]", None).unwrap();
        assert_eq!(
            at,
            Moment {
                ms: FRIDAY_17_UTC,
                zone: "Europe/Berlin".into()
            }
        );
        assert!(
            parse_moment(
                "2025-03-07T18:00:00+01:00[Europe/Berlin]",
                Some("Asia/Tokyo")
            )
            .is_err()
        );
    }

    #[test]
    fn zones_must_be_in_the_iana_database() {
        assert!(time_zone("Europe/Berlin").is_ok());
        assert!(time_zone("UTC").is_ok());
        for bad in ["Mars/Olympus_Mons", "Europe/Berlin; rm -rf", "", "+01:00"] {
            let error = time_zone(bad).unwrap_err();
            assert!(error.0.contains("not an IANA time zone"), "{bad}: {error}");
        }
        assert!(parse_moment("2025-03-07T17:00:00Z", Some("Nowhere/Town")).is_err());
        assert!(parse_moment("next friday", None).is_err());
        assert!(parse_moment("1969-12-31T23:59:59Z", None).is_err());
    }

    #[test]
    fn times_print_in_utc_and_in_their_zone() {
        assert_eq!(utc(FRIDAY_17_UTC + 5), "2025-03-07T17:00:00.005Z");
        assert_eq!(utc_seconds(FRIDAY_17_UTC + 999), "2025-03-07T17:00:00Z");
        assert_eq!(
            local(FRIDAY_17_UTC, "Europe/Berlin"),
            "2025-03-07 18:00 CET (Europe/Berlin)"
        );
        assert_eq!(local(FRIDAY_17_UTC, "UTC"), "2025-03-07 17:00 UTC");
        assert_eq!(
            zoned(FRIDAY_17_UTC, "Europe/Berlin"),
            "2025-03-07T18:00:00+01:00[Europe/Berlin]"
        );
        assert_eq!(
            zoned(FRIDAY_17_UTC, "Not/AZone"),
            "2025-03-07T17:00:00+00:00[UTC]"
        );
    }

    #[test]
    fn invite_lifetimes_are_bounded() {
        assert_eq!(parse_lifetime("7d"), Ok(Duration::from_secs(7 * 24 * 3600)));
        assert_eq!(parse_lifetime("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_lifetime("0s").is_err());
        assert!(parse_lifetime("1y").is_err());
        assert!(parse_lifetime("soon").is_err());
    }
}
