use serde_json::json;
use time::macros::datetime;

use super::*;

fn cron(expression: &str, zone: &str) -> ScheduleSpec {
    ScheduleSpec::cron(expression, zone).unwrap_or_else(|problems| panic!("{problems:?}"))
}

fn problems(params: &Value) -> Vec<String> {
    check_params(params, datetime!(2027-01-04 10:00 UTC))
        .into_iter()
        .map(|(param, message)| format!("{param}: {message}"))
        .collect()
}

#[test]
fn a_daily_time_in_a_spring_forward_gap_fires_once_at_the_next_valid_time() {
    // New York skips 02:00–03:00 on 2027-03-14: 02:30 runs at 03:00 EDT that day.
    let spec = cron("30 2 * * *", "America/New_York");
    assert_eq!(
        spec.upcoming(datetime!(2027-03-13 12:00 UTC), 3),
        vec![
            datetime!(2027-03-14 07:00 UTC),
            datetime!(2027-03-15 06:30 UTC),
            datetime!(2027-03-16 06:30 UTC),
        ]
    );
    // Berlin skips 02:00–03:00 on 2027-03-28.
    let spec = cron("30 2 * * *", "Europe/Berlin");
    assert_eq!(
        spec.upcoming(datetime!(2027-03-27 12:00 UTC), 2),
        vec![
            datetime!(2027-03-28 01:00 UTC),
            datetime!(2027-03-29 00:30 UTC)
        ]
    );
}

#[test]
fn a_daily_time_in_a_repeated_hour_fires_once() {
    // New York repeats 01:00–02:00 on 2027-11-07: 01:30 runs at its first pass only.
    let spec = cron("30 1 * * *", "America/New_York");
    assert_eq!(
        spec.upcoming(datetime!(2027-11-06 12:00 UTC), 2),
        vec![
            datetime!(2027-11-07 05:30 UTC),
            datetime!(2027-11-08 06:30 UTC)
        ]
    );
    // Berlin repeats 02:00–03:00 on 2027-10-31.
    let spec = cron("30 2 * * *", "Europe/Berlin");
    assert_eq!(
        spec.upcoming(datetime!(2027-10-30 12:00 UTC), 2),
        vec![
            datetime!(2027-10-31 00:30 UTC),
            datetime!(2027-11-01 01:30 UTC)
        ]
    );
}

#[test]
fn a_stepped_pattern_follows_real_time_through_a_repeated_hour() {
    let spec = cron("*/30 * * * *", "Europe/Berlin");
    assert_eq!(
        spec.upcoming(datetime!(2027-10-30 23:59 UTC), 4),
        vec![
            datetime!(2027-10-31 00:00 UTC),
            datetime!(2027-10-31 00:30 UTC),
            datetime!(2027-10-31 01:00 UTC),
            datetime!(2027-10-31 01:30 UTC),
        ]
    );
}

#[test]
fn six_fields_put_seconds_first_and_the_zone_moves_the_hour() {
    let spec = cron("15 0 9 * * MON", "America/Sao_Paulo");
    assert_eq!(
        spec.next_after(datetime!(2027-01-01 00:00 UTC)),
        Some(datetime!(2027-01-04 12:00:15 UTC))
    );
    assert_eq!(
        cron("@hourly", "UTC").next_after(datetime!(2027-01-01 00:10 UTC)),
        Some(datetime!(2027-01-01 01:00 UTC))
    );
}

#[test]
fn missed_slots_are_caught_up_by_one_run_for_the_latest() {
    let spec = cron("0 * * * *", "UTC");
    assert_eq!(
        spec.due(
            datetime!(2027-01-01 10:00 UTC),
            datetime!(2027-01-01 09:59 UTC)
        ),
        None
    );
    assert_eq!(
        spec.due(
            datetime!(2027-01-01 10:00 UTC),
            datetime!(2027-01-01 10:00 UTC)
        ),
        Some(DueSlot {
            slot: datetime!(2027-01-01 10:00 UTC),
            skipped: 0,
            next: Some(datetime!(2027-01-01 11:00 UTC)),
        })
    );
    assert_eq!(
        spec.due(
            datetime!(2027-01-01 10:00 UTC),
            datetime!(2027-01-01 15:20 UTC)
        ),
        Some(DueSlot {
            slot: datetime!(2027-01-01 15:00 UTC),
            skipped: 5,
            next: Some(datetime!(2027-01-01 16:00 UTC)),
        })
    );
    let every_ten = cron("*/10 * * * * *", "UTC");
    let due = every_ten.due(
        datetime!(2027-01-01 00:00 UTC),
        datetime!(2027-03-01 00:00:05 UTC),
    );
    assert_eq!(
        due.map(|due| due.slot),
        Some(datetime!(2027-03-01 00:00 UTC))
    );
    assert_eq!(
        due.and_then(|due| due.next),
        Some(datetime!(2027-03-01 00:00:10 UTC))
    );
}

