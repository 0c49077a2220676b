//! Runs an existing engine publishes (seed 002's or seed 003's own
//! messages), whichever way they arrive: the producer endpoints
//! (`POST /api/v1/backtest/events`, `POST /api/ws/stream/backtest/{id}/events`)
//! or, in a fleet, the Redis ingest channels `backtest_events` and
//! `backtest_stream_events`. Every message is checked first (a malformed
//! one refuses the whole request, nothing published); then each is applied
//! to its run's lifecycle in the registry, in order, and the accepted ones
//! are published in one batch. A refused step stops there: the messages
//! before it are published, none after it.

use serde_json::{Map, Value};

use std::collections::HashMap;

use super::registry::Backtests;
use super::request::Origin;
use super::run::RunStatus;
use crate::bus::BusError;
use crate::catalog::RoomName;
use crate::protocol::{Envelope, Event, Neutral, NeutralError};

/// Most messages one request (or one ingest message) may carry.
pub const MAX_MESSAGES: usize = 1_000;

/// Seed 002's message types.
const SEED002_TYPES: [&str; 5] = [
    "backtest_start",
    "backtest_progress",
    "log_entry",
    "backtest_complete",
    "backtest_error",
];

/// Seed 003's message types.
const SEED003_TYPES: [&str; 6] = [
    "progress", "trade", "equity", "metrics", "complete", "error",
];

/// What an external producer's event does to its run.
#[derive(Debug, Clone, PartialEq)]
pub enum ProducedStep {
    /// Seed 002's `backtest_start`: registers the run.
    Start,
    /// Any event before the end; a progress must not go back.
    Event {
        /// The event's progress, if it is a progress event.
        progress: Option<f64>,
    },
    /// The terminal event: completed (with seed 002's result data, if any)
    /// or failed.
    End {
        /// Whether the run completed.
        completed: bool,
        /// The terminal event's data.
        data: Value,
    },
}

/// Why an external producer's event was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProducerError {
    /// `backtest_start` for an id already registered: 409.
    #[error("backtest_id already exists")]
    Duplicate,
    /// An event of a seed 002 run before its `backtest_start`: 409.
    #[error("backtest_start must come first: no run has this backtest_id")]
    NotStarted,
    /// An event after the run's terminal event: 409.
    #[error("the backtest has already ended: nothing may follow its terminal event")]
    Finished,
    /// The id belongs to a run roomcast executes itself: 409.
    #[error("backtest_id belongs to a run this server executes")]
    NotExternal,
    /// The run takes the other seed's messages: 409.
    #[error("backtest_id belongs to a run of the other seed's messages")]
    OtherSeed,
    /// A progress below the run's last: 422.
    #[error("progress {got} is below the run's last progress {last}")]
    Backwards {
        /// The run's last progress.
        last: f64,
        /// The refused one.
        got: f64,
    },
    /// Too many unfinished runs: 503.
    #[error("backtest queue full")]
    Full,
    /// The fleet registry (Redis) did not answer: 503.
    #[error("backtest registry unavailable: {0}")]
    Unavailable(String),
}

/// Where an external engine's messages go.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A seed 002 topic (`topic:<name>`); each message names its run in
    /// `data.backtest_id`.
    Topic(RoomName),
    /// One seed 003 run's stream (`backtest:<id>`).
    Run(String),
}

impl Target {
    fn origin(&self) -> Origin {
        match self {
            Target::Topic(_) => Origin::Seed002,
            Target::Run(_) => Origin::Seed003,
        }
    }
}

/// A malformed message: which (`[index].field`) and why (422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MessageError {
    /// `[index].field`, or `(body)` for the request as a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn bad(index: usize, field: &str, message: impl Into<String>) -> MessageError {
    MessageError {
        field: format!("[{index}].{field}"),
        message: message.into(),
    }
}

/// Why an external engine's messages were not (all) published.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    /// A malformed message: nothing was published (422).
    #[error("{0}")]
    Message(MessageError),
    /// Message `index` was refused by its run's lifecycle; the `published`
    /// ones before it went out.
    #[error("{error}")]
    Refused {
        /// The refused message.
        index: usize,
        /// Messages published before it.
        published: usize,
        /// Why.
        error: ProducerError,
    },
    /// The bus failed: nothing of the accepted messages was published (503).
    #[error("{0}")]
    Bus(BusError),
}

