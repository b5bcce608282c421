//! The `trigger.schedule` node: its spec (a cron pattern in a time zone, or a fixed
//! interval) and the slot arithmetic the scheduler runs on. Pure: no clock, no storage.
//!
//! - **Cron**: 5 fields (`minute hour day month weekday`) or 6 (seconds first), the
//!   `@hourly`… nicknames, stepped through the IANA time zone by `croner` over `jiff`'s
//!   time zone database. Daylight-saving transitions follow Vixie cron: a time that
//!   falls in a gap (02:30 on a spring-forward night) fires once, at the first valid
//!   time after the gap; a time in a repeated hour fires once, at its first pass. Patterns
//!   with wildcards or steps in the time fields (`*/15 * * * *`) fire on every real
//!   occurrence instead: none in a gap, each pass of a repeated hour.
//! - **Interval**: every `interval_seconds` (at least [`MIN_PERIOD_SECONDS`]) of real
//!   time, counted from the activation.
//!
//! No schedule fires more often than every [`MIN_PERIOD_SECONDS`]: a cron pattern whose
//! fire times come closer is refused when saved, with its next five fire times shown.
//!
//! Catch-up: when the scheduler finds slots that passed while nothing ran (every process
//! down), it fires one run, for the latest of them, and moves on — never a burst
//! ([`ScheduleSpec::due`]).

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;
use time::OffsetDateTime;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

fluxolab_kernel::define_id!(
    /// A registered schedule: one `trigger.schedule` workflow in one environment.
    ScheduleId
);

/// The node type code of the schedule trigger.
pub const NODE_TYPE: &str = "trigger.schedule";
/// The shortest time between two fire times, in seconds.
pub const MIN_PERIOD_SECONDS: i64 = 10;
/// How many upcoming fire times are shown (in validation problems and
/// `GET /api/workflows/{id}/schedule`).
pub const UPCOMING: usize = 5;
/// The longest interval, in seconds (366 days).
pub const MAX_INTERVAL_SECONDS: i64 = 366 * 86_400;
/// How far a due search steps through missed slots one by one before it jumps.
const STEP_LIMIT: usize = 10_000;

/// When a schedule fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cadence {
    /// A cron pattern, read in `timezone` (IANA).
    Cron {
        expression: String,
        timezone: String,
    },
    /// Every `seconds` of real time.
    Interval { seconds: i64 },
}

/// A validated schedule: its cadence and, for cron, the parsed pattern and zone.
#[derive(Clone, Debug)]
pub struct ScheduleSpec {
    cadence: Cadence,
    compiled: Option<(Cron, TimeZone)>,
}

impl PartialEq for ScheduleSpec {
    fn eq(&self, other: &Self) -> bool {
        self.cadence == other.cadence
    }
}

/// The slot a due schedule fires for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DueSlot {
    /// The fire time the run is for (`scheduled_for`): the latest one not after now.
    pub slot: OffsetDateTime,
    /// Earlier slots that passed without a run (caught up by this one).
    pub skipped: i64,
    /// The fire time after `slot` (`None`: the pattern never fires again).
    pub next: Option<OffsetDateTime>,
}

/// A problem with a schedule's params: the param and what is wrong.
pub type ParamProblem = (&'static str, String);

fn to_timestamp(at: OffsetDateTime) -> Option<Timestamp> {
    Timestamp::from_nanosecond(at.unix_timestamp_nanos()).ok()
}

fn to_offset(at: Timestamp) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(at.as_nanosecond()).ok()
}

/// The zone named `name` in the bundled IANA database.
pub fn time_zone(name: &str) -> Option<TimeZone> {
    if name.is_empty() || name.len() > 64 {
        return None;
    }
    jiff::tz::db().get(name).ok()
}

