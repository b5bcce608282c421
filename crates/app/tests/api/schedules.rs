//! `trigger.schedule`: validation on save, registration on activation (and its end on
//! deactivation, promotion and archiving), `GET /api/workflows/{id}/schedule`, and the
//! scheduler as the workers run it — driven by an injected clock, never by sleeping.

use std::sync::Arc;

use fluxolab_kernel::ManualClock;
use fluxolab_workflows::scheduler::Scheduler;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::TestResult;
use crate::helpers::{Account, Error, Fields, PASSWORD, TEST_SECRET, TestApp};

/// A workflow started by a schedule with `params`, writing its slot.
fn scheduled(params: &Value) -> Value {
    json!({
        "nodes": [
            {"id": "tick", "type": "trigger.schedule", "name": "Tick", "params": params},
            {"id": "note", "type": "data.set", "name": "Note",
             "params": {"values": {"at": "{{ trigger.body.scheduled_for }}"}}}
        ],
        "connections": [{"from": "tick", "to": "note"}]
    })
}

/// The application (API only: no worker fires on its own) on a clock at `start`, and a
/// signed-up owner.
async fn app_at(
    start: OffsetDateTime,
    email: &str,
) -> Result<(TestApp, Arc<ManualClock>, Account), Error> {
    let clock = Arc::new(ManualClock::new(start));
    let app = TestApp::spawn_api_only_with_clock(clock.clone()).await?;
    let owner = app.signed_up(email).await?;
    Ok((app, clock, owner))
}

/// `count` schedulers as `count` worker processes run them: each with its own pool.
fn schedulers(
    app: &TestApp,
    clock: &Arc<ManualClock>,
    count: usize,
) -> Result<Vec<Arc<Scheduler>>, Error> {
    let url = app.db.url().to_owned();
    let settings = fluxolab_app::Settings::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.clone()),
        "APP_SECRET" => Some(TEST_SECRET.to_owned()),
        "DATABASE_POOL_SIZE" => Some("2".to_owned()),
        _ => None,
    })?;
    (0..count)
        .map(|_| {
            let pool = fluxolab_app::startup::pool(&settings.database)?;
            let services = fluxolab_app::startup::services(
                &pool,
                &settings,
                clock.clone(),
                Arc::new(fluxolab_workflows::execution_service::Unobserved),
            )?;
            Ok(services.scheduler)
        })
        .collect()
}

/// A fresh access token for `who` (the clock may have moved past the old one's expiry).
async fn relogin(app: &TestApp, who: &Account, email: &str) -> Result<Account, Error> {
    let tokens: Value = app.login(email, PASSWORD).await?.json().await?;
    Ok(Account {
        access_token: tokens.text("access_token")?,
        ..who.clone()
    })
}

/// The slots (`scheduled_for`) of the scheduled runs of `workflow`, in order.
async fn slots(app: &TestApp, workflow: &str) -> Result<Vec<String>, Error> {
    #[derive(diesel::QueryableByName)]
    struct Slot {
        #[diesel(sql_type = diesel::sql_types::Text)]
        slot: String,
    }
    use diesel_async::RunQueryDsl;
    let rows: Vec<Slot> = diesel::sql_query(
        "SELECT input ->> 'scheduled_for' AS slot FROM executions \
         WHERE workflow_id = $1 AND trigger_kind = 'schedule' ORDER BY 1",
    )
    .bind::<diesel::sql_types::Uuid, _>(workflow.parse::<uuid::Uuid>()?)
    .load(&mut app.db.pool().get().await?)
    .await?;
    Ok(rows.into_iter().map(|row| row.slot).collect())
}