/// What went out.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// The room, when anything was published.
    pub room: Option<RoomName>,
    /// The last event's `seq`.
    pub seq: u64,
    /// Members (embedded) or nodes (fleet) it reached.
    pub recipients: usize,
    /// Messages published.
    pub count: usize,
}

/// A body's messages: one object or an array of 1–[`MAX_MESSAGES`].
pub fn messages(value: Value) -> Result<Vec<Value>, MessageError> {
    let messages = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => {
            return Err(MessageError {
                field: "(body)".into(),
                message: "expected a message object or an array of them".into(),
            });
        }
    };
    if messages.is_empty() || messages.len() > MAX_MESSAGES {
        return Err(MessageError {
            field: "(body)".into(),
            message: format!(
                "expected 1 to {MAX_MESSAGES} messages, got {}",
                messages.len()
            ),
        });
    }
    Ok(messages)
}

/// One checked message.
struct Produced {
    /// The run it belongs to.
    id: String,
    /// What it does to the run's lifecycle.
    step: ProducedStep,
    /// What is published.
    event: Event,
}

/// A run's lifecycle as an external engine's messages see it: advanced
/// message by message before anything is published or recorded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lifecycle {
    /// Whether the registry knows the run (or a message before registered it).
    pub registered: bool,
    /// Whether an external engine publishes it (not a driver here).
    pub external: bool,
    /// Which seed's messages it takes.
    pub origin: Option<Origin>,
    /// Where it stands.
    pub status: RunStatus,
    /// Its last progress.
    pub progress: f64,
    /// Its completion's data.
    pub result: Option<Value>,
    /// Its failure's data.
    pub error: Option<Value>,
}

impl Lifecycle {
    /// Applies one message's `step` (of an `origin` engine; with
    /// `registers`, a first event registers the run), or says why not.
    fn advance(
        &mut self,
        step: &ProducedStep,
        origin: Origin,
        registers: bool,
    ) -> Result<(), ProducerError> {
        if !self.registered {
            if *step != ProducedStep::Start && !registers {
                return Err(ProducerError::NotStarted);
            }
            *self = Lifecycle {
                registered: true,
                external: true,
                origin: Some(origin),
                status: RunStatus::Running,
                ..Lifecycle::default()
            };
            if *step == ProducedStep::Start {
                return Ok(());
            }
        } else if *step == ProducedStep::Start {
            return Err(ProducerError::Duplicate);
        } else if !self.external {
            return Err(ProducerError::NotExternal);
        } else if self.origin != Some(origin) {
            return Err(ProducerError::OtherSeed);
        }
        if self.status.is_terminal() {
            return Err(ProducerError::Finished);
        }
        match step {
            ProducedStep::Start | ProducedStep::Event { progress: None } => {}
            ProducedStep::Event { progress: Some(p) } if *p < self.progress => {
                return Err(ProducerError::Backwards {
                    last: self.progress,
                    got: *p,
                });
            }
            ProducedStep::Event { progress: Some(p) } => self.progress = *p,
            ProducedStep::End {
                completed: true,
                data,
            } => {
                self.status = RunStatus::Completed;
                self.progress = 100.0;
                self.result = Some(data.clone());
            }
            ProducedStep::End {
                completed: false,
                data,
            } => {
                self.status = RunStatus::Failed;
                self.error = Some(data.clone());
            }
        }
        Ok(())
    }
}

