//! The store's contract, one test suite run unchanged against both engines: SQLite in a
//! scratch file, and a real PostgreSQL (`HERALD_TEST_POSTGRES_URL`, or a throwaway cluster the
//! harness starts), each test in a database of its own.

mod support;

use std::collections::BTreeSet;
use std::future::Future;

use herald::store::{
    Attempt, Batch, Done, Finish, NewDeadLetter, NewNotification, OutboxQuery, Retention, Schema,
    SeenEvent, SqlStore, State, Store,
};
use support::Scratch;
use support::postgres::Postgres;

const LEASE: i64 = 60_000;
const T0: i64 = 1_800_000_000_000;

/// Runs `test` against a fresh SQLite store.
async fn on_sqlite<F: Future<Output = ()>>(name: &str, test: impl FnOnce(SqlStore) -> F) {
    let scratch = Scratch::new(&format!("store-{name}"));
    let url = format!("sqlite://{}", scratch.path().join("herald.db").display());
    let store = SqlStore::open(&url, scratch.path(), Schema::Migrate, None)
        .await
        .unwrap();
    // The connection settings took: the write-ahead log is in use.
    assert!(scratch.path().join("herald.db-wal").exists());
    test(store).await;
}

/// Runs `test` against a fresh PostgreSQL database.
async fn on_postgres<F: Future<Output = ()>>(name: &str, test: impl FnOnce(SqlStore) -> F) {
    let database = Postgres::shared().database(name);
    let store = SqlStore::open(
        &database.url,
        std::path::Path::new("."),
        Schema::Migrate,
        None,
    )
    .await
    .unwrap();
    test(store).await;
}

/// Each test, once per engine.
macro_rules! on_both_engines {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                super::on_sqlite(stringify!($test), super::$test).await
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                super::on_postgres(stringify!($test), super::$test).await
            })*
        }
    };
}

on_both_engines!(
    a_batch_commits_whole_and_a_key_is_queued_once,
    concurrent_commits_of_one_event_queue_it_once,
    claims_are_leased_and_taken_over_only_after_the_lease,
    only_the_current_claim_token_marks_a_row,
    concurrent_claimers_never_share_a_row,
    a_retry_waits_and_a_failure_can_be_retried_by_hand,
    a_released_claim_is_claimable_at_once_and_costs_no_attempt,
    only_the_channels_named_are_claimed_and_a_deferred_row_costs_no_attempt,
    a_replayed_dead_letter_keeps_its_evidence_and_gains_the_outcome,
    an_instance_releases_and_renews_only_its_own_claims,
    the_schema_check_refuses_an_unmigrated_store,
    a_reread_adds_no_dead_letter_or_history_row,
    a_routine_event_is_recorded_with_why_it_told_nobody,
    one_action_is_told_once_per_recipient_and_channel,
    a_report_is_recorded_once_and_listed_by_verdict,
    nul_in_any_text_never_fails_a_commit_or_an_outcome,
    every_attempt_is_recorded_and_the_outbox_lists_newest_first,
    retention_prunes_old_rows_in_batches_and_a_dry_run_removes_nothing,
    a_record_the_store_refuses_is_a_dead_letter_and_its_batch_commits,
    selected_events_are_found_by_account_activity_rule_and_time,
    a_throttle_holds_past_its_limit_and_its_window_closes_once_into_one_digest,
    a_repeat_is_recorded_not_sent_within_its_window_or_ever,
    a_group_holds_its_notices_until_its_wait_ends_and_closes_into_one,
    a_silence_suppresses_only_what_it_matches_in_its_hours_and_is_summarized_once,
    a_bulk_window_counts_each_account_once,
    the_configurations_silences_are_made_once_and_ended_when_removed,
);

fn notification(key: &str, event: &str) -> NewNotification {
    NewNotification {
        key: key.to_owned(),
        event_id: event.to_owned(),
        rule: "password-reset".to_owned(),
        channel: "email".to_owned(),
        recipient: format!("{key}@contoso.com"),
        subject: format!("subject {key}"),
        message: format!("message {key}").into_bytes(),
        action: None,
        summary: None,
        controls: None,
    }
}

fn batch(keys: &[&str]) -> Batch {
    Batch {
        source: "entra".to_owned(),
        events: vec![SeenEvent {
            tenant: "t1".to_owned(),
            event_id: "e1".to_owned(),
            activity: "Reset password (by admin)".to_owned(),
            time: T0,
            rules: vec!["password-reset".to_owned()],
            routine: None,
            input: "audit.json".to_owned(),
            position: "line 1".to_owned(),
            raw: b"{\"id\":\"e1\"}".to_vec(),
            accounts: vec![
                "adele.vance@contoso.com".to_owned(),
                "adele vance".to_owned(),
            ],
            bulk: None,
        }],
        notifications: keys.iter().map(|k| notification(k, "e1")).collect(),
        dead_letters: Vec::new(),
        checkpoint: None,
    }
}

/// The channel every notification of [`batch`] is for.
fn email() -> Vec<String> {
    vec!["email".to_owned()]
}

fn done(key: &str, token: &str, finish: Finish) -> Done {
    Done {
        key: key.to_owned(),
        token: token.to_owned(),
        finish,
        attempt: None,
    }
}

fn listing(state: Option<State>, limit: i64) -> OutboxQuery {
    OutboxQuery {
        state,
        limit,
        ..OutboxQuery::default()
    }
}

async fn state_of(store: &SqlStore, key: &str) -> (State, i64) {
    let row = store
        .outbox(&listing(None, 10_000))
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.key == key)
        .unwrap_or_else(|| panic!("{key} is not in the outbox"));
    (row.state, row.attempts)
}

async fn a_batch_commits_whole_and_a_key_is_queued_once(store: SqlStore) {
    let mut first = batch(&["k1", "k2"]);
    first.dead_letters.push(NewDeadLetter {
        input: "audit.json".to_owned(),
        position: "line 3".to_owned(),
        reason: "not JSON".to_owned(),
        raw: b"{oops".to_vec(),
    });
    first.checkpoint = Some(("audit.json".to_owned(), "120:3".to_owned()));
    let committed = store.commit(&first).await.unwrap();
    assert_eq!(
        (
            committed.queued,
            committed.duplicates,
            committed.dead_letters
        ),
        (2, 0, 1)
    );

    // The same event again (a redelivery): nothing new is queued.
    let mut again = batch(&["k1", "k2", "k3"]);
    again.checkpoint = Some(("audit.json".to_owned(), "240:6".to_owned()));
    let committed = store.commit(&again).await.unwrap();
    assert_eq!((committed.queued, committed.duplicates), (1, 2));

    let rows = store.outbox(&listing(None, 100)).await.unwrap();
    let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(rows.iter().all(|r| r.state == State::Pending));
    let k1 = rows.iter().find(|r| r.key == "k1").unwrap();
    assert_eq!(
        (k1.recipient.as_str(), k1.subject.as_str()),
        ("k1@contoso.com", "subject k1")
    );
    assert_eq!(
        store.checkpoint("entra", "audit.json").await.unwrap(),
        Some("240:6".to_owned())
    );
    assert_eq!(store.checkpoint("entra", "other.json").await.unwrap(), None);
    let dead = store.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].position.as_str(), dead[0].reason.as_str()),
        ("line 3", "not JSON")
    );
    let full = store.dead_letter(dead[0].id).await.unwrap().unwrap();
    assert_eq!(full.raw, b"{oops");
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.pending, counts.sent, counts.failed), (3, 0, 0));
    store.ping().await.unwrap();
}

/// Two instances decoding the same event at once (a rebalance, a replay) queue it once.
async fn concurrent_commits_of_one_event_queue_it_once(store: SqlStore) {
    let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let one = batch(&refs);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (store, one) = (store.clone(), one.clone());
        tasks.spawn(async move { store.commit(&one).await.unwrap() });
    }
    let (mut queued, mut duplicates) = (0, 0);
    while let Some(c) = tasks.join_next().await {
        let c = c.unwrap();
        queued += c.queued;
        duplicates += c.duplicates;
    }
    assert_eq!((queued, duplicates), (50, 150));
    assert_eq!(store.counts().await.unwrap().pending, 50);
}

