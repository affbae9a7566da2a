//! Writing one source batch in its transaction (ARCHITECTURE.md §7): its selected events with
//! their notifications and history, its dead letters and its checkpoint; and, when the database
//! refuses some value in it, the same again event by event under savepoints, the refused events
//! kept as dead letters.

use sqlx::{Any, Transaction};

use super::sql::{content_hash, err, text};
use super::storm::{self, Fate};
use super::{Batch, Committed, Millis, NewDeadLetter, NewNotification, StoreError};

/// A batch in one transaction: its events with their notifications and history, its dead
/// letters, its checkpoint. A value the database refuses fails the whole of it; see
/// [`insert_isolated`].
pub(super) async fn insert_batch(
    tx: &mut Transaction<'_, Any>,
    batch: &Batch,
    now: Millis,
) -> Result<Committed, StoreError> {
    let mut committed = insert_events(tx, batch, now).await?;
    for d in &batch.dead_letters {
        if insert_dead_letter(tx, &batch.source, d, now).await? {
            committed.dead_letters += 1;
        } else {
            committed.dead_letters_known += 1;
        }
    }
    save_checkpoint(tx, batch, now).await?;
    Ok(committed)
}

/// A batch the database refused part of (ARCHITECTURE.md §7): each event with its
/// notifications and history is inserted under a savepoint of its own, and an event whose
/// rows are refused becomes a dead letter with the database's reason instead, so one such
/// record never fails its batch on every retry. Dead letters are inserted the same way.
pub(super) async fn insert_isolated(
    tx: &mut Transaction<'_, Any>,
    batch: &Batch,
    now: Millis,
) -> Result<Committed, StoreError> {
    use sqlx::Acquire;
    let mut committed = Committed::default();
    let mut refused = Vec::new();
    for event in &batch.events {
        let part = Batch {
            source: batch.source.clone(),
            events: vec![event.clone()],
            notifications: batch
                .notifications
                .iter()
                .filter(|n| n.event_id == event.event_id)
                .cloned()
                .collect(),
            ..Batch::default()
        };
        let mut savepoint = (&mut **tx)
            .begin()
            .await
            .map_err(err("beginning a savepoint"))?;
        match insert_events(&mut savepoint, &part, now).await {
            Ok(c) => {
                savepoint
                    .commit()
                    .await
                    .map_err(err("releasing a savepoint"))?;
                committed.absorb(c);
            }
            Err(e) if e.is_refusal() => {
                savepoint
                    .rollback()
                    .await
                    .map_err(err("rolling back a savepoint"))?;
                tracing::warn!(source = %batch.source, event = %event.event_id.chars().take(80).collect::<String>(), error = %e, "the store refused a record; it is kept as a dead letter");
                refused.push(NewDeadLetter {
                    input: event.input.clone(),
                    position: event.position.clone(),
                    reason: format!("the store refused this record's rows: {e}"),
                    raw: event.raw.clone(),
                });
            }
            Err(e) => return Err(e),
        }
    }
    // Notifications of no event in the batch (none are made so) are not left behind.
    let orphans: Vec<NewNotification> = batch
        .notifications
        .iter()
        .filter(|n| !batch.events.iter().any(|e| e.event_id == n.event_id))
        .cloned()
        .collect();
    if !orphans.is_empty() {
        let part = Batch {
            source: batch.source.clone(),
            notifications: orphans,
            ..Batch::default()
        };
        committed.absorb(insert_events(tx, &part, now).await?);
    }
    for d in batch.dead_letters.iter().chain(&refused) {
        let mut savepoint = (&mut **tx)
            .begin()
            .await
            .map_err(err("beginning a savepoint"))?;
        let kept = match insert_dead_letter(&mut savepoint, &batch.source, d, now).await {
            Ok(kept) => {
                savepoint
                    .commit()
                    .await
                    .map_err(err("releasing a savepoint"))?;
                kept
            }
            Err(e) if e.is_refusal() => {
                // Its text is what was refused: kept with the text cut short, the bytes whole.
                savepoint
                    .rollback()
                    .await
                    .map_err(err("rolling back a savepoint"))?;
                let short = |t: &str| t.chars().take(200).collect::<String>();
                let shortened = NewDeadLetter {
                    input: short(&d.input),
                    position: short(&d.position),
                    reason: format!(
                        "{} (the store refused the full text: {e})",
                        short(&d.reason)
                    ),
                    raw: d.raw.clone(),
                };
                insert_dead_letter(tx, &batch.source, &shortened, now).await?
            }
            Err(e) => return Err(e),
        };
        if kept {
            committed.dead_letters += 1;
        } else {
            committed.dead_letters_known += 1;
        }
    }
    save_checkpoint(tx, batch, now).await?;
    Ok(committed)
}