#[test]
fn intervals_count_real_time_from_the_last_slot() {
    let spec = ScheduleSpec::interval(60).unwrap_or_else(|problems| panic!("{problems:?}"));
    assert_eq!(
        spec.next_after(datetime!(2027-01-01 00:00:00.5 UTC)),
        Some(datetime!(2027-01-01 00:01 UTC))
    );
    assert_eq!(
        spec.due(
            datetime!(2027-01-01 00:01 UTC),
            datetime!(2027-01-01 00:10:30 UTC)
        ),
        Some(DueSlot {
            slot: datetime!(2027-01-01 00:10 UTC),
            skipped: 9,
            next: Some(datetime!(2027-01-01 00:11 UTC)),
        })
    );
}

#[test]
fn params_take_a_cron_with_an_optional_zone_or_an_interval() {
    let from = |params: Value| ScheduleSpec::from_params(&params, "Europe/Lisbon");
    assert_eq!(
        from(json!({"cron": "0 9 * * *"})).map(|spec| spec.cadence().clone()),
        Ok(Cadence::Cron {
            expression: "0 9 * * *".to_owned(),
            timezone: "Europe/Lisbon".to_owned()
        })
    );
    assert_eq!(
        from(json!({"cron": "0 9 * * *", "timezone": "Asia/Tokyo"}))
            .map(|spec| spec.cadence().clone()),
        Ok(Cadence::Cron {
            expression: "0 9 * * *".to_owned(),
            timezone: "Asia/Tokyo".to_owned()
        })
    );
    assert_eq!(
        from(json!({"interval_seconds": 30})).map(|spec| spec.cadence().clone()),
        Ok(Cadence::Interval { seconds: 30 })
    );
}

#[test]
fn bad_params_are_named() {
    assert_eq!(
        problems(&json!({})),
        ["cron: is required (or `interval_seconds`)"]
    );
    assert_eq!(
        problems(&json!({"cron": "* * * *"})),
        [
            "cron: must have 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), not 4"
        ]
    );
    assert_eq!(problems(&json!({"cron": "0 0 0 1 1 * 2030"})).len(), 1);
    assert!(
        problems(&json!({"cron": "61 * * * *"}))[0]
            .starts_with("cron: is not a valid cron pattern")
    );
    assert_eq!(
        problems(&json!({"cron": "0 9 * * *", "timezone": "Mars/Olympus"})),
        ["timezone: `Mars/Olympus` is not an IANA time zone (like `Europe/Berlin`)"]
    );
    assert_eq!(
        problems(&json!({"interval_seconds": 9})),
        ["interval_seconds: must be a whole number from 10 to 31622400"]
    );
    assert_eq!(
        problems(&json!({"interval_seconds": 60, "cron": "* * * * *"})),
        ["interval_seconds: give either `cron` or `interval_seconds`, not both"]
    );
    assert_eq!(
        problems(&json!({"interval_seconds": 60, "timezone": "UTC"})),
        ["timezone: applies to `cron` only; an interval counts real time"]
    );
    assert_eq!(
        problems(&json!({"cron": "0 0 30 2 *"})),
        ["cron: never fires (no date matches the pattern)"]
    );
    assert_eq!(
        problems(&json!({"cron": "*/10 * * * * *"})),
        Vec::<String>::new()
    );
}

#[test]
fn a_pattern_firing_too_often_is_refused_with_its_next_five_fire_times() {
    assert_eq!(
        problems(&json!({"cron": "*/5 * * * * *"})),
        [
            "cron: fires 5 s apart; schedules fire at most every 10 s (next five fire times: \
          2027-01-04T10:00:05Z, 2027-01-04T10:00:10Z, 2027-01-04T10:00:15Z, \
          2027-01-04T10:00:20Z, 2027-01-04T10:00:25Z)"
        ]
    );
}