impl Backtests {
    /// Publishes an external engine's `messages` to `target` (see the
    /// module docs). One request at a time on this node, so two requests
    /// for one run cannot interleave, and nothing is recorded unless it was
    /// published: a request the bus failed can be sent again as it was.
    pub async fn publish_external(
        &self,
        target: &Target,
        messages: Vec<Value>,
    ) -> Result<Published, ExternalError> {
        let now = crate::protocol::time::now();
        let mut checked = Vec::with_capacity(messages.len());
        for (index, message) in messages.into_iter().enumerate() {
            let produced = match target {
                Target::Topic(room) => check_seed002(index, message, room, &now),
                Target::Run(id) => check_seed003(index, message, id, &now),
            };
            checked.push(produced.map_err(ExternalError::Message)?);
        }
        let _one_at_a_time = self.external_lock().lock().await;
        let (origin, registers) = (target.origin(), matches!(target, Target::Run(_)));

        // Each message's step against its run's lifecycle, in order; the
        // first refused one ends the request there.
        let mut lives: HashMap<String, Lifecycle> = HashMap::new();
        let mut new_runs: Vec<String> = Vec::new();
        let mut refused = None;
        let mut accepted = 0;
        for (index, c) in checked.iter().enumerate() {
            let life = lives
                .entry(c.id.clone())
                .or_insert_with(|| self.lifecycle_of(&c.id));
            let mut next = life.clone();
            let was_registered = next.registered;
            let mut step = next.advance(&c.step, origin, registers);
            if step.is_ok() && !was_registered {
                step = self.admit(&c.id, origin, target, new_runs.len()).await;
                if step.is_ok() {
                    new_runs.push(c.id.clone());
                }
            }
            match step {
                Ok(()) => {
                    *life = next;
                    accepted = index + 1;
                }
                Err(error) => {
                    refused = Some((index, error));
                    break;
                }
            }
        }
        let events: Vec<Event> = checked[..accepted]
            .iter()
            .map(|c| c.event.clone())
            .collect();
        let published = match self.publish_events(&events).await {
            Ok(published) => published,
            Err(e) => {
                self.release_claims(&new_runs).await;
                return Err(e);
            }
        };
        // Recorded once out, each run at its last accepted message.
        let mut recorded = std::collections::HashSet::new();
        for c in &checked[..accepted] {
            if recorded.insert(c.id.as_str()) {
                self.commit_external(&c.id, origin, &lives[&c.id]).await;
            }
        }
        match refused {
            None => Ok(published),
            Some((index, error)) => Err(ExternalError::Refused {
                index,
                published: published.count,
                error,
            }),
        }
    }

    /// Admits a new external run: within the node's cap (counting the
    /// `pending` ones this request registers) and claimed fleet-wide.
    async fn admit(
        &self,
        id: &str,
        origin: Origin,
        target: &Target,
        pending: usize,
    ) -> Result<(), ProducerError> {
        if self.active() + pending >= self.capacity() {
            return Err(ProducerError::Full);
        }
        let ends = match target {
            Target::Topic(room) => vec![room.clone()],
            Target::Run(_) => RoomName::backtest(id).into_iter().collect(),
        };
        match self.claim_external(id, origin, &ends).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(ProducerError::Duplicate),
            Err(e) => Err(ProducerError::Unavailable(e)),
        }
    }

    async fn publish_events(&self, events: &[Event]) -> Result<Published, ExternalError> {
        let Some(first) = events.first() else {
            return Ok(Published {
                room: None,
                seq: 0,
                recipients: 0,
                count: 0,
            });
        };
        let report = self
            .publisher()
            .publish_batch(events)
            .await
            .map_err(ExternalError::Bus)?;
        Ok(Published {
            room: Some(first.room()),
            seq: report.seq,
            recipients: report.recipients,
            count: events.len(),
        })
    }
}

/// Message `index`'s `type`, one of `types`.
fn type_of<'a>(index: usize, message: &'a Value, types: &[&str]) -> Result<&'a str, MessageError> {
    message
        .get("type")
        .and_then(Value::as_str)
        .filter(|k| types.contains(k))
        .ok_or_else(|| {
            bad(
                index,
                "type",
                format!("expected one of {}", types.join(", ")),
            )
        })
}

/// `data.progress`: a number in [0, 100].
fn progress_of(index: usize, data: &Map<String, Value>) -> Result<f64, MessageError> {
    data.get("progress")
        .and_then(Value::as_f64)
        .filter(|p| (0.0..=100.0).contains(p))
        .ok_or_else(|| bad(index, "data.progress", "expected a number in [0, 100]"))
}

/// The lifecycle step of a message of `kind` with `data`.
fn step_of(
    index: usize,
    kind: &str,
    data: &Map<String, Value>,
    [start, progress, complete, error]: [&str; 4],
) -> Result<ProducedStep, MessageError> {
    Ok(match kind {
        k if k == start => ProducedStep::Start,
        k if k == progress => ProducedStep::Event {
            progress: Some(progress_of(index, data)?),
        },
        k if k == complete || k == error => ProducedStep::End {
            completed: k == complete,
            data: Value::Object(data.clone()),
        },
        _ => ProducedStep::Event { progress: None },
    })
}

