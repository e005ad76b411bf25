//! Waiting between attempts, and giving up only when shutdown is asked for.
//!
//! The notifier starts before its database or broker as often as after them
//! (containers, restarts); rather than crash-looping it waits, doubling the
//! delay up to a ceiling, and an operator's SIGTERM still ends it at once.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// An exponential delay between attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// The first delay, and the delay after a success.
    initial: Duration,
    /// The longest delay.
    max: Duration,
    /// The delay the next [`Backoff::wait`] sleeps.
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay the next wait will sleep.
    pub fn next_delay(&self) -> Duration {
        self.next
    }

    /// Sleeps the current delay and doubles it. Answers `false`, at once, when
    /// `shutdown` fires first.
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }

    /// Back to the first delay, after something worked.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// Runs `attempt` until it succeeds, logging each failure; `None` when
/// shutdown was asked for first. An attempt already running is not cut short:
/// each one is bounded by its own timeouts.
pub async fn until_ok<T, F, Fut>(
    what: &str,
    shutdown: &CancellationToken,
    mut attempt: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        if shutdown.is_cancelled() {
            return None;
        }
        match attempt().await {
            Ok(value) => return Some(value),
            Err(err) => {
                tracing::warn!(
                    error = format!("{err:#}"),
                    retry_in_ms = backoff.next_delay().as_millis() as u64,
                    "{what} failed; retrying"
                );
                if !backoff.wait(shutdown).await {
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_delay_doubles_up_to_its_ceiling_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(3));
        let shutdown = CancellationToken::new();
        assert!(backoff.wait(&shutdown).await);
        assert_eq!(backoff.next_delay(), Duration::from_millis(2));
        assert!(backoff.wait(&shutdown).await);
        assert_eq!(backoff.next_delay(), Duration::from_millis(3));
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(1));
    }

    #[tokio::test]
    async fn a_shutdown_ends_the_wait_at_once() {
        let mut backoff = Backoff::new(Duration::from_secs(3600), Duration::from_secs(3600));
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        assert!(!backoff.wait(&shutdown).await);
        let gave_up =
            until_ok::<(), _, _>("nothing", &shutdown, || async { anyhow::bail!("never") }).await;
        assert!(gave_up.is_none());
    }
}