/// A batch's events, their notifications and history.
async fn insert_events(
    tx: &mut Transaction<'_, Any>,
    batch: &Batch,
    now: Millis,
) -> Result<Committed, StoreError> {
    let mut committed = Committed::default();
    let controlled = batch.notifications.iter().any(|n| n.controls.is_some())
        || batch.events.iter().any(|e| e.bulk.is_some());
    let silences = match controlled {
        true => storm::live_silences(tx, now).await?,
        false => Vec::new(),
    };
    for event in &batch.events {
        let seen = sqlx::query(
            "INSERT INTO events_seen (tenant, event_id, activity, event_time, source, first_seen, raw)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(text(&event.tenant))
        .bind(text(&event.event_id))
        .bind(text(&event.activity))
        .bind(event.time)
        .bind(&batch.source)
        .bind(now)
        .bind(&event.raw)
        .execute(&mut **tx)
        .await
        .map_err(err("recording an event"))?;
        if seen.rows_affected() == 1 {
            committed.first_seen.push(event.time);
            if let Some(bulk) = &event.bulk
                && storm::silenced_by(&silences, &bulk.facets, now).is_none()
            {
                storm::count_bulk(
                    tx,
                    bulk,
                    &event.tenant,
                    &event.event_id,
                    &event.activity,
                    event.time,
                    now,
                )
                .await?;
            }
            for account in &event.accounts {
                sqlx::query(
                    "INSERT INTO event_accounts (account, tenant, event_id, event_time, first_seen)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(text(account))
                .bind(text(&event.tenant))
                .bind(text(&event.event_id))
                .bind(event.time)
                .bind(now)
                .execute(&mut **tx)
                .await
                .map_err(err("recording an event's accounts"))?;
            }
        }
    }
    // (event id, rule) of notices not queued, with why: another notice told the recipient
    // about the same action.
    let mut suppressed: Vec<(&str, &str, String)> = Vec::new();
    // (event id, rule) of notices recorded but not sent now, with why.
    let mut kept: Vec<(&str, &str, String)> = Vec::new();
    for n in &batch.notifications {
        if let Some(action) = &n.action
            && let Some(holder) = action_told(tx, action, n, now).await?
        {
            committed.suppressed += 1;
            suppressed.push((
                n.event_id.as_str(),
                n.rule.as_str(),
                told_already(&n.recipient, action, &holder),
            ));
            continue;
        }
        // Storm control counts a notice once: one already queued (its event read again) is
        // a duplicate before it is anything else.
        let fate = match &n.controls {
            // Only a silence can hold it: nothing is counted, so a notice already queued is
            // found by its insert, as any other.
            Some(controls) if !controls.counts() => storm::silenced(controls, &silences, now),
            Some(controls) => {
                let known = sqlx::query("SELECT 1 FROM outbox WHERE key = $1")
                    .bind(&n.key)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(err("reading the outbox"))?;
                if known.is_some() {
                    committed.duplicates += 1;
                    continue;
                }
                storm::decide(tx, n, controls, &silences, now).await?
            }
            None => Fate::Pending,
        };
        let (state, held_by) = match &fate {
            Fate::Pending => ("pending", None),
            Fate::Held(by) => ("held", Some(by.as_str())),
            Fate::Suppressed(by) => ("suppressed", Some(by.as_str())),
        };
        let done = insert_notice(tx, n, state, held_by, now).await?;
        if done && let Some(words) = crate::storm::fate_in_words(state, held_by) {
            kept.push((n.event_id.as_str(), n.rule.as_str(), words));
        }
        if done && fate != Fate::Pending {
            match fate {
                Fate::Held(_) => committed.held += 1,
                _ => committed.silenced += 1,
            }
            let why = match &fate {
                Fate::Held(_) => "held",
                Fate::Suppressed(by) if by.starts_with("silence:") => "silenced",
                _ => "repeat",
            };
            *committed
                .kept_by
                .entry((n.rule.clone(), why.to_owned()))
                .or_default() += 1;
        } else if done {
            committed.queued += 1;
            *committed
                .queued_by
                .entry((n.rule.clone(), n.channel.clone()))
                .or_default() += 1;
        } else {
            committed.duplicates += 1;
        }
    }
    for event in &batch.events {
        for rule in &event.rules {
            // One history row per event and rule: a re-read (Graph's overlap, a redelivery)
            // queues nothing new and says nothing new.
            let known = sqlx::query(
                "SELECT 1 FROM history WHERE tenant = $1 AND event_id = $2 AND rule = $3 LIMIT 1",
            )
            .bind(text(&event.tenant))
            .bind(text(&event.event_id))
            .bind(rule)
            .fetch_optional(&mut **tx)
            .await
            .map_err(err("reading history"))?;
            if known.is_some() {
                continue;
            }
            let of_rule = |e: &str, r: &str| e == event.event_id && r == rule;
            let held: Vec<&String> = suppressed
                .iter()
                .filter(|(e, r, _)| of_rule(e, r))
                .map(|(.., why)| why)
                .collect();
            let queued = batch
                .notifications
                .iter()
                .filter(|n| of_rule(&n.event_id, &n.rule))
                .count() as i64
                - held.len() as i64;
            let reason = event.routine.clone().or_else(|| {
                (queued == 0)
                    .then(|| held.first().map(|w| (*w).clone()))
                    .flatten()
            });
            // Every notice of it kept back (silenced, a repeat, held): the history says so.
            let sent_now = batch
                .notifications
                .iter()
                .filter(|n| of_rule(&n.event_id, &n.rule))
                .count()
                > held.len() + kept.iter().filter(|(e, r, _)| of_rule(e, r)).count();
            let reason = reason.or_else(|| {
                (!sent_now)
                    .then(|| {
                        kept.iter()
                            .find(|(e, r, _)| of_rule(e, r))
                            .map(|(.., w)| w.clone())
                    })
                    .flatten()
            });
            sqlx::query("INSERT INTO history (tenant, event_id, rule, queued, created_at, reason) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(text(&event.tenant))
                .bind(text(&event.event_id))
                .bind(rule)
                .bind(queued)
                .bind(now)
                .bind(reason.as_deref().map(text))
                .execute(&mut **tx)
                .await
                .map_err(err("recording history"))?;
        }
    }
    Ok(committed)
}

/// Inserts `n` in `state` (held back by `held_by`), unless its key is already queued; whether
/// it was inserted. The one insert of the outbox, for notices of events and Herald's own.
pub(super) async fn insert_notice(
    tx: &mut Transaction<'_, Any>,
    n: &NewNotification,
    state: &str,
    held_by: Option<&str>,
    now: Millis,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO outbox (key, event_id, rule, channel, recipient, subject, message, state, created_at, next_attempt_at, summary, held_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11) ON CONFLICT (key) DO NOTHING",
    )
    .bind(&n.key)
    .bind(text(&n.event_id))
    .bind(&n.rule)
    .bind(&n.channel)
    .bind(text(&n.recipient))
    .bind(text(&n.subject))
    .bind(&n.message)
    .bind(state)
    .bind(now)
    .bind(n.summary.as_deref().map(text))
    .bind(held_by)
    .execute(&mut **tx)
    .await
    .map_err(err("queueing a notification"))?;
    Ok(done.rows_affected() == 1)
}

/// Why a notice of `action` to `recipient` is not queued: `holder` told them first. The one
/// wording, for the history and for the dry run.
pub fn told_already(recipient: &str, action: &str, holder: &str) -> String {
    let correlation = action.split('|').nth(1).unwrap_or_default();
    format!(
        "once per action: {recipient} was already told about correlation id {correlation} ({holder})"
    )
}

/// Claims `action` for `n`'s recipient and channel (table `actions_told`). `None` when `n` may
/// be queued: the claim is new, or already `n`'s own (its event read again); otherwise the key
/// of the notice that told the recipient first.
async fn action_told(
    tx: &mut Transaction<'_, Any>,
    action: &str,
    n: &NewNotification,
    now: Millis,
) -> Result<Option<String>, StoreError> {
    let recipient = n.recipient.to_lowercase();
    let claimed = sqlx::query(
        "INSERT INTO actions_told (action, channel, recipient, key, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(text(action))
    .bind(&n.channel)
    .bind(text(&recipient))
    .bind(&n.key)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(err("claiming an action"))?;
    if claimed.rows_affected() == 1 {
        return Ok(None);
    }
    let holder: Option<(String,)> = sqlx::query_as(
        "SELECT key FROM actions_told WHERE action = $1 AND channel = $2 AND recipient = $3",
    )
    .bind(text(action))
    .bind(&n.channel)
    .bind(text(&recipient))
    .fetch_optional(&mut **tx)
    .await
    .map_err(err("reading an action"))?;
    Ok(holder.map(|(key,)| key).filter(|key| *key != n.key))
}

/// Keeps one dead letter; `false` when the source already holds it.
async fn insert_dead_letter(
    tx: &mut Transaction<'_, Any>,
    source: &str,
    d: &NewDeadLetter,
    now: Millis,
) -> Result<bool, StoreError> {
    // Kept once per source and content (ARCHITECTURE.md §7): the same bytes failing the
    // same way again add no row; the first position is the one kept.
    let hash = content_hash(&d.raw);
    let known = sqlx::query(
        "SELECT 1 FROM dead_letters WHERE source = $1 AND raw_sha256 = $2 AND reason = $3 LIMIT 1",
    )
    .bind(source)
    .bind(&hash)
    .bind(text(&d.reason))
    .fetch_optional(&mut **tx)
    .await
    .map_err(err("reading dead letters"))?;
    if known.is_some() {
        return Ok(false);
    }
    sqlx::query("INSERT INTO dead_letters (source, input, position, reason, raw, created_at, raw_sha256) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(source)
            .bind(text(&d.input))
            .bind(text(&d.position))
            .bind(text(&d.reason))
            .bind(&d.raw)
            .bind(now)
            .bind(&hash)
            .execute(&mut **tx)
            .await
            .map_err(err("keeping a dead letter"))?;
    Ok(true)
}

async fn save_checkpoint(
    tx: &mut Transaction<'_, Any>,
    batch: &Batch,
    now: Millis,
) -> Result<(), StoreError> {
    if let Some((key, value)) = &batch.checkpoint {
        sqlx::query(
            "INSERT INTO checkpoints (source, key, value, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (source, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(&batch.source)
        .bind(key)
        .bind(value)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(err("saving the checkpoint"))?;
    }
    Ok(())
}