/// A seed 002 message (`{"type","data":{…,"backtest_id"}}`) for `room`; a
/// missing `data.timestamp` is `now`.
fn check_seed002(
    index: usize,
    mut message: Value,
    room: &RoomName,
    now: &str,
) -> Result<Produced, MessageError> {
    let kind = type_of(index, &message, &SEED002_TYPES)?.to_string();
    let data = message
        .get_mut("data")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| bad(index, "data", "expected an object"))?;
    let id = data
        .get("backtest_id")
        .and_then(Value::as_str)
        .filter(|id| RoomName::backtest(id).is_ok())
        .ok_or_else(|| {
            bad(
                index,
                "data.backtest_id",
                "expected 1-128 characters of letters, digits, '_', '.', ':' or '-'",
            )
        })?
        .to_string();
    match data.get("timestamp") {
        None => {
            data.insert("timestamp".into(), Value::String(now.to_string()));
        }
        Some(Value::String(_)) => {}
        Some(_) => return Err(bad(index, "data.timestamp", "expected a string")),
    }
    let step = step_of(
        index,
        &kind,
        data,
        [
            "backtest_start",
            "backtest_progress",
            "backtest_complete",
            "backtest_error",
        ],
    )?;
    let json = serde_json::to_vec(&message).expect("a JSON value serialises");
    let event = Neutral::parse(room.clone(), &json, Envelope::Data, now)
        .map_err(|e| bad(index, "data", e.to_string()))?;
    Ok(Produced {
        id,
        step,
        event: Event::Neutral(event),
    })
}

/// A seed 003 message (`{"type","timestamp"?,"data"}`) of run `id`; one
/// without a timestamp is stamped `now`.
fn check_seed003(
    index: usize,
    message: Value,
    id: &str,
    now: &str,
) -> Result<Produced, MessageError> {
    let room = RoomName::backtest(id).map_err(|e| MessageError {
        field: "backtest_id".into(),
        message: e.to_string(),
    })?;
    let kind = type_of(index, &message, &SEED003_TYPES)?;
    let data = message
        .get("data")
        .and_then(Value::as_object)
        .ok_or_else(|| bad(index, "data", "expected an object"))?;
    // Seed 003 has no start event: its first event registers the run.
    let step = step_of(index, kind, data, ["", "progress", "complete", "error"])?;
    let json = serde_json::to_vec(&message).expect("a JSON value serialises");
    let event = Neutral::parse(room, &json, Envelope::Stamped, now).map_err(|e| {
        let field = match e {
            NeutralError::BadTimestamp => "timestamp",
            _ => "data",
        };
        bad(index, field, e.to_string())
    })?;
    Ok(Produced {
        id: id.to_string(),
        step,
        event: Event::Neutral(event),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_checked_naming_the_index_and_field() {
        let room = RoomName::topic("backtest").unwrap();
        let now = "2026-01-01T00:00:00.000Z";
        let e = check_seed002(2, serde_json::json!({"type":"nope","data":{}}), &room, now)
            .err()
            .unwrap();
        assert_eq!(e.field, "[2].type");
        let e = check_seed002(
            0,
            serde_json::json!({"type":"log_entry","data":{"backtest_id":"a/b"}}),
            &room,
            now,
        )
        .err()
        .unwrap();
        assert_eq!(e.field, "[0].data.backtest_id");
        let ok = check_seed002(
            0,
            serde_json::json!({"type":"log_entry","data":{"backtest_id":"r"}}),
            &room,
            now,
        )
        .unwrap();
        let Event::Neutral(n) = ok.event else {
            panic!()
        };
        assert_eq!(
            n.data().as_ref(),
            br#"{"backtest_id":"r","timestamp":"2026-01-01T00:00:00.000Z"}"#
        );
        let e = check_seed003(
            1,
            serde_json::json!({"type":"progress","data":{"progress":101}}),
            "r",
            now,
        )
        .err()
        .unwrap();
        assert_eq!(e.field, "[1].data.progress");
        let e = check_seed003(
            0,
            serde_json::json!({"type":"equity","timestamp":"soon","data":{}}),
            "r",
            now,
        )
        .err()
        .unwrap();
        assert_eq!(e.field, "[0].timestamp");
        assert!(messages(serde_json::json!([])).is_err());
        assert!(messages(serde_json::json!("x")).is_err());
        assert_eq!(messages(serde_json::json!({"type":"x"})).unwrap().len(), 1);
    }
}
