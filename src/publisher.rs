//! The publish pipeline every producer uses, as a narrow handle: HTTP
//! publish endpoints, the built-in sources and the seed 001 Redis ingest get
//! a [`Publisher`] (cheap to clone), never the whole node. A publish goes
//! through the [`Bus`]; a price then fires the price alerts it crosses,
//! whatever its origin, and their triggers follow it into `alerts`. The
//! publisher also answers the leadership questions producers ask (which
//! node runs the simulator, the ingest, a modeldata feed).

use std::sync::Arc;
use std::time::Duration;

use crate::alerts::Alerts;
use crate::bus::{Bus, BusError, Producer};
use crate::catalog::RoomName;
use crate::protocol::{Event, MarketEvent};
use crate::rooms::PublishReport;
use crate::sources::trading::quotes::QuoteBook;

/// A handle on the node's publish pipeline.
#[derive(Debug, Clone)]
pub struct Publisher {
    /// Where events go (in-process, or Redis).
    bus: Arc<Bus>,
    /// The price alerts checked on every price.
    alerts: Arc<Alerts>,
    /// Every price's latest quote, for seed 004's batches and paper account.
    quotes: Arc<QuoteBook>,
}

impl Publisher {
    /// A publisher over `bus`, checking `alerts` on every price and
    /// recording it in `quotes`.
    pub fn new(bus: Arc<Bus>, alerts: Arc<Alerts>, quotes: Arc<QuoteBook>) -> Self {
        Publisher {
            bus,
            alerts,
            quotes,
        }
    }

    /// A publisher of its own: an in-process bus over empty rooms, an alert
    /// book of `max_alerts`, one user may hold all (for tests and benches of
    /// producers).
    pub fn local(max_alerts: usize) -> Self {
        let rooms = Arc::new(crate::rooms::Rooms::new(
            &crate::rooms::limits::RoomLimits::new(100, 1_000),
        ));
        Publisher::new(
            Arc::new(Bus::local(rooms)),
            Arc::new(Alerts::Local(crate::alerts::AlertBook::new(
                max_alerts, max_alerts,
            ))),
            Arc::new(QuoteBook::new()),
        )
    }

    /// The price alerts (for the alert endpoints).
    pub fn alerts(&self) -> &Alerts {
        &self.alerts
    }

    /// Whether events go through Redis to a fleet.
    pub fn is_fleet(&self) -> bool {
        self.bus.is_fleet()
    }

    /// Whether this node may run `producer` now (always, embedded).
    pub fn holds(&self, producer: Producer) -> bool {
        self.bus.holds(producer)
    }

    /// Whether this node leads the producer of `room` (see [`Bus::lead`]).
    pub async fn lead(&self, room: &RoomName, ttl: Duration) -> bool {
        self.bus.lead(room, ttl).await
    }

    /// Gives up leading `room`.
    pub async fn resign(&self, room: &RoomName) {
        self.bus.resign(room).await
    }

    /// The latest quotes of the prices published through this node.
    pub fn quotes(&self) -> &Arc<QuoteBook> {
        &self.quotes
    }

    /// Publishes an event; a price update then records its quote and fires the alerts it crosses,
    /// whose triggers are published to the `alerts` room together, right
    /// after the price. An error means nothing was published. Once the price
    /// is out, the outcome says what became of its alerts: triggers that
    /// could not be published (Redis failing in between) are not lost, their
    /// alerts are armed again and fire on the next crossing price.
    pub async fn publish(&self, event: Event) -> Result<PublishOutcome, BusError> {
        let report = self.bus.publish(&event).await?;
        let Event::Market(MarketEvent::PriceUpdate(price)) = &event else {
            return Ok(PublishOutcome {
                report,
                alerts: None,
            });
        };
        self.quotes.record(price);
        let fired = match self.alerts.on_price(&price.ticker, price.price).await {
            Ok(fired) if fired.is_empty() => {
                return Ok(PublishOutcome {
                    report,
                    alerts: None,
                });
            }
            Ok(fired) => fired,
            Err(e) => {
                // Nothing fired: the alerts stay armed for the next price.
                tracing::warn!(ticker = %price.ticker, error = %e, "price alerts not checked");
                return Ok(PublishOutcome {
                    report,
                    alerts: Some(AlertsFired {
                        fired: 0,
                        published: 0,
                        rearmed: 0,
                        error: Some(format!("alerts not checked: {e}")),
                    }),
                });
            }
        };
        let triggers: Vec<Event> = fired
            .iter()
            .map(|f| Event::from(f.trigger.clone()))
            .collect();
        let (published, result) = self.bus.publish_batch(&triggers).await;
        let rearmed = fired.len() - published;
        let error = result.err().map(|e| {
            tracing::warn!(ticker = %price.ticker, published, rearmed, error = %e, "alert triggers not published; their alerts are armed again");
            e.to_string()
        });
        let unpublished: Vec<_> = fired.into_iter().skip(published).map(|f| f.alert).collect();
        if let Err(e) = self.alerts.restore(unpublished).await {
            tracing::error!(ticker = %price.ticker, rearmed, error = %e, "fired alerts could not be armed again");
        }
        Ok(PublishOutcome {
            report,
            alerts: Some(AlertsFired {
                fired: published + rearmed,
                published,
                rearmed,
                error,
            }),
        })
    }
}

impl Publisher {
    /// Publishes events of one room together, in order (a backtest chunk):
    /// all of them or an error. No price alerts are checked (use
    /// [`Publisher::publish`] for prices).
    pub async fn publish_batch(&self, events: &[Event]) -> Result<PublishReport, BusError> {
        let (_, result) = self.bus.publish_batch(events).await;
        result
    }
}

/// What [`Publisher::publish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    /// The event's publish.
    pub report: PublishReport,
    /// For a price that fired alerts: what became of them.
    pub alerts: Option<AlertsFired>,
}

/// The alerts one price fired.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AlertsFired {
    /// Alerts the price crossed.
    pub fired: usize,
    /// Triggers published to the `alerts` room.
    pub published: usize,
    /// Alerts whose trigger could not be published, armed again.
    pub rearmed: usize,
    /// Why publishing stopped, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
