//! Claims partitions, starts a worker for each one this replica owns, and
//! hands partitions back when their worker stops or the lease connection dies.
//!
//! A replica owns at most its fair share of the partitions (see `share`),
//! worked out every claim round from the number of live replicas: when one
//! joins, the others stop their surplus workers, which finish and ack the
//! batch in hand before their locks are released for the newcomer to claim;
//! when one leaves, the share grows and the others claim what it held.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::stream::Stream;
use orderflow_core::metric_names;
use orderflow_core::naming::Naming;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::consumer;
use crate::lease::{self, LeaseConnection};
use crate::share;
use crate::worker::{Worker, WorkerError};

/// How often the coordinator looks for free partitions and checks its lease
/// connection; a dead replica's partitions are taken over within about this.
pub const CLAIM_INTERVAL: Duration = Duration::from_millis(500);

/// The partitions this replica owns right now, readable from outside.
pub type OwnedPartitions = Arc<Mutex<BTreeSet<u16>>>;

pub struct Coordinator {
    pub database_url: String,
    pub pool: PgPool,
    pub naming: Naming,
    pub orders: Stream,
    /// Publishes dead letters.
    pub js: async_nats::jetstream::Context,
    pub partitions: u16,
    pub batch_max: usize,
    pub batch_linger: Duration,
    /// Identifies this replica in `partition_leases.holder`.
    pub holder: String,
    pub relay_wakeup: Arc<Notify>,
    pub owned: OwnedPartitions,
}

struct Running {
    stop: CancellationToken,
    task: JoinHandle<Result<(), WorkerError>>,
}

impl Coordinator {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut lease: Option<LeaseConnection> = None;
        let mut workers: HashMap<u16, Running> = HashMap::new();
        let mut tick = tokio::time::interval(CLAIM_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            self.reap(&mut workers, &mut lease).await;
            let alive = match lease.as_mut() {
                Some(conn) => conn.is_alive().await,
                None => false,
            };
            if !alive {
                if lease.take().is_some() {
                    warn!("lease connection lost; stopping every worker of this replica");
                    self.stop_all(&mut workers).await;
                }
                match LeaseConnection::open(&self.database_url, &self.holder).await {
                    Ok(conn) => lease = Some(conn),
                    Err(err) => {
                        warn!(
                            err = format!("{err:#}"),
                            "cannot open the lease connection yet"
                        );
                        continue;
                    }
                }
            }
            let conn = lease.as_mut().expect("opened above");
            let replicas = match conn.live_replicas().await {
                Ok(replicas) => replicas,
                Err(err) => {
                    warn!(err = format!("{err:#}"), "cannot count the live replicas");
                    continue;
                }
            };
            metrics::gauge!(metric_names::PROCESSOR_REPLICAS).set(replicas as f64);
            let share = share::fair_share(self.partitions, replicas);
            self.stop_surplus(&workers, share, replicas);
            self.claim(conn, &mut workers, share, &shutdown).await;
        }
        // Shutdown: each worker finishes the batch in hand, then stops.
        self.stop_all(&mut workers).await;
        drop(lease);
    }

    /// Claims free partitions, lowest first, while this replica holds fewer
    /// locks than its share. Locks of workers still finishing their last
    /// batch count: they are not free for anyone yet.
    async fn claim(
        &self,
        conn: &mut LeaseConnection,
        workers: &mut HashMap<u16, Running>,
        share: usize,
        shutdown: &CancellationToken,
    ) {
        for partition in 0..self.partitions {
            if workers.len() >= share || shutdown.is_cancelled() {
                break;
            }
            if workers.contains_key(&partition) {
                continue;
            }
            match conn.try_acquire(partition).await {
                Ok(true) => match self.start_worker(partition, shutdown).await {
                    Ok(running) => {
                        workers.insert(partition, running);
                        self.set_owned(partition, true);
                    }
                    Err(err) => {
                        warn!(
                            partition,
                            err = format!("{err:#}"),
                            "could not start the worker"
                        );
                        let _ = conn.release(partition).await;
                    }
                },
                Ok(false) => {}
                Err(err) => {
                    warn!(err = format!("{err:#}"), "partition claim failed");
                    break;
                }
            }
        }
    }

    /// Stops the workers above this replica's share so that a replica that
    /// joined finds their partitions free. Each finishes and acks its batch
    /// in hand; `reap` releases the lock once it has. Workers already
    /// stopping no longer count against the share.
    fn stop_surplus(&self, workers: &HashMap<u16, Running>, share: usize, replicas: usize) {
        let active: BTreeSet<u16> = workers
            .iter()
            .filter(|(_, running)| !running.stop.is_cancelled())
            .map(|(partition, _)| *partition)
            .collect();
        for partition in share::surplus(&active, share) {
            info!(
                partition,
                replicas, share, "releasing partition to rebalance"
            );
            workers[&partition].stop.cancel();
        }
    }

    async fn start_worker(
        &self,
        partition: u16,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Running> {
        let epoch = lease::bump_epoch(&self.pool, partition, &self.holder).await?;
        let max_ack_pending = (self.batch_max * 8) as i64;
        let messages =
            consumer::take_over(&self.orders, &self.naming, partition, max_ack_pending).await?;
        info!(partition, epoch, holder = %self.holder, "took over partition");
        let worker = Worker {
            partition,
            epoch,
            pool: self.pool.clone(),
            naming: self.naming.clone(),
            js: self.js.clone(),
            batch_max: self.batch_max,
            batch_linger: self.batch_linger,
            relay_wakeup: self.relay_wakeup.clone(),
        };
        let stop = shutdown.child_token();
        let task = tokio::spawn(worker.run(messages, stop.clone()));
        Ok(Running { stop, task })
    }

    /// Collects workers that stopped by themselves and frees their partitions
    /// for the next claim round (here or on another replica).
    async fn reap(&self, workers: &mut HashMap<u16, Running>, lease: &mut Option<LeaseConnection>) {
        let finished: Vec<u16> = workers
            .iter()
            .filter(|(_, running)| running.task.is_finished())
            .map(|(partition, _)| *partition)
            .collect();
        for partition in finished {
            let running = workers.remove(&partition).expect("listed above");
            match running.task.await {
                Ok(Ok(())) => info!(partition, "worker stopped"),
                Ok(Err(err)) => warn!(partition, %err, "worker stopped"),
                Err(err) => warn!(partition, %err, "worker panicked"),
            }
            self.set_owned(partition, false);
            if let Some(conn) = lease.as_mut() {
                let _ = conn.release(partition).await;
            }
        }
    }

    async fn stop_all(&self, workers: &mut HashMap<u16, Running>) {
        for running in workers.values() {
            running.stop.cancel();
        }
        for (partition, running) in workers.drain() {
            match running.task.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => warn!(partition, %err, "worker stopped"),
                Err(err) => warn!(partition, %err, "worker panicked"),
            }
            self.set_owned(partition, false);
        }
    }

    fn set_owned(&self, partition: u16, owned: bool) {
        let mut set = self.owned.lock().expect("owned partitions lock");
        if owned {
            set.insert(partition);
        } else {
            set.remove(&partition);
        }
        metrics::gauge!(metric_names::PARTITION_OWNED, "partition" => partition.to_string())
            .set(if owned { 1.0 } else { 0.0 });
    }
}