async fn claims_are_leased_and_taken_over_only_after_the_lease(store: SqlStore) {
    store.commit(&batch(&["k1", "k2", "k3"])).await.unwrap();
    let a = store.at(T0).claim("a", LEASE, 2, &email()).await.unwrap();
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|c| c.attempts == 0 && !c.token.is_empty()));
    let b = store
        .at(T0 + 1)
        .claim("b", LEASE, 10, &email())
        .await
        .unwrap();
    assert_eq!(b.len(), 1, "b takes only what a does not hold");
    assert!(a.iter().all(|c| c.key != b[0].key));
    assert!(
        store
            .at(T0 + LEASE - 1)
            .claim("c", LEASE, 10, &email())
            .await
            .unwrap()
            .is_empty()
    );

    // a's lease has run out (b's, taken 1 ms later, has not): c takes a's rows.
    let c = store
        .at(T0 + LEASE + 1)
        .claim("c", LEASE, 10, &email())
        .await
        .unwrap();
    let taken: BTreeSet<&str> = c.iter().map(|r| r.key.as_str()).collect();
    let held_by_a: BTreeSet<&str> = a.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(taken, held_by_a);
}

async fn only_the_current_claim_token_marks_a_row(store: SqlStore) {
    store.commit(&batch(&["k1"])).await.unwrap();
    let a = store
        .at(T0)
        .claim("a", LEASE, 1, &email())
        .await
        .unwrap()
        .remove(0);
    let b = store
        .at(T0 + LEASE + 1)
        .claim("b", LEASE, 1, &email())
        .await
        .unwrap()
        .remove(0);
    assert_ne!(a.token, b.token);

    // a comes back after its lease was taken over: its outcome changes nothing.
    let changed = store
        .at(T0 + LEASE + 2)
        .finish(vec![done("k1", &a.token, Finish::Sent)])
        .await
        .unwrap();
    assert_eq!(changed, 0);
    assert_eq!(state_of(&store, "k1").await, (State::Pending, 0));
    let changed = store
        .at(T0 + LEASE + 2)
        .finish(vec![done(
            "k1",
            &a.token,
            Finish::Failed { error: "x".into() },
        )])
        .await
        .unwrap();
    assert_eq!(changed, 0);

    let changed = store
        .at(T0 + LEASE + 3)
        .finish(vec![done("k1", &b.token, Finish::Sent)])
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let row = store
        .outbox(&listing(Some(State::Sent), 10))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (row.key.as_str(), row.attempts, row.sent_at),
        ("k1", 1, Some(T0 + LEASE + 3))
    );
    assert!(
        store
            .at(T0 + 10 * LEASE)
            .claim("c", LEASE, 10, &email())
            .await
            .unwrap()
            .is_empty(),
        "a sent row is never claimed again"
    );
}

/// Many dispatchers claiming at once (several instances): every row is claimed exactly once.
async fn concurrent_claimers_never_share_a_row(store: SqlStore) {
    let keys: Vec<String> = (0..300).map(|i| format!("k{i:03}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    store.commit(&batch(&refs)).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..6 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store
                    .at(T0)
                    .claim(&format!("w{worker}"), LEASE, 7, &email())
                    .await
                    .unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed.into_iter().map(|c| c.key));
            }
        });
    }
    let mut all = Vec::new();
    let mut workers_with_rows = 0;
    while let Some(mine) = tasks.join_next().await {
        let mine = mine.unwrap();
        workers_with_rows += usize::from(!mine.is_empty());
        all.extend(mine);
    }
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(
        all.len(),
        300,
        "claimed more than once: {}",
        all.len() - unique.len()
    );
    assert_eq!(unique.len(), 300);
    assert!(workers_with_rows >= 1);
}

async fn a_retry_waits_and_a_failure_can_be_retried_by_hand(store: SqlStore) {
    store.commit(&batch(&["k1", "k2"])).await.unwrap();
    let claimed = store.at(T0).claim("a", LEASE, 10, &email()).await.unwrap();
    let token = &claimed[0].token;
    let retry_at = T0 + 5_000;
    let changed = store
        .at(T0)
        .finish(vec![
            done(
                "k1",
                token,
                Finish::Retry {
                    after: retry_at - T0,
                    error: "421 try later".into(),
                },
            ),
            done(
                "k2",
                token,
                Finish::Failed {
                    error: "550 no such user".into(),
                },
            ),
        ])
        .await
        .unwrap();
    assert_eq!(changed, 2);
    assert!(
        store
            .at(retry_at - 1)
            .claim("a", LEASE, 10, &email())
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .at(retry_at)
        .claim("a", LEASE, 10, &email())
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].key.as_str(), again[0].attempts), ("k1", 1));

    let failed = store
        .outbox(&listing(Some(State::Failed), 10))
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].last_error.as_deref(), Some("550 no such user"));
    assert_eq!(store.at(T0 + 9_000).retry(Some("k2")).await.unwrap(), 1);
    assert_eq!(store.at(T0 + 9_000).retry(None).await.unwrap(), 0);
    assert_eq!(state_of(&store, "k2").await, (State::Pending, 0));
    let k2 = store
        .at(T0 + 9_000)
        .claim("b", LEASE, 10, &email())
        .await
        .unwrap();
    assert_eq!(k2.len(), 1);
    assert_eq!(k2[0].key, "k2");
    // Failed again, and retried by an operator: the retry and who did it, in one record.
    let changed = store
        .at(T0 + 9_000)
        .finish(vec![done(
            "k2",
            &k2[0].token,
            Finish::Failed {
                error: "550 no such user".into(),
            },
        )])
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let olivia = herald::store::Operator {
        name: "olivia".into(),
        role: "operator".into(),
    };
    let by = store.at(T0 + 10_000);
    assert_eq!(by.retry_by(Some("k2"), &olivia).await.unwrap(), 1);
    assert_eq!(by.retry_by(None, &olivia).await.unwrap(), 0);
    assert_eq!(state_of(&store, "k2").await, (State::Pending, 0));
    let actions = store.operator_actions(10).await.unwrap();
    let seen: Vec<(&str, &str, &str, i64)> = actions
        .iter()
        .map(|a| {
            (
                a.action.as_str(),
                a.target.as_str(),
                a.outcome.as_str(),
                a.at,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "retry_all",
                "failed",
                "0 notifications pending again",
                T0 + 10_000
            ),
            ("retry", "k2", "1 notification pending again", T0 + 10_000),
        ]
    );
    assert!(
        actions
            .iter()
            .all(|a| a.actor == "olivia" && a.role == "operator")
    );
}

async fn a_released_claim_is_claimable_at_once_and_costs_no_attempt(store: SqlStore) {
    store.commit(&batch(&["k1"])).await.unwrap();
    let a = store
        .at(T0)
        .claim("a", LEASE, 1, &email())
        .await
        .unwrap()
        .remove(0);
    let changed = store
        .at(T0)
        .finish(vec![done("k1", &a.token, Finish::Released)])
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let b = store
        .at(T0 + 1)
        .claim("b", LEASE, 1, &email())
        .await
        .unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].attempts, 0);
    // Releasing with a stale token does not free b's claim.
    let changed = store
        .at(T0 + 2)
        .finish(vec![done("k1", &a.token, Finish::Released)])
        .await
        .unwrap();
    assert_eq!(changed, 0);
    assert!(
        store
            .at(T0 + 3)
            .claim("c", LEASE, 1, &email())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn only_the_channels_named_are_claimed_and_a_deferred_row_costs_no_attempt(store: SqlStore) {
    let mut b = batch(&["k1", "k2"]);
    b.notifications[1].channel = "teams".to_owned();
    store.commit(&b).await.unwrap();
    let pending = store.pending_by_channel().await.unwrap();
    assert_eq!(
        pending.into_iter().collect::<Vec<_>>(),
        [("email".to_owned(), 1), ("teams".to_owned(), 1)]
    );
    // An instance without the teams channel (or with email paused) claims only what it names.
    let claimed = store.at(T0).claim("a", LEASE, 10, &email()).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].channel, "email");
    let later = T0 + LEASE + 1;
    assert!(
        store
            .at(later)
            .claim("a", LEASE, 10, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let teams = store
        .at(later)
        .claim("b", LEASE, 10, &["teams".to_owned()])
        .await
        .unwrap();
    assert_eq!((teams.len(), teams[0].key.as_str()), (1, "k2"));

    let email_row = store
        .at(later)
        .claim("a", LEASE, 10, &email())
        .await
        .unwrap()
        .remove(0);
    let error = "not attempted: the channel is paused: 535 authentication failed".to_owned();
    let changed = store
        .at(later)
        .finish(vec![done(
            "k1",
            &email_row.token,
            Finish::Deferred {
                error: error.clone(),
            },
        )])
        .await
        .unwrap();
    assert_eq!(changed, 1);
    assert_eq!(state_of(&store, "k1").await, (State::Pending, 0));
    let rows = store.outbox(&listing(None, 10)).await.unwrap();
    let k1 = rows.iter().find(|r| r.key == "k1").unwrap();
    assert_eq!(k1.last_error.as_deref(), Some(error.as_str()));
    let again = store
        .at(later + 1)
        .claim("c", LEASE, 10, &email())
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "claimable at once, by anyone");
    assert_eq!((again[0].key.as_str(), again[0].attempts), ("k1", 0));
}

