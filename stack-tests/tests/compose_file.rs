//! docker-compose.yml read as a file: what `docker compose` would only show
//! at run time. Data lives on named volumes (so `down` and `up` keep it),
//! every container has a healthcheck, the services wait for healthy
//! dependencies, the database and broker are not published to the world,
//! and every setting given to a service is one it reads. Its validity
//! against the Compose specification is scripts/check-deploy.sh's job.

use std::collections::BTreeSet;

use serde_json::Value;
use stack_tests::readme::documented_settings;
use stack_tests::repo_root;

const SERVICES: &[&str] = &["ingress-api", "order-processor", "notifier"];

fn compose() -> Value {
    let text = std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

/// A service's volume mounts as (source, target); short syntax only.
fn mounts(compose: &Value, service: &str) -> Vec<(String, String)> {
    compose["services"][service]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let text = m.as_str().expect("short volume syntax");
            let mut parts = text.split(':');
            (
                parts.next().unwrap().to_owned(),
                parts.next().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn stateful_containers_keep_their_data_on_named_volumes() {
    let compose = compose();
    let declared: BTreeSet<String> = compose["volumes"]
        .as_object()
        .expect("top-level volumes")
        .keys()
        .cloned()
        .collect();
    // The data directory of each, from its image or its command line.
    let nats_store = {
        let command: Vec<&str> = compose["services"]["nats"]["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let at = command
            .iter()
            .position(|a| *a == "-sd" || *a == "--store_dir")
            .expect("nats keeps JetStream in a store directory");
        command[at + 1].to_owned()
    };
    for (service, data_dir) in [
        ("postgres", "/var/lib/postgresql/data".to_owned()),
        ("nats", nats_store),
        ("prometheus", "/prometheus".to_owned()),
        ("grafana", "/var/lib/grafana".to_owned()),
    ] {
        let source = mounts(&compose, service)
            .into_iter()
            .find(|(_, target)| *target == data_dir)
            .map(|(source, _)| source)
            .unwrap_or_else(|| panic!("{service}: nothing mounted at {data_dir}"));
        assert!(
            declared.contains(&source),
            "{service}: {data_dir} must be a named volume (not a bind mount or an anonymous \
             volume) so that `docker compose down` keeps it; got {source}"
        );
    }
}

#[test]
fn every_container_has_a_healthcheck_and_the_services_wait_for_healthy_dependencies() {
    let compose = compose();
    for (name, service) in compose["services"].as_object().unwrap() {
        let test = &service["healthcheck"]["test"];
        assert!(
            test.as_array().is_some_and(|t| t.len() >= 2),
            "{name} has no healthcheck"
        );
    }
    for service in SERVICES {
        let depends = &compose["services"][service]["depends_on"];
        for dependency in ["postgres", "nats"] {
            assert_eq!(
                depends[dependency]["condition"], "service_healthy",
                "{service} must wait for a healthy {dependency}"
            );
        }
        assert_eq!(compose["services"][service]["restart"], "unless-stopped");
    }
}

#[test]
fn the_database_and_the_broker_are_not_published() {
    let compose = compose();
    for service in ["postgres", "nats"] {
        assert!(
            compose["services"][service]["ports"].is_null(),
            "{service} is reachable only inside the compose network"
        );
    }
    // What is published for people to look at listens on loopback only.
    for service in ["prometheus", "grafana"] {
        for port in compose["services"][service]["ports"].as_array().unwrap() {
            assert!(
                port.as_str().unwrap().starts_with("127.0.0.1:"),
                "{service} publishes {port} beyond this machine"
            );
        }
    }
}

#[test]
fn every_setting_given_to_a_service_is_one_it_reads() {
    let compose = compose();
    let documented = documented_settings();
    let shared = &compose["x-orderflow-env"];
    for service in SERVICES {
        let environment = &compose["services"][service]["environment"];
        // The shared block is merged in with `<<`, which YAML keeps as a key
        // of its own here.
        let names = environment
            .as_object()
            .unwrap()
            .keys()
            .chain(shared.as_object().unwrap().keys())
            .filter(|k| *k != "<<");
        for name in names {
            assert!(
                documented.contains(name),
                "{service} is given {name}, which is not in README.md's Configuration table"
            );
        }
    }
}
