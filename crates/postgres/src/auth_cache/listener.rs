//! The process's listener of [`CHANNEL`]: one connection taken out of the pool for
//! good, `LISTEN`ing; each announcement evicts what it names. While the connection is
//! quiet it is checked every few seconds (a connection that died without a word would
//! otherwise look quiet forever). When it breaks, the cache stops being used and is
//! emptied; the listener connects again (backing off up to [`RETRY_MAX`]) and, once it
//! listens, the cache is used again from empty.

use std::time::Duration;

use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use fluxolab_kernel::StorageError;
use futures_util::StreamExt;
use tokio::task::JoinHandle;

use super::{AuthCache, CHANNEL, Change, LISTENER_APPLICATION_NAME};
use crate::DbPool;
use crate::error::{StoreError, storage};
use crate::pool::pooled;

/// How long the connection may stay quiet before it is checked.
const QUIET_CHECK: Duration = Duration::from_secs(5);
/// How long that check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// The first wait before connecting again, doubled after each failure up to
/// [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(10);

impl AuthCache {
    /// Starts this process's listener on the current runtime; the cache is used from
    /// the moment it listens. The task runs until the runtime stops (or it is aborted).
    pub fn listen(&self, pool: DbPool) -> JoinHandle<()> {
        let cache = self.clone();
        tokio::spawn(async move {
            let mut retry = RETRY_FIRST;
            loop {
                let error = listen_until_broken(&pool, &cache, &mut retry).await;
                cache.listening_stopped();
                tracing::warn!(%error, "the auth cache's listener is not listening: every lookup reads the database until it listens again");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
            }
        })
    }
}

/// Listens and evicts until the connection fails; returns why.
async fn listen_until_broken(
    pool: &DbPool,
    cache: &AuthCache,
    retry: &mut Duration,
) -> StorageError {
    let mut connection = match pooled(pool).await {
        Ok(object) => Object::take(object),
        Err(error) => return error,
    };
    // Named, so that operators (and tests) tell it apart in `pg_stat_activity`; the
    // simple protocol: one round trip for both statements.
    if let Err(error) = connection
        .batch_execute(&format!(
            "SET application_name = '{LISTENER_APPLICATION_NAME}'; LISTEN {CHANNEL}"
        ))
        .await
    {
        return storage(error);
    }
    cache.listening_started();
    *retry = RETRY_FIRST;
    tracing::debug!("the auth cache's listener listens");
    loop {
        match next_announcement(&mut connection).await {
            Ok(Some(payload)) => cache.evict(&Change::parse(&payload)).await,
            Ok(None) => {}
            Err(error) => return error,
        }
    }
}

/// The next payload, or `None` after [`QUIET_CHECK`] of silence and a check that the
/// connection still answers. Announcements that come meanwhile wait in the connection's
/// queue.
async fn next_announcement(
    connection: &mut AsyncPgConnection,
) -> Result<Option<String>, StorageError> {
    let next = tokio::time::timeout(QUIET_CHECK, async {
        std::pin::pin!(connection.notifications_stream())
            .next()
            .await
    })
    .await;
    match next {
        Ok(Some(Ok(notification))) => Ok(Some(notification.payload)),
        Ok(Some(Err(error))) => Err(storage(error)),
        Ok(None) => Err(StorageError::unavailable(StoreError::ListenerEnded)),
        Err(_) => {
            // The simple protocol: one round trip, nothing prepared.
            match tokio::time::timeout(CHECK_TIMEOUT, connection.batch_execute("SELECT 1")).await {
                Ok(Ok(())) => Ok(None),
                Ok(Err(error)) => Err(storage(error)),
                Err(_) => Err(StorageError::unavailable(StoreError::ListenerUnresponsive)),
            }
        }
    }
}