/// Moves the clock by `step` `times` times, ticking `schedulers` after each move.
async fn run_for(
    clock: &ManualClock,
    schedulers: &[Arc<Scheduler>],
    step: time::Duration,
    times: u32,
) -> Result<(), Error> {
    for _ in 0..times {
        clock.advance(step);
        for scheduler in schedulers {
            scheduler.tick(100).await?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_schedulers_racing_on_one_database_start_exactly_one_run_per_slot() -> TestResult {
    let (app, clock, owner) =
        app_at(datetime!(2027-01-04 09:59:30 UTC), "race@example.com").await?;
    app.set_free_limit("max_active_workflows", 10).await?;
    let mut minutely = Vec::new();
    let mut every_ten = Vec::new();
    for n in 0..3 {
        let created = app
            .create_workflow(
                &owner,
                &format!("Minutely {n}"),
                &scheduled(&json!({"cron": "* * * * *"})),
            )
            .await?;
        app.activate(&owner, &created.id, 1).await?;
        minutely.push(created.id);
        let created = app
            .create_workflow(
                &owner,
                &format!("Every ten {n}"),
                &scheduled(&json!({"interval_seconds": 10})),
            )
            .await?;
        app.activate(&owner, &created.id, 1).await?;
        every_ten.push(created.id);
    }
    let racers = schedulers(&app, &clock, 3)?;

    // 150 s in 5 s steps; the three tick at once after each step.
    for _ in 0..30 {
        clock.advance(time::Duration::seconds(5));
        let (a, b, c) = tokio::join!(
            racers[0].tick(100),
            racers[1].tick(100),
            racers[2].tick(100)
        );
        let fired = a?.started + b?.started + c?.started;
        assert!(
            fired <= 6,
            "six schedules fire at most six runs a step, not {fired}"
        );
    }

    for workflow in &minutely {
        assert_eq!(
            slots(&app, workflow).await?,
            [
                "2027-01-04T10:00:00Z",
                "2027-01-04T10:01:00Z",
                "2027-01-04T10:02:00Z"
            ]
        );
    }
    let expected: Vec<String> = (0..15)
        .map(|n| rfc3339(datetime!(2027-01-04 09:59:40 UTC) + time::Duration::seconds(10 * n)))
        .collect();
    for workflow in &every_ten {
        assert_eq!(slots(&app, workflow).await?, expected);
    }
    assert_eq!(app.count("workflow_schedule_fires").await?, 3 * 3 + 3 * 15);
    Ok(())
}

#[tokio::test]
async fn a_daily_time_skipped_by_spring_forward_runs_once_at_the_next_valid_time() -> TestResult {
    let (app, clock, owner) = app_at(datetime!(2027-03-13 12:00 UTC), "spring@example.com").await?;
    let new_york = app
        .create_workflow(
            &owner,
            "New York 02:30",
            &scheduled(&json!({"cron": "30 2 * * *", "timezone": "America/New_York"})),
        )
        .await?;
    app.activate(&owner, &new_york.id, 1).await?;
    let berlin = app
        .create_workflow(
            &owner,
            "Berlin 02:30",
            &scheduled(&json!({"cron": "30 2 * * *", "timezone": "Europe/Berlin"})),
        )
        .await?;
    app.activate(&owner, &berlin.id, 1).await?;
    // Berlin springs forward on 2027-03-28: move the clock there in 15-minute steps.
    let scheduler = schedulers(&app, &clock, 1)?;
    run_for(&clock, &scheduler, time::Duration::minutes(15), 4 * 24 * 3).await?;

    // New York has no 02:30 on the 14th: it runs at 03:00 EDT (07:00Z) that day, once.
    assert_eq!(
        slots(&app, &new_york.id).await?,
        [
            "2027-03-14T07:00:00Z",
            "2027-03-15T06:30:00Z",
            "2027-03-16T06:30:00Z"
        ]
    );
    clock.advance(time::Duration::days(11));
    scheduler[0].tick(100).await?;
    let caught_up = slots(&app, &berlin.id).await?;
    run_for(&clock, &scheduler, time::Duration::minutes(15), 4 * 24 * 2).await?;
    let berlin_slots = slots(&app, &berlin.id).await?;
    assert!(
        berlin_slots.ends_with(&[
            "2027-03-28T01:00:00Z".to_owned(),
            "2027-03-29T00:30:00Z".to_owned()
        ]),
        "Berlin's 02:30 on the 28th runs at 03:00 CEST once: {berlin_slots:?} (after {caught_up:?})"
    );
    Ok(())
}

#[tokio::test]
async fn a_daily_time_in_a_repeated_hour_runs_once() -> TestResult {
    let (app, clock, owner) = app_at(datetime!(2027-10-30 12:00 UTC), "fall@example.com").await?;
    let berlin = app
        .create_workflow(
            &owner,
            "Berlin 02:30",
            &scheduled(&json!({"cron": "30 2 * * *", "timezone": "Europe/Berlin"})),
        )
        .await?;
    app.activate(&owner, &berlin.id, 1).await?;
    let new_york = app
        .create_workflow(
            &owner,
            "New York 01:30",
            &scheduled(&json!({"cron": "30 1 * * *", "timezone": "America/New_York"})),
        )
        .await?;
    app.activate(&owner, &new_york.id, 1).await?;
    let scheduler = schedulers(&app, &clock, 1)?;

    // Through both fall-backs (Berlin 2027-10-31, New York 2027-11-07), 15 minutes a step.
    run_for(&clock, &scheduler, time::Duration::minutes(15), 4 * 24 * 10).await?;

    let berlin_slots = slots(&app, &berlin.id).await?;
    assert_eq!(
        berlin_slots[..2],
        [
            "2027-10-31T00:30:00Z".to_owned(),
            "2027-11-01T01:30:00Z".to_owned()
        ],
        "02:30 happens twice on the 31st and runs once"
    );
    let new_york_slots = slots(&app, &new_york.id).await?;
    assert!(
        new_york_slots.contains(&"2027-11-07T05:30:00Z".to_owned())
            && !new_york_slots.contains(&"2027-11-07T06:30:00Z".to_owned())
            && new_york_slots.contains(&"2027-11-08T06:30:00Z".to_owned()),
        "01:30 happens twice on 2027-11-07 and runs once: {new_york_slots:?}"
    );
    Ok(())
}

#[tokio::test]
async fn slots_missed_while_everything_was_down_are_caught_up_by_one_run() -> TestResult {
    let email = "catchup@example.com";
    let (app, clock, owner) = app_at(datetime!(2027-01-04 10:30 UTC), email).await?;
    let hourly = app
        .create_workflow(&owner, "Hourly", &scheduled(&json!({"cron": "0 * * * *"})))
        .await?;
    app.activate(&owner, &hourly.id, 1).await?;
    let scheduler = schedulers(&app, &clock, 1)?;

    // Down from 10:30 to 15:20: the 11:00…15:00 slots pass without a worker.
    clock.advance(time::Duration::minutes(290));
    let first = scheduler[0].tick(100).await?;
    let again = scheduler[0].tick(100).await?;

    assert_eq!((first.started, again.total()), (1, 0));
    assert_eq!(slots(&app, &hourly.id).await?, ["2027-01-04T15:00:00Z"]);
    let owner = relogin(&app, &owner, email).await?;
    let (status, schedule) = app
        .get_in(&owner, &format!("/api/workflows/{}/schedule", hourly.id))
        .await?;
    assert_eq!(status, 200, "{schedule}");
    let production = &schedule["environments"][0];
    assert_eq!(
        production["last_fire"]["scheduled_for"],
        "2027-01-04T15:00:00Z"
    );
    assert_eq!(production["last_fire"]["fired_at"], "2027-01-04T15:20:00Z");
    assert_eq!(production["last_fire"]["outcome"], "started");
    assert_eq!(production["last_fire"]["skipped_slots"], 4);
    assert_eq!(production["next_fire_times"][0], "2027-01-04T16:00:00Z");
    let execution = production["last_fire"]["execution_id"]
        .as_str()
        .unwrap_or_default();
    let (_, run) = app
        .get_in(&owner, &format!("/api/executions/{execution}"))
        .await?;
    assert_eq!(run["trigger_kind"], "schedule");
    assert_eq!(
        run["input"],
        json!({"scheduled_for": "2027-01-04T15:00:00Z", "fired_at": "2027-01-04T15:20:00Z"})
    );
    Ok(())
}

#[tokio::test]
async fn a_slot_the_quota_refuses_is_recorded_and_consumed() -> TestResult {
    let email = "quota@example.com";
    // The quota counts runs by the database's clock from the period the workspace got at
    // sign-up (by the injected one): start the clock at the real time.
    let start = OffsetDateTime::now_utc().replace_nanosecond(0)?;
    let at = |seconds: i64| rfc3339(start + time::Duration::seconds(seconds));
    let (app, clock, owner) = app_at(start, email).await?;
    app.set_free_limit("executions_per_month", 1).await?;
    let ticking = app
        .create_workflow(
            &owner,
            "Ticking",
            &scheduled(&json!({"interval_seconds": 60})),
        )
        .await?;
    app.activate(&owner, &ticking.id, 1).await?;
    let scheduler = schedulers(&app, &clock, 1)?;

    clock.advance(time::Duration::seconds(60));
    let allowed = scheduler[0].tick(100).await?;
    clock.advance(time::Duration::seconds(60));
    let refused = scheduler[0].tick(100).await?;
    let consumed = scheduler[0].tick(100).await?;

    assert_eq!(
        (allowed.started, refused.quota_exceeded, consumed.total()),
        (1, 1, 0)
    );
    assert_eq!(slots(&app, &ticking.id).await?, [at(60)]);
    let (_, schedule) = app
        .get_in(&owner, &format!("/api/workflows/{}/schedule", ticking.id))
        .await?;
    let production = &schedule["environments"][0];
    assert_eq!(production["last_fire"]["outcome"], "quota_exceeded");
    assert_eq!(production["last_fire"]["scheduled_for"], at(120).as_str());
    assert_eq!(production["last_fire"]["execution_id"], Value::Null);
    assert_eq!(production["quota_refused_at"], at(120).as_str());
    assert_eq!(production["next_fire_times"][0], at(180).as_str());
    assert_eq!(
        app.scalar(
            "SELECT count(*) AS count FROM activities WHERE action = 'schedule.quota_exceeded'"
        )
        .await?,
        1
    );
    Ok(())
}

/// RFC 3339 text of `at`, as the API and trigger bodies write instants.
fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[tokio::test]
async fn a_schedule_is_validated_on_save_and_the_422_names_the_param() -> TestResult {
    let (app, _clock, owner) =
        app_at(datetime!(2027-01-04 10:00 UTC), "invalid@example.com").await?;
    let cases = [
        (
            json!({"cron": "*/2 * * * * *"}),
            "definition.nodes[0].params.cron",
        ),
        (
            json!({"cron": "0 9 * *"}),
            "definition.nodes[0].params.cron",
        ),
        (
            json!({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}),
            "definition.nodes[0].params.timezone",
        ),
        (
            json!({"interval_seconds": 5}),
            "definition.nodes[0].params.interval_seconds",
        ),
        (
            json!({"interval_seconds": 60, "cron": "0 9 * * *"}),
            "definition.nodes[0].params.interval_seconds",
        ),
        (json!({}), "definition.nodes[0].params.cron"),
    ];
    for (params, field) in cases {
        let (status, problem) = app
            .post_in(
                &owner,
                "/api/workflows",
                &json!({"name": "Bad", "definition": scheduled(&params)}),
            )
            .await?;
        assert_eq!(status, 422, "{params}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{params}: {problem}");
    }
    let (_, problem) = app
        .post_in(
            &owner,
            "/api/workflows",
            &json!({"name": "Bad", "definition": scheduled(&json!({"cron": "*/2 * * * * *"}))}),
        )
        .await?;
    let message = problem["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(
            "next five fire times: 2027-01-04T10:00:02Z, 2027-01-04T10:00:04Z, \
             2027-01-04T10:00:06Z, 2027-01-04T10:00:08Z, 2027-01-04T10:00:10Z"
        ),
        "{message}"
    );
    Ok(())
}

#[tokio::test]
async fn the_schedule_follows_activation_promotion_deactivation_and_archiving() -> TestResult {
    let (app, clock, owner) =
        app_at(datetime!(2027-01-04 10:00 UTC), "lifecycle@example.com").await?;
    app.execute("UPDATE workspace_settings SET timezone = 'Europe/Lisbon'")
        .await?;
    let daily = app
        .create_workflow(&owner, "Daily", &scheduled(&json!({"cron": "0 9 * * 1-5"})))
        .await?;
    let path = format!("/api/workflows/{}/schedule", daily.id);
    let (status, nothing) = app.get_in(&owner, &path).await?;
    assert_eq!((status, &nothing["environments"]), (200, &json!([])));

    app.activate(&owner, &daily.id, 1).await?;
    let (_, schedule) = app.get_in(&owner, &path).await?;
    assert_eq!(schedule["workflow_id"], daily.id.as_str());
    let production = &schedule["environments"][0];
    assert_eq!(production["environment"], "production");
    assert_eq!(production["cron"], "0 9 * * 1-5");
    assert_eq!(
        production["timezone"], "Europe/Lisbon",
        "the workspace's zone by default"
    );
    assert_eq!(production["interval_seconds"], Value::Null);
    assert_eq!(
        production["next_fire_times"],
        json!([
            "2027-01-05T09:00:00Z",
            "2027-01-06T09:00:00Z",
            "2027-01-07T09:00:00Z",
            "2027-01-08T09:00:00Z",
            "2027-01-11T09:00:00Z"
        ])
    );
    assert_eq!(production["last_fire"], Value::Null);

    // Version 2 runs every 30 s in staging; promoted, it replaces production's schedule.
    let (status, _) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{}/versions", daily.id),
            &json!({"definition": scheduled(&json!({"interval_seconds": 30}))}),
        )
        .await?;
    assert_eq!(status, 201);
    let (status, _) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{}/activate", daily.id),
            &json!({"version": 2, "environment": "staging"}),
        )
        .await?;
    assert_eq!(status, 200);
    let (_, schedule) = app.get_in(&owner, &path).await?;
    let names: Vec<&Value> = schedule["environments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["environment"])
        .collect();
    assert_eq!(names, [&json!("production"), &json!("staging")]);
    assert_eq!(
        schedule["environments"][1]["next_fire_times"][0],
        "2027-01-04T10:00:30Z"
    );
    let (status, _) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{}/promote", daily.id),
            &json!({"from": "staging", "to": "production"}),
        )
        .await?;
    assert_eq!(status, 200);
    let (_, schedule) = app.get_in(&owner, &path).await?;
    assert_eq!(schedule["environments"][0]["version"], 2);
    assert_eq!(schedule["environments"][0]["interval_seconds"], 30);
    assert_eq!(schedule["environments"][0]["cron"], Value::Null);

    // Deactivated in staging: it no longer fires there; production goes on.
    let (status, _) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{}/deactivate", daily.id),
            &json!({"environment": "staging"}),
        )
        .await?;
    assert_eq!(status, 200);
    let scheduler = schedulers(&app, &clock, 1)?;
    clock.advance(time::Duration::seconds(30));
    let fired = scheduler[0].tick(100).await?;
    assert_eq!(fired.started, 1, "production only");
    assert_eq!(
        app.scalar("SELECT count(*) AS count FROM executions e JOIN workspace_environments w ON w.id = e.environment_id WHERE w.name = 'production' AND e.trigger_kind = 'schedule'")
            .await?,
        1
    );

    // Archived: nothing fires anywhere, and there is no schedule left to read.
    let (status, _) = app
        .delete_in(&owner, &format!("/api/workflows/{}", daily.id))
        .await?;
    assert_eq!(status, 204);
    clock.advance(time::Duration::minutes(5));
    assert_eq!(scheduler[0].tick(100).await?.total(), 0);
    let (_, schedule) = app.get_in(&owner, &path).await?;
    assert_eq!(schedule["environments"], json!([]));
    assert_eq!(app.count("workflow_schedules").await?, 0);
    Ok(())
}