/// PostgreSQL refuses NUL in `TEXT`: a value carrying one must not fail its batch (a Kafka
/// partition would loop on it, an HTTP client get 503 for ever) or the recording of an outcome
/// (the dispatcher would stall). The store keeps such text without its NULs.
async fn nul_in_any_text_never_fails_a_commit_or_an_outcome(store: SqlStore) {
    let mut b = batch(&["k1"]);
    b.events[0].tenant = "t\u{0}1".to_owned();
    b.events[0].event_id = "e\u{0}1".to_owned();
    b.events[0].activity = "Reset\u{0} password".to_owned();
    b.notifications[0].recipient = "k1\u{0}@contoso.com".to_owned();
    b.notifications[0].subject = "subject\u{0} k1".to_owned();
    b.dead_letters.push(NewDeadLetter {
        input: "in\u{0}put".to_owned(),
        position: "line\u{0} 3".to_owned(),
        reason: "unknown category \"x\u{0}y\"".to_owned(),
        raw: b"{\"a\":\"\\u0000\"}\x00".to_vec(),
    });
    store.commit(&b).await.unwrap();
    let dead = store.dead_letters(10).await.unwrap();
    assert_eq!(dead[0].reason, "unknown category \"xy\"");
    let full = store.dead_letter(dead[0].id).await.unwrap().unwrap();
    assert_eq!(
        full.raw, b"{\"a\":\"\\u0000\"}\x00",
        "raw bytes are kept as they came"
    );
    let row = &store.outbox(&listing(None, 10)).await.unwrap()[0];
    assert_eq!(
        (row.recipient.as_str(), row.subject.as_str()),
        ("k1@contoso.com", "subject k1")
    );

    let claimed = store.at(T0).claim("a", LEASE, 10, &email()).await.unwrap();
    let changed = store
        .at(T0)
        .finish(vec![done(
            "k1",
            &claimed[0].token,
            Finish::Failed {
                error: "HTTP 400: refused\u{0}here".to_owned(),
            },
        )])
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let row = &store.outbox(&listing(None, 10)).await.unwrap()[0];
    assert_eq!(row.last_error.as_deref(), Some("HTTP 400: refusedhere"));
}

async fn a_replayed_dead_letter_keeps_its_evidence_and_gains_the_outcome(store: SqlStore) {
    let mut first = batch(&[]);
    first.dead_letters.push(NewDeadLetter {
        input: "http".to_owned(),
        position: "record 2".to_owned(),
        reason: "render failed".to_owned(),
        raw: b"{\"id\":\"e1\"}".to_vec(),
    });
    store.commit(&first).await.unwrap();
    let id = store.dead_letters(10).await.unwrap()[0].id;

    // A replay that is still unusable: nothing new is kept, the entry gains the outcome.
    let mut still_bad = batch(&[]);
    still_bad.dead_letters.push(NewDeadLetter {
        input: "http".to_owned(),
        position: "line 1".to_owned(),
        reason: "record is not a JSON object".to_owned(),
        raw: b"42".to_vec(),
    });
    let committed = store.replay_dead_letter(id, &still_bad).await.unwrap();
    assert_eq!(committed.dead_letters, 1);
    let dead = store.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!((dead[0].id, dead[0].position.as_str()), (id, "record 2"));
    assert_eq!(dead[0].reason, "render failed");
    assert!(dead[0].resolved_at.is_none());
    assert!(
        dead[0]
            .replays
            .contains("still unusable: record is not a JSON object")
    );

    // A replay that works: its notices queue in the same transaction, the entry is resolved
    // and keeps its evidence.
    let committed = store.replay_dead_letter(id, &batch(&["k1"])).await.unwrap();
    assert_eq!(committed.queued, 1);
    let entry = store.dead_letter(id).await.unwrap().unwrap();
    assert_eq!(entry.position, "record 2");
    assert!(entry.resolved_at.is_some());
    assert_eq!(entry.replays.lines().count(), 2, "{}", entry.replays);
    assert!(
        entry
            .replays
            .lines()
            .last()
            .unwrap()
            .contains("1 notifications queued")
    );
    assert_eq!(store.counts().await.unwrap().pending, 1);

    // Resolving by hand: only what is not resolved yet; an unknown id is an error.
    assert!(
        store
            .replay_dead_letter(id + 1000, &batch(&[]))
            .await
            .is_err()
    );
    assert_eq!(store.resolve_dead_letters(Some(id)).await.unwrap(), 0);
    store.commit(&first).await.unwrap();
    assert_eq!(
        store.resolve_dead_letters(None).await.unwrap(),
        0,
        "the same content is kept once"
    );
}

/// Reading the same input again (Graph's overlap, a Kafka redelivery) keeps one dead letter per
/// content and reason, and one history row per event and rule; new content is still kept.
async fn a_reread_adds_no_dead_letter_or_history_row(store: SqlStore) {
    let bad = |position: &str, raw: &[u8], reason: &str| NewDeadLetter {
        input: "graph directoryAudits page 1".to_owned(),
        position: position.to_owned(),
        reason: reason.to_owned(),
        raw: raw.to_vec(),
    };
    let mut first = batch(&["k1"]);
    first
        .dead_letters
        .push(bad("record 2", b"{\"id\":7}", "no activity"));
    let committed = store.commit(&first).await.unwrap();
    assert_eq!((committed.dead_letters, committed.first_seen.len()), (1, 1));

    // The next poll: the same two records at other positions, plus one new bad record and the
    // same bytes failing for another reason.
    let mut again = batch(&["k1"]);
    again
        .dead_letters
        .push(bad("record 5", b"{\"id\":7}", "no activity"));
    again
        .dead_letters
        .push(bad("record 6", b"{\"id\":8}", "no activity"));
    again
        .dead_letters
        .push(bad("record 7", b"{\"id\":7}", "no time"));
    let committed = store.commit(&again).await.unwrap();
    assert_eq!(
        (committed.dead_letters, committed.dead_letters_known),
        (2, 1)
    );
    assert!(committed.first_seen.is_empty(), "the event was seen before");

    let dead = store.dead_letters(10).await.unwrap();
    let kept: Vec<(&str, &str)> = dead
        .iter()
        .map(|d| (d.position.as_str(), d.reason.as_str()))
        .collect();
    assert_eq!(
        kept,
        [
            ("record 2", "no activity"),
            ("record 6", "no activity"),
            ("record 7", "no time")
        ]
    );
    let history = store.history("t1", "e1").await.unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(
        (history[0].rule.as_str(), history[0].queued),
        ("password-reset", 1)
    );
}

/// A selected event whose change was routine upkeep queues nothing, and its history row says
/// why; an ordinary one has no reason.
async fn a_routine_event_is_recorded_with_why_it_told_nobody(store: SqlStore) {
    let mut routine = batch(&[]);
    routine.events[0].routine = Some("routine: only OathTokenTimeDrift changed".to_owned());
    store.commit(&routine).await.unwrap();
    let history = store.history("t1", "e1").await.unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(
        (history[0].queued, history[0].reason.as_deref()),
        (0, Some("routine: only OathTokenTimeDrift changed"))
    );
    let mut other = batch(&["k9"]);
    other.events[0].event_id = "e2".to_owned();
    for n in &mut other.notifications {
        n.event_id = "e2".to_owned();
    }
    store.commit(&other).await.unwrap();
    let history = store.history("t1", "e2").await.unwrap();
    assert_eq!((history[0].queued, history[0].reason.as_deref()), (1, None));
}

