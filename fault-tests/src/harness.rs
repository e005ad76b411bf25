//! The whole stack over a private PostgreSQL and nats-server, each service
//! reaching each of them through a [`Proxy`] of its own.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::Context;
use stack_tests::{Service, Stack, StackOptions};
use testkit::{database_url_for, TestDatabase, TestNamespace};

use crate::proxy::{Mode, Proxy};
use crate::servers::{PrivateNats, PrivatePostgres};

/// What a service depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dependency {
    Postgres,
    Nats,
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dependency::Postgres => "postgres",
            Dependency::Nats => "nats",
        })
    }
}

/// A link from a service to a dependency, through its proxy.
pub type Link = (Service, Dependency);

/// The stack, its servers and the proxies in between. Fields drop in order:
/// the services first, then the proxies, then the servers.
pub struct FaultStack {
    pub stack: Stack,
    proxies: BTreeMap<Link, Proxy>,
    pub postgres: PrivatePostgres,
    /// The nats-server, or the first node of a cluster.
    pub nats: PrivateNats,
    /// The other nodes of a cluster ([`FaultStack::start_clustered`]).
    pub nats_peers: Vec<PrivateNats>,
}

impl FaultStack {
    /// Starts both servers, a proxy for every (service, dependency) link,
    /// and the three services (`options.services`) pointed at their proxies.
    pub async fn start(options: StackOptions) -> anyhow::Result<Self> {
        let postgres = PrivatePostgres::start().await?;
        let nats = PrivateNats::start().await?;
        let db = TestDatabase::create_on(&postgres.admin_url())
            .await
            .context("create the database on the private PostgreSQL")?;
        let ns = TestNamespace::on(&nats.url());
        let mut proxies = BTreeMap::new();
        let mut options = options;
        for service in Service::ALL {
            let pg_proxy = Proxy::start(postgres.address()).await?;
            let nats_proxy = Proxy::start(nats.address()).await?;
            let pg_url = database_url_for(
                &format!("postgres://postgres@{}/postgres", pg_proxy.address()),
                &db.name,
            );
            options = options
                .service_env(service, "DATABASE_URL", &pg_url)
                .service_env(
                    service,
                    "NATS_URL",
                    &format!("nats://{}", nats_proxy.address()),
                );
            proxies.insert((service, Dependency::Postgres), pg_proxy);
            proxies.insert((service, Dependency::Nats), nats_proxy);
        }
        let stack = Stack::start_on(options, db, ns).await?;
        Ok(Self {
            stack,
            proxies,
            postgres,
            nats,
            nats_peers: Vec::new(),
        })
    }

    /// The stack over a NATS cluster of `nodes` servers, every stream with
    /// `nodes` replicas (`ORDERFLOW_STREAM_REPLICAS`). The services reach
    /// PostgreSQL through proxies as in [`FaultStack::start`], and NATS
    /// directly, given every node (`NATS_URL` lists them), so that they fail
    /// over when a node dies.
    pub async fn start_clustered(options: StackOptions, nodes: usize) -> anyhow::Result<Self> {
        let postgres = PrivatePostgres::start().await?;
        let mut cluster = PrivateNats::cluster(nodes).await?.into_iter();
        let nats = cluster.next().context("a cluster of no node")?;
        let nats_peers: Vec<PrivateNats> = cluster.collect();
        let db = TestDatabase::create_on(&postgres.admin_url())
            .await
            .context("create the database on the private PostgreSQL")?;
        let ns = TestNamespace::on(&nats.url());
        let nats_url = std::iter::once(&nats)
            .chain(&nats_peers)
            .map(PrivateNats::url)
            .collect::<Vec<_>>()
            .join(",");
        let mut proxies = BTreeMap::new();
        let mut options = options
            .env("ORDERFLOW_STREAM_REPLICAS", &nodes.to_string())
            .env("NATS_URL", &nats_url);
        for service in Service::ALL {
            let pg_proxy = Proxy::start(postgres.address()).await?;
            let pg_url = database_url_for(
                &format!("postgres://postgres@{}/postgres", pg_proxy.address()),
                &db.name,
            );
            options = options.service_env(service, "DATABASE_URL", &pg_url);
            proxies.insert((service, Dependency::Postgres), pg_proxy);
        }
        let stack = Stack::start_on(options, db, ns).await?;
        Ok(Self {
            stack,
            proxies,
            postgres,
            nats,
            nats_peers,
        })
    }

    /// The cluster node named `name` (`n0`, `n1`, ...).
    pub fn nats_node(&mut self, name: &str) -> Option<&mut PrivateNats> {
        std::iter::once(&mut self.nats)
            .chain(&mut self.nats_peers)
            .find(|node| node.name() == Some(name))
    }

    /// Switches the proxy of `link`.
    pub fn set(&self, link: Link, mode: Mode) {
        self.proxies[&link].set(mode);
    }

    /// Every proxy back to passing bytes.
    pub fn heal_network(&self) {
        for proxy in self.proxies.values() {
            proxy.set(Mode::Pass);
        }
    }
}