#[tokio::test]
async fn deactivating_stops_the_firing_and_another_workspace_cannot_read_the_schedule() -> TestResult
{
    let (app, clock, owner) = app_at(datetime!(2027-01-04 10:00 UTC), "stop@example.com").await?;
    let stranger = app.signed_up("stranger@example.com").await?;
    let ticking = app
        .create_workflow(
            &owner,
            "Ticking",
            &scheduled(&json!({"interval_seconds": 10})),
        )
        .await?;
    app.activate(&owner, &ticking.id, 1).await?;
    let scheduler = schedulers(&app, &clock, 1)?;
    run_for(&clock, &scheduler, time::Duration::seconds(10), 3).await?;
    assert_eq!(slots(&app, &ticking.id).await?.len(), 3);

    let (status, _) = app
        .post_in(
            &owner,
            &format!("/api/workflows/{}/deactivate", ticking.id),
            &json!({}),
        )
        .await?;
    assert_eq!(status, 200);
    run_for(&clock, &scheduler, time::Duration::seconds(10), 3).await?;
    assert_eq!(slots(&app, &ticking.id).await?.len(), 3);

    let path = format!("/api/workflows/{}/schedule", ticking.id);
    let (status, _) = app.get_in(&stranger, &path).await?;
    assert_eq!(status, 404);
    let (status, _) = app
        .get_in(
            &owner,
            &format!("/api/workflows/{}/schedule", uuid::Uuid::now_v7()),
        )
        .await?;
    assert_eq!(status, 404);
    Ok(())
}