/// Two records of one action (one correlation id), each with a `once_per_action` notice to the
/// same recipient, in separate commits: the first is queued, the second is not and its
/// history says why; the first's event read again is a duplicate as before, and another
/// recipient or channel of the same action is told.
async fn one_action_is_told_once_per_recipient_and_channel(store: SqlStore) {
    let of_action = |key: &str, event: &str, recipient: &str, channel: &str| {
        let mut b = batch(&[key]);
        b.events[0].event_id = event.to_owned();
        let n = &mut b.notifications[0];
        n.event_id = event.to_owned();
        n.recipient = recipient.to_owned();
        n.channel = channel.to_owned();
        n.action = Some("t1|0b7e2f4a-6c1d-4e8f-9a2b-3c4d5e6f7a8b|success".to_owned());
        b
    };
    let first = store
        .commit(&of_action("k1", "registered", "adele@contoso.com", "email"))
        .await
        .unwrap();
    assert_eq!((first.queued, first.suppressed), (1, 0));
    let second = store
        .commit(&of_action(
            "k2",
            "update-user",
            "Adele@Contoso.com",
            "email",
        ))
        .await
        .unwrap();
    assert_eq!((second.queued, second.suppressed), (0, 1));
    let history = store.history("t1", "update-user").await.unwrap();
    assert_eq!(history[0].queued, 0);
    let reason = history[0].reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("once per action: Adele@Contoso.com was already told about correlation id 0b7e2f4a-6c1d-4e8f-9a2b-3c4d5e6f7a8b (k1)"),
        "{reason}"
    );
    // The first record again: a duplicate, not a suppression.
    let again = store
        .commit(&of_action("k1", "registered", "adele@contoso.com", "email"))
        .await
        .unwrap();
    assert_eq!(
        (again.queued, again.duplicates, again.suppressed),
        (0, 1, 0)
    );
    // Another channel or recipient of the same action is its own notice.
    let teams = store
        .commit(&of_action(
            "k3",
            "update-user-2",
            "adele@contoso.com",
            "teams",
        ))
        .await
        .unwrap();
    let soc = store
        .commit(&of_action(
            "k4",
            "update-user-3",
            "soc@contoso.com",
            "email",
        ))
        .await
        .unwrap();
    assert_eq!((teams.queued, soc.queued), (1, 1));
    let pending = store.outbox(&listing(None, 10)).await.unwrap();
    let mut keys: Vec<&str> = pending.iter().map(|n| n.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["k1", "k3", "k4"]);
}

/// A report names its notice (with its event's tenant and time), is recorded once — a second
/// answer returns the first — and is listed by verdict and age.
async fn a_report_is_recorded_once_and_listed_by_verdict(store: SqlStore) {
    use herald::store::{NewReport, ReportAction, Verdict};
    store.commit(&batch(&["k1", "k2"])).await.unwrap();
    assert!(store.reported_notice("nope").await.unwrap().is_none());
    let notice = store.reported_notice("k1").await.unwrap().unwrap();
    assert_eq!(
        (
            notice.tenant.as_str(),
            notice.event_time,
            notice.recipient.as_str()
        ),
        ("t1", Some(T0), "k1@contoso.com")
    );
    // With every "not me", a response action is queued and named on the report.
    let answer = |key: &str, verdict| {
        let store = store.clone();
        let key = key.to_owned();
        async move {
            let notice = store.reported_notice(&key).await.unwrap().unwrap();
            let action = NewNotification {
                channel: "graph_action".to_owned(),
                rule: "action-revoke_sessions".to_owned(),
                ..notification(&format!("{key}-revoke"), "e1")
            };
            let acting = verdict == Verdict::NotMe;
            store
                .record_report(
                    &NewReport {
                        notice,
                        verdict,
                        client_ip: "203.0.113.9".into(),
                        user_agent: "Mozilla/5.0\0".into(),
                        actions: acting
                            .then(|| ReportAction {
                                action: "revoke_sessions".into(),
                                key: action.key.clone(),
                            })
                            .into_iter()
                            .collect(),
                    },
                    if acting {
                        std::slice::from_ref(&action)
                    } else {
                        &[]
                    },
                )
                .await
                .unwrap()
        }
    };
    let (first, new) = answer("k1", Verdict::NotMe).await;
    assert!(new);
    assert_eq!(
        (first.verdict.as_str(), first.client_ip.as_str()),
        ("not_me", "203.0.113.9")
    );
    let (again, new) = answer("k1", Verdict::Me).await;
    assert!(!new);
    assert_eq!(again.verdict, "not_me", "\"me\" never replaces \"not me\"");
    answer("k2", Verdict::Me).await;
    // Whoever said "me" first cannot silence the owner: "not me" replaces it, once.
    let (over, new) = answer("k2", Verdict::NotMe).await;
    assert!(new);
    assert_eq!(over.verdict, "not_me");
    // The action it set off is named with its outbox row's state; a second answer queues none.
    assert_eq!(over.actions.len(), 1, "{over:?}");
    assert_eq!(
        (
            over.actions[0].action.as_str(),
            over.actions[0].key.as_str(),
            over.actions[0].state.as_str()
        ),
        ("revoke_sessions", "k2-revoke", "pending")
    );
    let (_, new) = answer("k2", Verdict::NotMe).await;
    assert!(!new);
    let (_, new) = answer("k2", Verdict::Me).await;
    assert!(!new);
    let all = store.reports(None, None, 10).await.unwrap();
    assert_eq!(all.len(), 2);
    let me = store.reports(Some(Verdict::Me), None, 10).await.unwrap();
    assert!(me.is_empty(), "{me:?}");
    let not_me = store.reports(Some(Verdict::NotMe), None, 10).await.unwrap();
    assert_eq!(not_me.len(), 2);
    let later = store.reports(None, Some(i64::MAX), 10).await.unwrap();
    assert!(later.is_empty());
    // Only the first "not me" of each link queued its action.
    let pending = store.outbox(&listing(None, 10)).await.unwrap();
    let mut actions: Vec<&str> = pending
        .iter()
        .filter(|n| n.channel == "graph_action")
        .map(|n| n.key.as_str())
        .collect();
    actions.sort_unstable();
    assert_eq!(actions, ["k1-revoke", "k2-revoke"]);
    // Two answers at once (two instances behind one proxy, a double click): one records.
    store.commit(&batch(&["k3"])).await.unwrap();
    let (a, b) = tokio::join!(answer("k3", Verdict::NotMe), answer("k3", Verdict::NotMe));
    assert_eq!(
        [a.1, b.1].iter().filter(|new| **new).count(),
        1,
        "both answers recorded"
    );
    assert_eq!(
        (a.0.verdict.as_str(), b.0.verdict.as_str()),
        ("not_me", "not_me")
    );
    assert_eq!(store.report_counts(0).await.unwrap(), (3, 3));
    let of_event = store.reports_of_event("e1").await.unwrap();
    assert_eq!(of_event.len(), 3);
    assert!(store.reports_of_event("e9").await.unwrap().is_empty());
    assert_eq!(store.report_counts(i64::MAX).await.unwrap(), (0, 0));
}

async fn an_instance_releases_and_renews_only_its_own_claims(store: SqlStore) {
    store.commit(&batch(&["k1", "k2", "k3"])).await.unwrap();
    let claimed = |worker: &'static str, at: i64| {
        let store = store.at(at);
        async move {
            store
                .claim(worker, LEASE, 10, &email())
                .await
                .unwrap()
                .len()
        }
    };
    let a = store.at(T0).claim("a", LEASE, 2, &email()).await.unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(claimed("b", T0).await, 1);
    // a starts again: it releases its own two claims, not b's live one.
    assert_eq!(store.release_claims(Some("a")).await.unwrap(), 2);
    assert_eq!(claimed("c", T0 + 1).await, 2);
    // b renews its claim before its lease ends; c's, taken at T0 + 1, still holds: nothing is
    // free at T0 + LEASE + 1, where b's first lease would have run out.
    assert_eq!(store.at(T0 + LEASE - 1).renew("b", LEASE).await.unwrap(), 1);
    assert_eq!(claimed("d", T0 + LEASE + 1).await, 0);
    // c never renews: its claims run out after one lease; b's renewed one holds a lease more.
    assert_eq!(claimed("d", T0 + LEASE + 2).await, 2);
    assert_eq!(claimed("e", T0 + 2 * LEASE - 2).await, 0);
    assert_eq!(claimed("e", T0 + 2 * LEASE).await, 1);
    // A renewal changes nothing once the row has been taken over or recorded.
    assert_eq!(store.at(T0 + 2 * LEASE).renew("b", LEASE).await.unwrap(), 0);
    // Releasing every claim (a single-instance store at start) frees them all.
    assert_eq!(store.release_claims(None).await.unwrap(), 3);
    assert_eq!(claimed("f", T0 + 2 * LEASE + 1).await, 3);
}

