//! News of runs across processes (`fluxolab_workflows::responses::RunSignals`): an
//! announcement is a `NOTIFY fluxolab_run_news, '<execution id>'`, and waiters of this
//! process are woken directly as well (the short-cut when the run executes here).
//!
//! One connection per process, taken out of the pool for good, `LISTEN`s; a task reads
//! its notifications and wakes the subscriptions of the execution named. The listener
//! connects on the first subscription and the subscription is returned only once it
//! listens, so an announcement made after `subscribe` returns is never missed. When the
//! connection breaks, every subscription is woken (its waiter reads the execution again)
//! and the next subscription connects anew.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{ExecutionId, StorageError};
use fluxolab_workflows::responses::{RunSignals, Subscription};
use futures_util::StreamExt;
use tokio::sync::Notify;

use crate::DbPool;
use crate::error::storage;
use crate::pool::pooled;

/// The notification channel of run news.
const CHANNEL: &str = "fluxolab_run_news";

/// The subscriptions of this process, by execution.
type Waiters = Mutex<HashMap<ExecutionId, Vec<Weak<Notify>>>>;

/// Run news over `LISTEN`/`NOTIFY`; see the module documentation.
#[derive(Clone)]
pub struct PgRunSignals {
    pool: DbPool,
    waiters: Arc<Waiters>,
    /// Whether the listener task runs (connected and listening).
    listening: Arc<tokio::sync::Mutex<bool>>,
}

crate::repository::opaque_debug!(PgRunSignals);

impl PgRunSignals {
    pub fn new(pool: DbPool) -> Self {
        Self {
            pool,
            waiters: Arc::default(),
            listening: Arc::default(),
        }
    }

    /// Starts the listener unless it runs; returns once it listens.
    async fn listen(&self) -> Result<(), StorageError> {
        let mut listening = self.listening.lock().await;
        if *listening {
            return Ok(());
        }
        let object = pooled(&self.pool).await?;
        let mut connection = diesel_async::pooled_connection::deadpool::Object::take(object);
        // Raw: LISTEN is a utility statement, outside the query builder.
        diesel::sql_query(format!("LISTEN {CHANNEL}"))
            .execute(&mut connection)
            .await
            .map_err(storage)?;
        *listening = true;
        let waiters = self.waiters.clone();
        let flag = self.listening.clone();
        tokio::spawn(async move {
            {
                let mut stream = std::pin::pin!(connection.notifications_stream());
                while let Some(Ok(notification)) = stream.next().await {
                    if let Ok(id) = notification.payload.parse::<uuid::Uuid>() {
                        wake(&waiters, Some(ExecutionId::from_uuid(id)));
                    }
                }
            }
            tracing::warn!("the run-news listener lost its connection; it reconnects on demand");
            *flag.lock().await = false;
            // Whatever was announced meanwhile is read again by its waiter.
            wake(&waiters, None);
        });
        Ok(())
    }
}

/// Wakes the subscriptions of `execution` (of every execution: `None`), dropping the
/// entries of subscriptions that are gone.
fn wake(waiters: &Waiters, execution: Option<ExecutionId>) {
    let Ok(mut waiters) = waiters.lock() else {
        return;
    };
    let mut notify = |subscriptions: &mut Vec<Weak<Notify>>| {
        subscriptions.retain(|subscription| match subscription.upgrade() {
            Some(notify) => {
                notify.notify_one();
                true
            }
            None => false,
        });
    };
    match execution {
        Some(execution) => {
            if let Some(subscriptions) = waiters.get_mut(&execution) {
                notify(subscriptions);
                if subscriptions.is_empty() {
                    waiters.remove(&execution);
                }
            }
        }
        None => {
            waiters.values_mut().for_each(&mut notify);
            waiters.retain(|_, subscriptions| !subscriptions.is_empty());
        }
    }
}

#[async_trait]
impl RunSignals for PgRunSignals {
    #[tracing::instrument(name = "db.signals.announce", level = "debug", skip_all)]
    async fn announce(&self, execution: ExecutionId) -> Result<(), StorageError> {
        wake(&self.waiters, Some(execution));
        let mut connection = pooled(&self.pool).await?;
        // Raw: `pg_notify` is a bare function call, without a table.
        diesel::sql_query(format!("SELECT pg_notify('{CHANNEL}', $1)"))
            .bind::<Text, _>(execution.to_string())
            .execute(&mut connection)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.signals.subscribe", level = "debug", skip_all)]
    async fn subscribe(
        &self,
        execution: ExecutionId,
    ) -> Result<Box<dyn Subscription>, StorageError> {
        // Listening first: whatever is announced after the entry below exists reaches
        // it, and the caller reads the execution only after this returns.
        self.listen().await?;
        let notify = Arc::new(Notify::new());
        if let Ok(mut waiters) = self.waiters.lock() {
            waiters
                .entry(execution)
                .or_default()
                .push(Arc::downgrade(&notify));
        }
        Ok(Box::new(PgSubscription {
            notify,
            execution,
            waiters: self.waiters.clone(),
        }))
    }
}

/// One waiter's subscription; dropped, it leaves the table.
struct PgSubscription {
    notify: Arc<Notify>,
    execution: ExecutionId,
    waiters: Arc<Waiters>,
}

#[async_trait]
impl Subscription for PgSubscription {
    async fn next(&mut self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.notify.notified())
            .await
            .is_ok()
    }
}

impl Drop for PgSubscription {
    fn drop(&mut self) {
        let Ok(mut waiters) = self.waiters.lock() else {
            return;
        };
        if let Some(subscriptions) = waiters.get_mut(&self.execution) {
            subscriptions.retain(|subscription| {
                subscription
                    .upgrade()
                    .is_some_and(|notify| !Arc::ptr_eq(&notify, &self.notify))
            });
            if subscriptions.is_empty() {
                waiters.remove(&self.execution);
            }
        }
    }
}