fn parse_cron(expression: &str) -> Result<Cron, String> {
    let trimmed = expression.trim();
    if trimmed.is_empty() || trimmed.len() > 200 {
        return Err("must be a cron pattern of at most 200 characters".to_owned());
    }
    let fields = trimmed.split_whitespace().count();
    let nickname = trimmed.starts_with('@');
    if !nickname && !(5..=6).contains(&fields) {
        return Err(format!(
            "must have 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), not {fields}"
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(trimmed)
        .map_err(|error| format!("is not a valid cron pattern: {error}"))
}

impl ScheduleSpec {
    /// A cron schedule; the problems name the param.
    pub fn cron(expression: &str, timezone: &str) -> Result<Self, Vec<ParamProblem>> {
        let mut problems = Vec::new();
        let cron = parse_cron(expression).map_err(|message| problems.push(("cron", message)));
        let zone = time_zone(timezone).ok_or_else(|| {
            problems.push((
                "timezone",
                format!("`{timezone}` is not an IANA time zone (like `Europe/Berlin`)"),
            ));
        });
        match (cron, zone) {
            (Ok(cron), Ok(zone)) => Ok(Self {
                cadence: Cadence::Cron {
                    expression: expression.trim().to_owned(),
                    timezone: timezone.to_owned(),
                },
                compiled: Some((cron, zone)),
            }),
            _ => Err(problems),
        }
    }

    /// An interval schedule of `seconds` (at least [`MIN_PERIOD_SECONDS`]).
    pub fn interval(seconds: i64) -> Result<Self, Vec<ParamProblem>> {
        if !(MIN_PERIOD_SECONDS..=MAX_INTERVAL_SECONDS).contains(&seconds) {
            return Err(vec![(
                "interval_seconds",
                format!(
                    "must be a whole number from {MIN_PERIOD_SECONDS} to {MAX_INTERVAL_SECONDS}"
                ),
            )]);
        }
        Ok(Self {
            cadence: Cadence::Interval { seconds },
            compiled: None,
        })
    }

    /// The spec of a stored cadence.
    pub fn of(cadence: &Cadence) -> Result<Self, Vec<ParamProblem>> {
        match cadence {
            Cadence::Cron {
                expression,
                timezone,
            } => Self::cron(expression, timezone),
            Cadence::Interval { seconds } => Self::interval(*seconds),
        }
    }

    /// The spec a `trigger.schedule` node's params describe: `{cron, timezone?}` (the
    /// zone defaults to `default_timezone`, the workspace's) or `{interval_seconds}`.
    pub fn from_params(params: &Value, default_timezone: &str) -> Result<Self, Vec<ParamProblem>> {
        let cron = params.get("cron").filter(|value| !value.is_null());
        let timezone = params.get("timezone").filter(|value| !value.is_null());
        let interval = params
            .get("interval_seconds")
            .filter(|value| !value.is_null());
        match (cron, interval) {
            (Some(_), Some(_)) => Err(vec![(
                "interval_seconds",
                "give either `cron` or `interval_seconds`, not both".to_owned(),
            )]),
            (None, None) => Err(vec![(
                "cron",
                "is required (or `interval_seconds`)".to_owned(),
            )]),
            (None, Some(seconds)) => {
                if timezone.is_some() {
                    return Err(vec![(
                        "timezone",
                        "applies to `cron` only; an interval counts real time".to_owned(),
                    )]);
                }
                match seconds.as_i64() {
                    Some(seconds) => Self::interval(seconds),
                    None => Err(vec![(
                        "interval_seconds",
                        format!(
                            "must be a whole number from {MIN_PERIOD_SECONDS} to {MAX_INTERVAL_SECONDS}"
                        ),
                    )]),
                }
            }
            (Some(cron), None) => {
                let Some(expression) = cron.as_str() else {
                    return Err(vec![("cron", "must be a string".to_owned())]);
                };
                let zone = match timezone {
                    None => default_timezone,
                    Some(zone) => zone.as_str().ok_or_else(|| {
                        vec![(
                            "timezone",
                            "must be a string (an IANA time zone)".to_owned(),
                        )]
                    })?,
                };
                Self::cron(expression, zone)
            }
        }
    }

    pub fn cadence(&self) -> &Cadence {
        &self.cadence
    }

    /// The first fire time strictly after `after` (`None`: never again).
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        match (&self.cadence, &self.compiled) {
            (Cadence::Interval { seconds }, _) => {
                Some(after.replace_nanosecond(0).ok()? + time::Duration::seconds(*seconds))
            }
            (Cadence::Cron { .. }, Some((cron, zone))) => {
                let start = to_timestamp(after)?.to_zoned(zone.clone());
                let next = cron.find_next_occurrence(&start, false).ok()?;
                to_offset(next.timestamp())
            }
            (Cadence::Cron { .. }, None) => None,
        }
    }

    /// The first `count` fire times after `after`.
    pub fn upcoming(&self, after: OffsetDateTime, count: usize) -> Vec<OffsetDateTime> {
        let mut times = Vec::with_capacity(count);
        let mut from = after;
        while times.len() < count {
            let Some(next) = self.next_after(from) else {
                break;
            };
            times.push(next);
            from = next;
        }
        times
    }

    /// The fire times from `next_at` (itself one) that must be acted on at `now`: one
    /// run for the latest of them; the others are [`DueSlot::skipped`]. `None` when
    /// `next_at` is still ahead.
    pub fn due(&self, next_at: OffsetDateTime, now: OffsetDateTime) -> Option<DueSlot> {
        if next_at > now {
            return None;
        }
        if let Cadence::Interval { seconds } = self.cadence {
            let behind = (now - next_at).whole_seconds() / seconds;
            let slot = next_at + time::Duration::seconds(behind * seconds);
            return Some(DueSlot {
                slot,
                skipped: behind,
                next: Some(slot + time::Duration::seconds(seconds)),
            });
        }
        let mut slot = next_at;
        let mut skipped = 0;
        loop {
            let next = self.next_after(slot);
            match next {
                Some(next) if next <= now => {
                    slot = next;
                    skipped += 1;
                }
                _ => {
                    return Some(DueSlot {
                        slot,
                        skipped,
                        next,
                    });
                }
            }
            if usize::try_from(skipped).unwrap_or(usize::MAX) >= STEP_LIMIT {
                // A long outage of a frequent pattern: jump to the last slot by now.
                let latest = self.latest_by(now).unwrap_or(slot);
                return Some(DueSlot {
                    slot: latest.max(slot),
                    skipped: skipped + 1,
                    next: self.next_after(latest.max(slot)),
                });
            }
        }
    }

    /// The last cron fire time at or before `now`.
    fn latest_by(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let (cron, zone) = self.compiled.as_ref()?;
        let start = to_timestamp(now)?.to_zoned(zone.clone());
        let found = cron.find_previous_occurrence(&start, true).ok()?;
        to_offset(found.timestamp())
    }

    /// The shortest gap between consecutive fire times among the next few after `from`,
    /// in seconds, when it is below [`MIN_PERIOD_SECONDS`].
    fn too_frequent(&self, from: OffsetDateTime) -> Option<i64> {
        let times = self.upcoming(from, 40);
        times
            .windows(2)
            .map(|pair| (pair[1] - pair[0]).whole_seconds())
            .filter(|gap| *gap < MIN_PERIOD_SECONDS)
            .min()
    }
}

/// RFC 3339 text of an instant (a fire time in messages, a trigger body's times).
pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// Problems with the params of a `trigger.schedule` node saved at `now`, beyond their
/// types: exactly one of `cron` / `interval_seconds`, a valid pattern and zone, a
/// pattern that fires again and not more often than every [`MIN_PERIOD_SECONDS`]. A
/// pattern without a zone is checked in UTC here (the workspace's zone applies when it
/// is activated). A problem with a pattern that does fire lists its next five fire times.
pub fn check_params(params: &Value, now: OffsetDateTime) -> Vec<ParamProblem> {
    let spec = match ScheduleSpec::from_params(params, "UTC") {
        Ok(spec) => spec,
        Err(problems) => return problems,
    };
    let upcoming = spec.upcoming(now, UPCOMING);
    if upcoming.is_empty() {
        return vec![(
            "cron",
            "never fires (no date matches the pattern)".to_owned(),
        )];
    }
    match spec.too_frequent(now) {
        Some(gap) => {
            let times: Vec<String> = upcoming.into_iter().map(rfc3339).collect();
            vec![(
                "cron",
                format!(
                    "fires {gap} s apart; schedules fire at most every {MIN_PERIOD_SECONDS} s \
                     (next five fire times: {})",
                    times.join(", ")
                ),
            )]
        }
        None => Vec::new(),
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