fn attempted(key: &str, token: &str, finish: Finish, at: i64, reply: &str) -> Done {
    Done {
        attempt: Some(Attempt {
            at,
            instance: "a".to_owned(),
            reply: reply.to_owned(),
            duration_ms: 42,
        }),
        ..done(key, token, finish)
    }
}

fn keys(rows: &[herald::store::OutboxEntry]) -> Vec<&str> {
    rows.iter().map(|r| r.key.as_str()).collect()
}

/// "Why did Alice get nothing?": every attempt is kept with the server's reply, and the outbox
/// is found by event, recipient, rule and time, newest first.
async fn every_attempt_is_recorded_and_the_outbox_lists_newest_first(store: SqlStore) {
    store.at(T0).commit(&batch(&["k1"])).await.unwrap();
    store.at(T0 + 500).commit(&batch(&["k2"])).await.unwrap();
    let mut second = batch(&["k3"]);
    second.events[0].event_id = "e2".to_owned();
    second.events[0].rules = vec!["new-admin".to_owned()];
    second.notifications[0].event_id = "e2".to_owned();
    second.notifications[0].rule = "new-admin".to_owned();
    store.at(T0 + 1_000).commit(&second).await.unwrap();

    let first = store
        .at(T0 + 2_000)
        .claim("a", LEASE, 1, &email())
        .await
        .unwrap()
        .remove(0);
    assert_eq!(first.key, "k1", "the oldest is claimed first");
    let retry = Finish::Retry {
        after: 1_000,
        error: "451 4.3.0 try later".into(),
    };
    store
        .at(T0 + 2_100)
        .finish(vec![attempted(
            "k1",
            &first.token,
            retry,
            T0 + 2_000,
            "451 4.3.0 try later",
        )])
        .await
        .unwrap();
    // k1 is due again; the others claimed with it are given back unsent, which is no attempt.
    let mut again = store
        .at(T0 + 3_100)
        .claim("a", LEASE, 10, &email())
        .await
        .unwrap();
    again.sort_by(|a, b| a.key.cmp(&b.key));
    let k1 = again.remove(0);
    assert_eq!(k1.key, "k1");
    let unsent = again
        .iter()
        .map(|c| done(&c.key, &c.token, Finish::Released))
        .collect();
    store.at(T0 + 3_100).finish(unsent).await.unwrap();
    // An attempt is a fact even when its claim was taken over meanwhile: a stale token marks
    // nothing, but the attempt is kept.
    let stale = attempted(
        "k1",
        &first.token,
        Finish::Sent,
        T0 + 3_150,
        "250 2.0.0 stale",
    );
    let changed = store
        .at(T0 + 3_200)
        .finish(vec![
            stale,
            attempted(
                "k1",
                &k1.token,
                Finish::Sent,
                T0 + 3_100,
                "250 2.0.0 Ok: queued as 4Xyz",
            ),
        ])
        .await
        .unwrap();
    assert_eq!(changed, 1);

    let attempts = store.attempts("k1").await.unwrap();
    let seen: Vec<(i64, &str, &str)> = attempts
        .iter()
        .map(|a| (a.at, a.outcome.as_str(), a.reply.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (T0 + 2_000, "retry", "451 4.3.0 try later"),
            (T0 + 3_100, "sent", "250 2.0.0 Ok: queued as 4Xyz"),
            (T0 + 3_150, "sent", "250 2.0.0 stale"),
        ]
    );
    assert!(
        attempts
            .iter()
            .all(|a| a.instance == "a" && a.duration_ms == 42)
    );
    assert!(store.attempts("k2").await.unwrap().is_empty());

    let list = |query: OutboxQuery| {
        let store = store.clone();
        async move {
            store
                .outbox(&OutboxQuery {
                    limit: 100,
                    ..query
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(
        keys(&list(OutboxQuery::default()).await),
        ["k3", "k2", "k1"]
    );
    assert_eq!(
        keys(&store.outbox(&listing(None, 1)).await.unwrap()),
        ["k3"]
    );
    let by = |f: fn(&mut OutboxQuery)| {
        let mut query = OutboxQuery::default();
        f(&mut query);
        query
    };
    assert_eq!(
        keys(&list(by(|q| q.event = Some("e2".into()))).await),
        ["k3"]
    );
    assert_eq!(
        keys(&list(by(|q| q.rule = Some("password-reset".into()))).await),
        ["k2", "k1"]
    );
    assert_eq!(
        keys(&list(by(|q| q.recipient = Some("k1@contoso.com".into()))).await),
        ["k1"]
    );
    assert_eq!(
        keys(&list(by(|q| q.since = Some(T0 + 500))).await),
        ["k3", "k2"]
    );
    assert_eq!(
        keys(&list(by(|q| q.state = Some(State::Sent))).await),
        ["k1"]
    );
    // Filters combine; a value is a value, never SQL.
    assert!(
        list(by(|q| {
            q.event = Some("e2".into());
            q.state = Some(State::Sent)
        }))
        .await
        .is_empty()
    );
    assert!(
        list(by(|q| q.recipient = Some("' OR 1=1 --".into())))
            .await
            .is_empty()
    );

    let (row, message) = store.notification("k1").await.unwrap().unwrap();
    assert_eq!(
        (row.state, message.as_slice()),
        (State::Sent, b"message k1".as_slice())
    );
    assert!(store.notification("k9").await.unwrap().is_none());
    let backlog = store.backlog().await.unwrap();
    assert_eq!((backlog.pending, backlog.failed), (2, 0));
}

async fn retention_prunes_old_rows_in_batches_and_a_dry_run_removes_nothing(store: SqlStore) {
    const DAY: i64 = 86_400_000;
    let mut first = batch(&["k1", "k2", "k3", "k4"]);
    first.dead_letters.push(NewDeadLetter {
        input: "audit.json".to_owned(),
        position: "line 3".to_owned(),
        reason: "not JSON".to_owned(),
        raw: b"{oops".to_vec(),
    });
    store.at(T0).commit(&first).await.unwrap();
    let claimed = store.at(T0).claim("a", LEASE, 4, &email()).await.unwrap();
    let outcomes = claimed
        .iter()
        .map(|c| match c.key.as_str() {
            "k3" => attempted(
                &c.key,
                &c.token,
                Finish::Failed {
                    error: "550 no such user".into(),
                },
                T0,
                "550",
            ),
            "k4" => done(&c.key, &c.token, Finish::Released),
            _ => attempted(&c.key, &c.token, Finish::Sent, T0, "250"),
        })
        .collect();
    store.at(T0).finish(outcomes).await.unwrap();
    let notice = store.reported_notice("k1").await.unwrap().unwrap();
    store
        .at(T0)
        .record_report(
            &herald::store::NewReport {
                notice,
                verdict: herald::store::Verdict::NotMe,
                client_ip: "203.0.113.9".into(),
                user_agent: String::new(),
                actions: Vec::new(),
            },
            &[],
        )
        .await
        .unwrap();
    let day = |n: i64| std::time::Duration::from_millis((n * DAY) as u64);
    let retention = Retention {
        sent: day(10),
        failed: day(20),
        dead_letters: day(20),
        history: day(10),
        events_seen: day(5),
        reports: day(30),
    };
    let prune = |at: i64, batch: i64, dry_run: bool| {
        let (store, retention) = (store.at(at), retention.clone());
        async move { store.prune(&retention, batch, dry_run).await.unwrap() }
    };
    let counted = |p: herald::store::Pruned| {
        (
            p.sent,
            p.failed,
            p.attempts,
            p.dead_letters,
            p.history,
            p.events_seen,
        )
    };

    assert_eq!(
        counted(prune(T0 + 4 * DAY, 100, true).await),
        (0, 0, 0, 0, 0, 0)
    );
    assert_eq!(
        counted(prune(T0 + 6 * DAY, 100, true).await),
        (0, 0, 0, 0, 0, 1)
    );
    assert_eq!(
        counted(prune(T0 + 11 * DAY, 100, true).await),
        (2, 0, 2, 0, 1, 1)
    );
    // The dry runs removed nothing.
    assert_eq!(store.counts().await.unwrap().sent, 2);
    assert_eq!(store.attempts("k1").await.unwrap().len(), 1);

    // One row per table per pass: the sent rows take two passes.
    assert_eq!(
        counted(prune(T0 + 11 * DAY, 1, false).await),
        (1, 0, 1, 0, 1, 1)
    );
    assert_eq!(
        counted(prune(T0 + 11 * DAY, 1, false).await),
        (1, 0, 1, 0, 0, 0)
    );
    assert_eq!(
        counted(prune(T0 + 11 * DAY, 1, false).await),
        (0, 0, 0, 0, 0, 0)
    );
    assert!(store.attempts("k1").await.unwrap().is_empty());
    assert_eq!(
        store.attempts("k3").await.unwrap().len(),
        1,
        "a failed row is kept longer"
    );
    assert_eq!(store.history("t1", "e1").await.unwrap(), []);

    assert_eq!(
        counted(prune(T0 + 21 * DAY, 100, false).await),
        (0, 1, 1, 1, 0, 0)
    );
    // Pending rows are never pruned, however old.
    assert_eq!(
        keys(&store.outbox(&listing(None, 10)).await.unwrap()),
        ["k4"]
    );
    assert!(store.dead_letters(10).await.unwrap().is_empty());
    // The owner's answer outlives its notice, until its own age.
    assert_eq!(store.reports(None, None, 10).await.unwrap().len(), 1);
    assert_eq!(prune(T0 + 29 * DAY, 100, false).await.reports, 0);
    assert_eq!(prune(T0 + 31 * DAY, 100, false).await.reports, 1);
    assert!(store.reports(None, None, 10).await.unwrap().is_empty());
}

/// An id no index can hold: 20,000 characters that do not compress. PostgreSQL refuses such a
/// key (a B-tree row holds at most about 2,700 bytes); SQLite takes it.
fn an_id_too_large_for_an_index() -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[(x % 36) as usize])
        })
        .collect()
}

/// One record whose rows the database refuses must not fail its batch on every retry (a
/// Kafka partition looping, an HTTP client answered 503 for ever): the rest is committed, with
/// the checkpoint, and that record is kept as a dead letter with the database's reason.
async fn a_record_the_store_refuses_is_a_dead_letter_and_its_batch_commits(store: SqlStore) {
    let huge = an_id_too_large_for_an_index();
    let mut both = batch(&["k1"]);
    let mut refused = both.events[0].clone();
    refused.event_id = huge.clone();
    refused.position = "line 2".to_owned();
    refused.raw = format!("{{\"id\":\"{huge}\"}}").into_bytes();
    both.events.push(refused);
    both.notifications.push(notification("k2", &huge));
    both.checkpoint = Some(("audit.json".to_owned(), "2".to_owned()));
    let committed = store.commit(&both).await.unwrap();
    let postgres = matches!(store.engine(), herald::store::Engine::Postgres);
    let mut queued: Vec<String> = store
        .outbox(&listing(None, 10))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    queued.sort();
    assert_eq!(
        store
            .checkpoint("entra", "audit.json")
            .await
            .unwrap()
            .as_deref(),
        Some("2")
    );
    if postgres {
        assert_eq!((committed.queued, committed.dead_letters), (1, 1));
        assert_eq!(queued, ["k1"]);
        let dead = store.dead_letters(10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(
            (dead[0].input.as_str(), dead[0].position.as_str()),
            ("audit.json", "line 2")
        );
        assert!(
            dead[0]
                .reason
                .starts_with("the store refused this record's rows: "),
            "{}",
            dead[0].reason
        );
        assert!(
            dead[0].reason.contains("index row"),
            "the database's reason: {}",
            dead[0].reason
        );
        let kept = store.dead_letter(dead[0].id).await.unwrap().unwrap();
        assert!(kept.raw.ends_with(format!("{huge}\"}}").as_bytes()));
        // Offered again (a redelivery), it adds nothing.
        let again = store.commit(&both).await.unwrap();
        assert_eq!(
            (
                again.queued,
                again.duplicates,
                again.dead_letters,
                again.dead_letters_known
            ),
            (0, 1, 0, 1)
        );
    } else {
        assert_eq!((committed.queued, committed.dead_letters), (2, 0));
        assert_eq!(queued, ["k1", "k2"]);
    }
}

async fn the_schema_check_refuses_an_unmigrated_store(store: SqlStore) {
    // `store` is migrated: a check passes on it.
    store.ping().await.unwrap();
    let (url, base, _keep) = match store.engine() {
        herald::store::Engine::Sqlite(path) => {
            let fresh = path.with_file_name("fresh.db");
            (
                format!("sqlite://{}", fresh.display()),
                path.parent().unwrap().to_owned(),
                None,
            )
        }
        herald::store::Engine::Postgres => {
            let database = Postgres::shared().database("unmigrated");
            (database.url.clone(), ".".into(), Some(database))
        }
    };
    let refused = SqlStore::open(&url, &base, Schema::Check, None)
        .await
        .err()
        .expect("an unmigrated store is refused");
    let message = refused.to_string();
    assert!(message.contains("herald migrate"), "{message}");
    SqlStore::open(&url, &base, Schema::Migrate, None)
        .await
        .unwrap();
    SqlStore::open(&url, &base, Schema::Check, None)
        .await
        .unwrap();
}

/// Opening a PostgreSQL store that cannot be reached says why, and never shows the password.
#[tokio::test]
async fn an_unreachable_postgres_store_is_explained() {
    let url = format!(
        "postgres://herald:hunter2@127.0.0.1:{}/herald",
        support::free_port()
    );
    let err = SqlStore::open(&url, std::path::Path::new("."), Schema::Migrate, None)
        .await
        .err()
        .expect("nothing listens there")
        .to_string();
    assert!(err.contains("connecting to PostgreSQL"), "{err}");
    assert!(err.contains("refused"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

/// The dashboard's search: by an account the event names (any case), activity, tenant, rule and
/// time, newest first; one event with its record as it came.
async fn selected_events_are_found_by_account_activity_rule_and_time(store: SqlStore) {
    use herald::store::EventQuery;
    let mut first = batch(&["k1", "k2", "k3"]);
    let mut second = first.events[0].clone();
    second.event_id = "e2".to_owned();
    second.time = T0 + 60_000;
    second.activity = "Update user".to_owned();
    second.rules = vec!["profile".to_owned()];
    second.accounts = vec!["megan.bowen@contoso.com".to_owned()];
    first.events.push(second);
    store.commit(&first).await.unwrap();
    let found = |q: EventQuery| {
        let store = store.clone();
        async move {
            store
                .events(&EventQuery { limit: 10, ..q })
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.event_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(found(EventQuery::default()).await, ["e2", "e1"]);
    let by = |account: &str| EventQuery {
        account: account.to_owned(),
        ..EventQuery::default()
    };
    assert_eq!(found(by("Adele.Vance@Contoso.com")).await, ["e1"]);
    assert_eq!(found(by("adele vance")).await, ["e1"]);
    assert!(found(by("adele")).await.is_empty(), "whole names only");
    let q = EventQuery {
        activity: "update USER".to_owned(),
        ..EventQuery::default()
    };
    assert_eq!(found(q).await, ["e2"]);
    let q = EventQuery {
        rule: "password-reset".to_owned(),
        ..EventQuery::default()
    };
    assert_eq!(found(q).await, ["e1"]);
    let q = EventQuery {
        since: Some(T0 + 1),
        ..EventQuery::default()
    };
    assert_eq!(found(q).await, ["e2"]);
    let q = EventQuery {
        account: "megan.bowen@contoso.com".to_owned(),
        tenant: "another".to_owned(),
        ..EventQuery::default()
    };
    assert!(found(q).await.is_empty());
    // A page at a time: after the last row of a page, the next (keyset: by time, id, tenant).
    let q = EventQuery {
        limit: 1,
        ..EventQuery::default()
    };
    let first_page = store.events(&q).await.unwrap();
    assert_eq!(first_page.len(), 1);
    let last = &first_page[0];
    let q = EventQuery {
        after: Some((last.event_time, last.event_id.clone(), last.tenant.clone())),
        limit: 10,
        ..EventQuery::default()
    };
    assert_eq!(found(q).await, ["e1"]);
    let q = EventQuery {
        account: "adele.vance@contoso.com".to_owned(),
        after: Some((T0, "e1".to_owned(), "t1".to_owned())),
        ..EventQuery::default()
    };
    assert!(found(q).await.is_empty(), "nothing after the last");
    // The outbox likewise, after a row's (queued at, key).
    let rows = store.outbox(&listing(None, 10)).await.unwrap();
    let after = herald::store::OutboxQuery {
        after: Some((rows[0].created_at, rows[0].key.clone())),
        ..listing(None, 10)
    };
    let rest = store.outbox(&after).await.unwrap();
    assert_eq!(
        rows.len(),
        3,
        "three notices queued at one time: the key orders them"
    );
    assert_eq!(rest.len(), 2);
    assert!(rest.iter().all(|r| r.key != rows[0].key));
    // The overview's day: the events selected and the notices queued, by channel and state.
    let day = store.activity(0).await.unwrap();
    assert_eq!(day.events, 2);
    assert_eq!(day.notices, [("email".to_owned(), "pending".to_owned(), 3)]);
    assert_eq!(
        store.activity(i64::MAX).await.unwrap(),
        herald::store::Activity::default()
    );
    let (entry, raw) = store.event(Some("t1"), "e1").await.unwrap().unwrap();
    assert_eq!(
        (entry.activity.as_str(), raw.as_slice()),
        ("Reset password (by admin)", &b"{\"id\":\"e1\"}"[..])
    );
    assert!(store.event(None, "e2").await.unwrap().is_some());
    assert!(store.event(Some("t2"), "e2").await.unwrap().is_none());
}

/// A notification under storm control: `throttle` (limit, window in ms), a repeat key with
/// its window, a group key with its wait.
fn controlled(
    key: &str,
    event: &str,
    recipient: &str,
    set: impl FnOnce(&mut herald::storm::Controls),
) -> Batch {
    let mut b = batch(&[key]);
    b.events[0].event_id = event.to_owned();
    let n = &mut b.notifications[0];
    n.event_id = event.to_owned();
    n.recipient = recipient.to_owned();
    n.summary = Some(format!(
        r#"{{"headline":"headline {key}","facts":["fact {key}"],"activity":"Reset password (by admin)","event_time":{T0}}}"#
    ));
    let mut controls = herald::storm::Controls {
        facets: herald::storm::Facets {
            rule: "password-reset".to_owned(),
            activity: "Reset password (by admin)".to_owned(),
            tenant: "t1".to_owned(),
            account: vec![recipient.to_owned()],
            recipient: recipient.to_owned(),
            initiator_app: vec!["Bulk Onboarding".to_owned()],
            ..Default::default()
        },
        silenceable: true,
        ..Default::default()
    };
    set(&mut controls);
    n.controls = Some(controls);
    b
}

fn throttled(limit: u32, window: i64) -> impl FnOnce(&mut herald::storm::Controls) {
    move |c| {
        c.throttles = vec![herald::storm::Throttle {
            scope: "adele-email".to_owned(),
            limit,
            window,
        }]
    }
}

async fn fate_of(store: &SqlStore, key: &str) -> (State, Option<String>) {
    let (entry, _) = store.notification(key).await.unwrap().unwrap();
    (entry.state, entry.held_by)
}

async fn a_throttle_holds_past_its_limit_and_its_window_closes_once_into_one_digest(
    store: SqlStore,
) {
    let adele = "adele@contoso.com";
    for i in 0..5 {
        let c = store
            .at(T0 + i)
            .commit(&controlled(
                &format!("k{i}"),
                &format!("e{i}"),
                adele,
                throttled(2, 10_000),
            ))
            .await
            .unwrap();
        assert_eq!(c.held, u64::from(i >= 2), "notice {i}");
    }
    assert_eq!(fate_of(&store, "k1").await.0, State::Pending);
    let (state, by) = fate_of(&store, "k4").await;
    assert_eq!(state, State::Held);
    let window = by.unwrap();
    assert!(window.starts_with("throttle-"), "{window}");
    // A redelivered event is a duplicate, not counted again.
    let again = store
        .at(T0 + 6)
        .commit(&controlled("k4", "e4", adele, throttled(2, 10_000)))
        .await
        .unwrap();
    assert_eq!((again.duplicates, again.held), (1, 0));
    // Nothing is due before the window's end.
    assert!(
        store
            .at(T0 + 9_000)
            .due_windows(10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = store.at(T0 + 10_000).due_windows(10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].counted, due[0].held), (2, 3));
    let mut listed = Vec::new();
    let closed = store
        .at(T0 + 10_000)
        .close_window(&due[0], |members| {
            let herald::store::Members::Notices(held) = members else {
                panic!("a throttle holds notices")
            };
            listed = held.iter().map(|h| h.key.clone()).collect();
            Ok(vec![NewNotification {
                key: "digest".to_owned(),
                rule: "digest".to_owned(),
                ..notification("digest", "e2")
            }])
        })
        .await
        .unwrap();
    assert!(closed);
    assert_eq!(listed, ["k2", "k3", "k4"]);
    // Closed once: another instance coming second finds nothing to do.
    let second = store
        .at(T0 + 10_001)
        .close_window(&due[0], |_| panic!("closed twice"))
        .await
        .unwrap();
    assert!(!second);
    for k in ["k2", "k3", "k4"] {
        assert_eq!(
            fate_of(&store, k).await,
            (State::Merged, Some(window.clone()))
        );
    }
    assert_eq!(fate_of(&store, "digest").await.0, State::Pending);
    // A new window begins after the old one's end: the next notice is sent.
    let next = store
        .at(T0 + 10_002)
        .commit(&controlled("k5", "e5", adele, throttled(2, 10_000)))
        .await
        .unwrap();
    assert_eq!((next.queued, next.held), (1, 0));
}

async fn a_repeat_is_recorded_not_sent_within_its_window_or_ever(store: SqlStore) {
    let adele = "adele@contoso.com";
    let hour =
        |c: &mut herald::storm::Controls| c.repeat = Some(("r1".to_owned(), Some(3_600_000)));
    let never = |c: &mut herald::storm::Controls| c.repeat = Some(("r2".to_owned(), None));
    assert_eq!(
        store
            .at(T0)
            .commit(&controlled("k1", "e1", adele, hour))
            .await
            .unwrap()
            .queued,
        1
    );
    let second = store
        .at(T0 + 60_000)
        .commit(&controlled("k2", "e2", adele, hour))
        .await
        .unwrap();
    assert_eq!(second.silenced, 1);
    assert_eq!(
        fate_of(&store, "k2").await,
        (State::Suppressed, Some("repeat:k1".to_owned()))
    );
    let history = store.history("t1", "e2").await.unwrap();
    assert!(
        history[0]
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("a repeat: notice k1"),
        "{history:?}"
    );
    // After the window, it is told again and stands for the next hour.
    let later = store
        .at(T0 + 3_600_000)
        .commit(&controlled("k3", "e3", adele, hour))
        .await
        .unwrap();
    assert_eq!(later.queued, 1);
    let after = store
        .at(T0 + 3_600_001)
        .commit(&controlled("k4", "e4", adele, hour))
        .await
        .unwrap();
    assert_eq!(after.silenced, 1);
    assert_eq!(fate_of(&store, "k4").await.1.as_deref(), Some("repeat:k3"));
    // "never": a year on, still a repeat.
    store
        .at(T0)
        .commit(&controlled("n1", "f1", adele, never))
        .await
        .unwrap();
    let year = store
        .at(T0 + 366 * 86_400_000)
        .commit(&controlled("n2", "f2", adele, never))
        .await
        .unwrap();
    assert_eq!(year.silenced, 1);
}

async fn a_group_holds_its_notices_until_its_wait_ends_and_closes_into_one(store: SqlStore) {
    let adele = "adele@contoso.com";
    let group = |c: &mut herald::storm::Controls| c.group = Some(("g1".to_owned(), 5_000));
    store
        .at(T0)
        .commit(&controlled("k1", "e1", adele, group))
        .await
        .unwrap();
    let c = store
        .at(T0 + 2_000)
        .commit(&controlled("k2", "e2", adele, group))
        .await
        .unwrap();
    assert_eq!((c.queued, c.held), (0, 1));
    let (_, by1) = fate_of(&store, "k1").await;
    let (_, by2) = fate_of(&store, "k2").await;
    assert_eq!(by1, by2);
    assert!(by1.as_deref().unwrap().starts_with("group-"));
    let due = store.at(T0 + 5_000).due_windows(10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert!(
        store
            .at(T0 + 5_000)
            .close_window(&due[0], |m| {
                let herald::store::Members::Notices(held) = m else {
                    panic!()
                };
                assert_eq!(held.len(), 2);
                Ok(vec![notification("group-notice", "e1")])
            })
            .await
            .unwrap()
    );
    assert_eq!(fate_of(&store, "k2").await.0, State::Merged);
    // After the wait, the same key begins a new group.
    let c = store
        .at(T0 + 6_000)
        .commit(&controlled("k3", "e3", adele, group))
        .await
        .unwrap();
    assert_eq!(c.held, 1);
    assert_ne!(fate_of(&store, "k3").await.1, by1);
}

async fn a_silence_suppresses_only_what_it_matches_in_its_hours_and_is_summarized_once(
    store: SqlStore,
) {
    use herald::store::NewSilence;
    // Thursday 15 January 2027, 01:30 UTC; the window is daily 01:00-02:00 UTC.
    let inside = "2027-01-15T01:30:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond();
    let outside = inside + 2 * 3_600_000;
    let id = store
        .at(inside - 60_000)
        .add_silence(
            &NewSilence {
                matchers: r#"initiator.app="Bulk *""#.to_owned(),
                starts_at: None,
                ends_at: None,
                lasts: Some(30 * 86_400_000),
                weekly: Some("daily 01:00-02:00 UTC".to_owned()),
                created_by: "operator@contoso.com".to_owned(),
                comment: "nightly onboarding run".to_owned(),
            },
            None,
            |s| {
                vec![notification(
                    &format!("silence-created-{}", s.id),
                    "silence",
                )]
            },
        )
        .await
        .unwrap();
    assert_eq!(
        fate_of(&store, &format!("silence-created-{id}")).await.0,
        State::Pending
    );
    let adele = "adele@contoso.com";
    let c = store
        .at(inside)
        .commit(&controlled("k1", "e1", adele, |_| {}))
        .await
        .unwrap();
    assert_eq!(c.silenced, 1);
    assert_eq!(
        fate_of(&store, "k1").await,
        (State::Suppressed, Some(format!("silence:{id}")))
    );
    // Outside its hours, sent.
    let c = store
        .at(outside)
        .commit(&controlled("k2", "e2", adele, |_| {}))
        .await
        .unwrap();
    assert_eq!(c.queued, 1);
    // Another initiator: sent.
    let other = |c: &mut herald::storm::Controls| c.facets.initiator_app = vec!["Other".to_owned()];
    let c = store
        .at(inside + 1)
        .commit(&controlled("k3", "e3", adele, other))
        .await
        .unwrap();
    assert_eq!(c.queued, 1);
    // A rule marked silenceable = false: sent.
    let loud = |c: &mut herald::storm::Controls| c.silenceable = false;
    let c = store
        .at(inside + 2)
        .commit(&controlled("k4", "e4", adele, loud))
        .await
        .unwrap();
    assert_eq!(c.queued, 1);
    let listed = store.at(inside + 3).silences(true).await.unwrap();
    assert_eq!((listed.len(), listed[0].suppressed), (1, 1));
    assert!(
        store
            .at(inside + 3)
            .ended_silences()
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .at(inside + 4)
            .expire_silence(id, "operator@contoso.com", None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .at(inside + 5)
            .expire_silence(id, "operator@contoso.com", None)
            .await
            .unwrap()
    );
    let ended = store.at(inside + 5).ended_silences().await.unwrap();
    assert_eq!(ended.len(), 1);
    let mut summarized = 0;
    assert!(
        store
            .at(inside + 6)
            .close_silence(&ended[0], |held| {
                summarized = held.len();
                vec![notification("silence-summary", "silence")]
            })
            .await
            .unwrap()
    );
    assert_eq!(summarized, 1);
    assert!(
        !store
            .at(inside + 7)
            .close_silence(&ended[0], |_| panic!("twice"))
            .await
            .unwrap()
    );
    // Expired: it holds nothing any more.
    let c = store
        .at(inside + 8)
        .commit(&controlled("k5", "e5", adele, |_| {}))
        .await
        .unwrap();
    assert_eq!(c.queued, 1);
}

async fn a_bulk_window_counts_each_account_once(store: SqlStore) {
    let with_bulk = |event: &str, accounts: &[&str]| {
        let mut b = batch(&[]);
        b.events[0].event_id = event.to_owned();
        b.events[0].bulk = Some(herald::storm::BulkCount {
            scope: "bulk-onboarding".to_owned(),
            initiator: "Bulk Onboarding".to_owned(),
            accounts: accounts.iter().map(|a| a.to_string()).collect(),
            threshold: 2,
            window: 60_000,
            facets: Default::default(),
        });
        b
    };
    store
        .at(T0)
        .commit(&with_bulk("e1", &["a@contoso.com"]))
        .await
        .unwrap();
    store
        .at(T0 + 1)
        .commit(&with_bulk("e2", &["b@contoso.com", "a@contoso.com"]))
        .await
        .unwrap();
    // The same event read again counts nothing.
    store
        .at(T0 + 2)
        .commit(&with_bulk("e2", &["b@contoso.com"]))
        .await
        .unwrap();
    store
        .at(T0 + 3)
        .commit(&with_bulk("e3", &["c@contoso.com"]))
        .await
        .unwrap();
    let due = store.at(T0 + 60_000).due_windows(10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].counted, 3);
    let mut accounts = Vec::new();
    store
        .at(T0 + 60_000)
        .close_window(&due[0], |m| {
            let herald::store::Members::Accounts(a) = m else {
                panic!()
            };
            accounts = a.iter().map(|a| a.account.clone()).collect();
            Ok(Vec::new())
        })
        .await
        .unwrap();
    assert_eq!(
        accounts,
        ["a@contoso.com", "b@contoso.com", "c@contoso.com"]
    );
}

async fn the_configurations_silences_are_made_once_and_ended_when_removed(store: SqlStore) {
    let configured = herald::storm::ConfiguredSilence {
        matchers: "rule=\"password-reset\"".to_owned(),
        weekly: Some("sat 22:00-23:00 UTC".to_owned()),
        starts: None,
        ends: None,
        comment: "maintenance".to_owned(),
        created_by: "the configuration".to_owned(),
    };
    let told = std::sync::atomic::AtomicUsize::new(0);
    let tell = |s: &herald::store::SilenceEntry| {
        told.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        vec![notification(&format!("made-{}", s.id), "silence")]
    };
    let all = std::slice::from_ref(&configured);
    assert_eq!(store.at(T0).sync_silences(all, tell).await.unwrap(), (1, 0));
    // A second start (or a second instance) makes nothing new.
    assert_eq!(
        store.at(T0 + 1).sync_silences(all, tell).await.unwrap(),
        (0, 0)
    );
    assert_eq!(told.load(std::sync::atomic::Ordering::SeqCst), 1);
    let live = store.at(T0 + 2).silences(true).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].weekly.as_deref(), Some("sat 22:00-23:00 UTC"));
    // Changed in the file: the old one ends, the new one is made.
    let changed = herald::storm::ConfiguredSilence {
        comment: "longer maintenance".to_owned(),
        ..configured.clone()
    };
    let (made, ended) = store
        .at(T0 + 3)
        .sync_silences(std::slice::from_ref(&changed), tell)
        .await
        .unwrap();
    assert_eq!((made, ended), (1, 1));
    // Removed from the file: ended, and its summary is due.
    assert_eq!(
        store.at(T0 + 4).sync_silences(&[], tell).await.unwrap(),
        (0, 1)
    );
    assert!(store.at(T0 + 5).silences(true).await.unwrap().is_empty());
    assert_eq!(store.at(T0 + 5).ended_silences().await.unwrap().len(), 2);
}
