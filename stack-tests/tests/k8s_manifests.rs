//! The Kubernetes manifests, rendered with `kubectl kustomize` for every
//! overlay under deploy/k8s/overlays, checked for what no schema knows: that
//! the parts agree with each other and with orderflow itself. The processor's
//! autoscaler covers exactly the partitions; streams are not replicated wider
//! than the NATS cluster; Services, probes and policies point at pods and
//! ports that exist; every setting is one the services read; every Secret and
//! ConfigMap named is there (or is one of the documented external ones).
//!
//! Schema validation and the security scan are scripts/check-deploy.sh's
//! job; the last test here runs it.
//!
//! Without kubectl (which carries kustomize) the rendering tests print a
//! notice and check nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde::Deserialize;
use serde_yaml_ng::Value;
use stack_tests::readme::documented_settings;
use stack_tests::repo_root;

/// Secrets the production overlays expect to exist in the cluster already,
/// with the keys the manifests read from them (README.md, "Deployment").
const EXTERNAL_SECRETS: &[(&str, &[&str])] = &[
    (
        "orderflow-secrets",
        &[
            "DATABASE_URL",
            "POSTGRES_PASSWORD",
            "ORDERFLOW_JWT_SECRET",
            "ORDERFLOW_ADMIN_EMAIL",
            "ORDERFLOW_ADMIN_PASSWORD",
        ],
    ),
    (
        "orderflow-backup-s3",
        &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
    ),
    // Optional: the ORDERFLOW_SMTP_* settings, read whole.
    ("orderflow-smtp", &[]),
];

/// Where every overlay puts orderflow.
const NAMESPACE: &str = "orderflow";

/// The three services' containers.
const SERVICES: &[&str] = &["ingress-api", "order-processor", "notifier"];

/// One overlay's rendered objects.
struct Rendered {
    overlay: String,
    objects: Vec<Value>,
}

impl Rendered {
    fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects.iter().filter(move |o| o["kind"] == kind)
    }

    fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }

    fn get(&self, kind: &str, name: &str) -> &Value {
        self.find(kind, name)
            .unwrap_or_else(|| panic!("{}: no {kind} {name}", self.overlay))
    }

    /// Deployments, StatefulSets and CronJobs: whatever runs pods.
    fn workloads(&self) -> impl Iterator<Item = &Value> {
        self.objects.iter().filter(|o| pod_template(o).is_some())
    }

    fn config_value(&self, key: &str) -> String {
        let value = &self.get("ConfigMap", "orderflow-config")["data"][key];
        value
            .as_str()
            .unwrap_or_else(|| panic!("{}: orderflow-config has no {key}", self.overlay))
            .to_owned()
    }
}

/// Every overlay, rendered; `None` (with a notice) without kubectl.
fn rendered_overlays() -> Option<Vec<Rendered>> {
    if Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_err()
    {
        eprintln!("kubectl not found: the Kubernetes overlays are not rendered or checked");
        return None;
    }
    let overlays = repo_root().join("deploy/k8s/overlays");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&overlays).unwrap() {
        let dir = entry.unwrap().path();
        if dir.is_dir() {
            out.push(render(&dir));
        }
    }
    out.sort_by(|a, b| a.overlay.cmp(&b.overlay));
    assert!(
        out.iter().any(|r| r.overlay == "local") && out.iter().any(|r| r.overlay == "production"),
        "the local and production overlays are missing"
    );
    Some(out)
}

fn render(dir: &Path) -> Rendered {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kubectl kustomize {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let objects = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect();
    Rendered {
        overlay: dir.file_name().unwrap().to_string_lossy().into_owned(),
        objects,
    }
}

/// The pod template of a workload.
fn pod_template(object: &Value) -> Option<&Value> {
    match object["kind"].as_str()? {
        "Deployment" | "StatefulSet" => Some(&object["spec"]["template"]),
        "CronJob" => Some(&object["spec"]["jobTemplate"]["spec"]["template"]),
        _ => None,
    }
}

fn containers(workload: &Value) -> &[Value] {
    pod_template(workload).expect("a workload")["spec"]["containers"]
        .as_sequence()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn str_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// The `app.kubernetes.io/name` label of a workload's pods.
fn pod_name_label(workload: &Value) -> String {
    str_of(&pod_template(workload).unwrap()["metadata"]["labels"]["app.kubernetes.io/name"])
}

/// Whether `selector` (a Service's map or a `matchLabels`) matches `labels`.
fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector
        .as_mapping()
        .is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| labels[k] == *v))
}

/// The container's port number for `port`, a name or a number.
fn container_port(container: &Value, port: &Value) -> Option<u64> {
    if let Some(n) = port.as_u64() {
        return Some(n);
    }
    container["ports"]
        .as_sequence()?
        .iter()
        .find(|p| p["name"] == *port)
        .and_then(|p| p["containerPort"].as_u64())
}

/// The names of the container's environment, plain and from ConfigMaps.
fn env_names(rendered: &Rendered, container: &Value) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = container["env"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|e| str_of(&e["name"]))
        .collect();
    for source in container["envFrom"].as_sequence().into_iter().flatten() {
        if let Some(map) = source["configMapRef"]["name"].as_str() {
            let data = &rendered.get("ConfigMap", map)["data"];
            names.extend(
                data.as_mapping()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| str_of(k)),
            );
        }
    }
    names
}

fn env_value(container: &Value, name: &str) -> Option<String> {
    container["env"]
        .as_sequence()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str().map(str::to_owned))
}

#[test]
fn every_object_of_an_overlay_is_in_the_orderflow_namespace() {
    let Some(overlays) = rendered_overlays() else {
        return;
    };
    for r in &overlays {
        for object in &r.objects {
            let kind = object["kind"].as_str().unwrap();
            if kind == "Namespace" {
                assert_eq!(name(object), NAMESPACE, "{}", r.overlay);
                continue;
            }
            assert_eq!(
                object["metadata"]["namespace"].as_str(),
                Some(NAMESPACE),
                "{}: {kind} {} is outside the namespace",
                r.overlay,
                name(object)
            );
        }
    }
}

#[test]
fn the_processor_autoscaler_covers_every_partition_and_stops_at_their_count() {
    let Some(overlays) = rendered_overlays() else {
        return;
    };
    for r in &overlays {
        let partitions: usize = r.config_value("ORDERFLOW_PARTITIONS").parse().unwrap();
        // Stream and consumer names carry ORDERFLOW_NAMESPACE as a prefix.
        assert!(
            r.get("ConfigMap", "orderflow-config")["data"]["ORDERFLOW_NAMESPACE"].is_null(),
            "{}: a NATS namespace would rename the stream the triggers watch",
            r.overlay
        );
        let scaled = r.get("ScaledObject", "order-processor");
        let spec = &scaled["spec"];
        assert_eq!(spec["scaleTargetRef"]["name"], "order-processor");
        r.get("Deployment", "order-processor");
        assert_eq!(
            spec["maxReplicaCount"].as_u64(),
            Some(partitions as u64),
            "{}: a replica beyond the partition count would own nothing",
            r.overlay
        );
        let headless = format!("nats-headless.{NAMESPACE}.svc.cluster.local:8222");
        let triggers = spec["triggers"].as_sequence().unwrap();
        let mut consumers = BTreeSet::new();
        let formula = spec["advanced"]["scalingModifiers"]["formula"]
            .as_str()
            .unwrap_or_default();
        for trigger in triggers {
            assert_eq!(trigger["type"], "nats-jetstream", "{}", r.overlay);
            let meta = &trigger["metadata"];
            assert_eq!(meta["stream"], "ORDERS", "{}", r.overlay);
            assert_eq!(meta["account"], "$G", "{}", r.overlay);
            assert_eq!(
                meta["natsServerMonitoringEndpoint"].as_str(),
                Some(headless.as_str()),
                "{}: KEDA must ask the nodes through the headless Service",
                r.overlay
            );
            let trigger_name = trigger["name"].as_str().unwrap();
            assert_eq!(
                formula
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|word| *word == trigger_name)
                    .count(),
                1,
                "{}: the formula must count trigger {trigger_name} once",
                r.overlay
            );
            consumers.insert(meta["consumer"].as_str().unwrap().to_owned());
        }
        // The consumer names order-processor gives its partitions
        // (orderflow_core::naming::Naming::partition_consumer).
        let expected: BTreeSet<String> = (0..partitions)
            .map(|p| format!("order-processor-p{p}"))
            .collect();
        assert_eq!(consumers, expected, "{}", r.overlay);
        assert_eq!(triggers.len(), partitions, "{}", r.overlay);
    }
}

#[test]
fn streams_are_replicated_on_distinct_nodes_of_the_nats_cluster() {
    let Some(overlays) = rendered_overlays() else {
        return;
    };
    for r in &overlays {
        let replicas: u64 = r.config_value("ORDERFLOW_STREAM_REPLICAS").parse().unwrap();
        let nats = r.get("StatefulSet", "nats");
        let nodes = nats["spec"]["replicas"].as_u64().unwrap();
        assert!(
            nodes >= 3 && nodes % 2 == 1,
            "{}: JetStream needs an odd cluster of at least three for a quorum",
            r.overlay
        );
        assert!(
            (2..=nodes).contains(&replicas),
            "{}: {replicas} stream replicas on {nodes} nodes",
            r.overlay
        );
        let config = r.get("ConfigMap", "nats-config")["data"]["nats.conf"]
            .as_str()
            .unwrap();
        let routes: BTreeSet<String> = config
            .split_whitespace()
            .filter(|word| word.starts_with("nats://nats-"))
            .map(str::to_owned)
            .collect();
        let expected: BTreeSet<String> = (0..nodes)
            .map(|i| format!("nats://nats-{i}.nats-headless:6222"))
            .collect();
        assert_eq!(
            routes, expected,
            "{}: a route per node, by its stable name",
            r.overlay
        );
        assert_eq!(nats["spec"]["serviceName"], "nats-headless");
        assert_eq!(nats["spec"]["podManagementPolicy"], "Parallel");
        assert_eq!(
            r.get("Service", "nats-headless")["spec"]["publishNotReadyAddresses"],
            true,
            "{}: nodes must find each other before they are ready",
            r.overlay
        );
        let url = r.config_value("NATS_URL");
        assert_eq!(url, "nats://nats:4222", "{}", r.overlay);
        r.get("Service", "nats");
    }
}

#[test]
fn services_and_probes_point_at_pods_and_ports_that_exist() {
    let Some(overlays) = rendered_overlays() else {
        return;
    };
    for r in &overlays {
        for service in r.of_kind("Service") {
            let selector = &service["spec"]["selector"];
            let targets: Vec<&Value> = r
                .workloads()
                .filter(|w| labels_match(selector, &pod_template(w).unwrap()["metadata"]["labels"]))
                .collect();
            assert!(
                !targets.is_empty(),
                "{}: Service {} selects no pods",
                r.overlay,
                name(service)
            );
            for port in service["spec"]["ports"].as_sequence().unwrap() {
                let target = if port["targetPort"].is_null() {
                    &port["port"]
                } else {
                    &port["targetPort"]
                };
                for workload in &targets {
                    assert!(
                        containers(workload)
                            .iter()
                            .any(|c| container_port(c, target).is_some()),
                        "{}: Service {} port {target:?} is on no container of {}",
                        r.overlay,
                        name(service),
                        name(workload)
                    );
                }
            }
        }
        for workload in r.workloads() {
            for container in containers(workload) {
                for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                    let port = &container[probe]["httpGet"]["port"];
                    if !port.is_null() {
                        assert!(
                            container_port(container, port).is_some(),
                            "{}: {} {probe} port {port:?} is not declared",
                            r.overlay,
                            name(workload)
                        );
                    }
                }
            }
        }
        // Each service listens where its probes and Service look.
        for service in SERVICES {
            let workload = r.get("Deployment", service);
            let container = &containers(workload)[0];
            let variable = if *service == "ingress-api" {
                "ORDERFLOW_HTTP_ADDR"
            } else {
                "ORDERFLOW_METRICS_ADDR"
            };
            let addr = env_value(container, variable)
                .unwrap_or_else(|| panic!("{}: {service} has no {variable}", r.overlay));
            let (host, port) = addr.rsplit_once(':').unwrap();
            assert_eq!(
                host, "0.0.0.0",
                "{}: {service} must listen on the pod's address",
                r.overlay
            );
            let port: u64 = port.parse().unwrap();
            for probe in ["readinessProbe", "livenessProbe"] {
                assert_eq!(
                    container_port(container, &container[probe]["httpGet"]["port"]),
                    Some(port),
                    "{}: {service}'s {probe} must reach {variable}",
                    r.overlay
                );
            }
            let annotations = &pod_template(workload).unwrap()["metadata"]["annotations"];
            assert_eq!(
                annotations["prometheus.io/port"].as_str(),
                Some(port.to_string().as_str()),
                "{}: {service} is scraped where it serves /metrics",
                r.overlay
            );
        }
    }
}

#[test]
fn every_setting_given_to_a_service_is_one_it_reads() {
    let Some(overlays) = rendered_overlays() else {
        return;
    };
    let documented = documented_settings();
    assert!(
        documented.contains("ORDERFLOW_PARTITIONS"),
        "{documented:?}"
    );
    for r in &overlays {
        for service in SERVICES {
            let container = &containers(r.get("Deployment", service))[0];
            for variable in env_names(r, container) {
                assert!(
                    documented.contains(&variable),
                    "{}: {service} is given {variable}, which no service reads \
                     (it is not in README.md's Configuration table)",
                    r.overlay
                );
            }
        }
    }
}

#[test]
fn network_policies_select_real_pods_and_each_component_has_its_own() {
    let Some(overlays) = rendered_overlays() else {
        return;
    };
    for r in &overlays {
        let pods: BTreeSet<String> = r.workloads().map(pod_name_label).collect();
        let deny = r.get("NetworkPolicy", "default-deny");
        assert_eq!(
            deny["spec"]["podSelector"],
            Value::Mapping(Default::default())
        );
        let types: BTreeSet<String> = deny["spec"]["policyTypes"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(str_of)
            .collect();
        assert_eq!(types, BTreeSet::from(["Ingress".into(), "Egress".into()]));

        let mut covered = BTreeSet::new();
        for policy in r.of_kind("NetworkPolicy") {
            let selected = &policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"];
            if let Some(pod) = selected.as_str() {
                assert!(
                    pods.contains(pod),
                    "{}: policy {} is for pods {pod}, which nothing runs",
                    r.overlay,
                    name(policy)
                );
                covered.insert(pod.to_owned());
            }
            // Every peer named by label must exist too.
            let mut peers = Vec::new();
            for direction in ["ingress", "egress"] {
                for rule in policy["spec"][direction]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                {
                    for peer in rule["from"]
                        .as_sequence()
                        .into_iter()
                        .chain(rule["to"].as_sequence())
                        .flatten()
                    {
                        let selector = &peer["podSelector"];
                        if let Some(pod) =
                            selector["matchLabels"]["app.kubernetes.io/name"].as_str()
                        {
                            peers.push(pod.to_owned());
                        }
                        for expression in selector["matchExpressions"]
                            .as_sequence()
                            .into_iter()
                            .flatten()
                        {
                            peers.extend(
                                expression["values"]
                                    .as_sequence()
                                    .unwrap()
                                    .iter()
                                    .map(str_of),
                            );
                        }
                    }
                }
            }
            for peer in peers {
                assert!(
                    pods.contains(&peer),
                    "{}: policy {} names pods {peer}, which nothing runs",
                    r.overlay,
                    name(policy)
                );
            }
        }
        assert_eq!(
            covered, pods,
            "{}: every component needs a policy of its own",
            r.overlay
        );
    }
}

/// Every Secret and ConfigMap a workload reads, with the keys it reads:
/// `(kind, name) -> keys`, an empty set for a whole-map read; optional
/// references are left out.
fn references(workload: &Value) -> BTreeMap<(&'static str, String), BTreeSet<String>> {
    let mut out: BTreeMap<(&'static str, String), BTreeSet<String>> = BTreeMap::new();
    let spec = &pod_template(workload).unwrap()["spec"];
    for container in containers(workload) {
        for source in container["envFrom"].as_sequence().into_iter().flatten() {
            for (field, kind) in [("configMapRef", "ConfigMap"), ("secretRef", "Secret")] {
                let reference = &source[field];
                if reference.is_null() || reference["optional"] == true {
                    continue;
                }
                out.entry((kind, str_of(&reference["name"]))).or_default();
            }
        }
        for variable in container["env"].as_sequence().into_iter().flatten() {
            for (field, kind) in [("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")] {
                let reference = &variable["valueFrom"][field];
                if reference.is_null() {
                    continue;
                }
                out.entry((kind, str_of(&reference["name"])))
                    .or_default()
                    .insert(str_of(&reference["key"]));
            }
        }
    }
    for volume in spec["volumes"].as_sequence().into_iter().flatten() {
        if let Some(map) = volume["configMap"]["name"].as_str() {
            out.entry(("ConfigMap", map.to_owned())).or_default();
        }
    }
    out
}

#[test]
fn every_secret_and_config_map_read_exists_or_is_a_documented_external_secret() {
    let Some(overlays) = rendered_overlays() else {
        return;
    };
    let external: BTreeMap<&str, &[&str]> = EXTERNAL_SECRETS.iter().copied().collect();
    for r in &overlays {
        for workload in r.workloads() {
            for ((kind, object), keys) in references(workload) {
                let found = r.find(kind, &object);
                if kind == "Secret" && found.is_none() && r.overlay != "local" {
                    let known = external.get(object.as_str()).unwrap_or_else(|| {
                        panic!(
                            "{}: {} reads Secret {object}, which is neither rendered nor a \
                             documented external secret",
                            r.overlay,
                            name(workload)
                        )
                    });
                    for key in &keys {
                        assert!(
                            known.contains(&key.as_str()),
                            "{}: {} reads {key} of {object}, which is not documented",
                            r.overlay,
                            name(workload)
                        );
                    }
                    continue;
                }
                let found = found.unwrap_or_else(|| {
                    panic!(
                        "{}: {} reads {kind} {object}, which is not rendered",
                        r.overlay,
                        name(workload)
                    )
                });
                for key in &keys {
                    assert!(
                        !found["data"][key.as_str()].is_null(),
                        "{}: {} reads {key} of {kind} {object}, which has no such key",
                        r.overlay,
                        name(workload)
                    );
                }
            }
        }
    }
}

#[test]
fn autoscaled_workloads_leave_their_replica_count_to_the_autoscaler() {
    let Some(overlays) = rendered_overlays() else {
        return;
    };
    for r in &overlays {
        let mut scaled = Vec::new();
        for hpa in r.of_kind("HorizontalPodAutoscaler") {
            scaled.push(str_of(&hpa["spec"]["scaleTargetRef"]["name"]));
        }
        for object in r.of_kind("ScaledObject") {
            scaled.push(str_of(&object["spec"]["scaleTargetRef"]["name"]));
        }
        assert!(scaled.contains(&"ingress-api".to_owned()), "{}", r.overlay);
        assert!(
            scaled.contains(&"order-processor".to_owned()),
            "{}",
            r.overlay
        );
        for target in &scaled {
            let deployment = r.get("Deployment", target);
            // A fixed count would be put back by every `kubectl apply`.
            assert!(
                deployment["spec"]["replicas"].is_null(),
                "{}: {target} has both a replica count and an autoscaler",
                r.overlay
            );
        }
        for budget in r.of_kind("PodDisruptionBudget") {
            let selector = &budget["spec"]["selector"]["matchLabels"];
            assert!(
                r.workloads().any(|w| labels_match(
                    selector,
                    &pod_template(w).unwrap()["metadata"]["labels"]
                )),
                "{}: budget {} covers no pods",
                r.overlay,
                name(budget)
            );
        }
    }
}

#[test]
fn the_deployment_files_pass_the_offline_schema_checks_and_the_security_scan() {
    let output = Command::new("bash")
        .arg(repo_root().join("scripts/check-deploy.sh"))
        .current_dir(repo_root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "scripts/check-deploy.sh failed ({}):\n{}{stderr}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
}

/// Database connections one replica may hold: its pool (ingress-api:
/// `db::lazy_pool(.., 32)` in ingress-api/src/startup.rs; the processor:
/// partitions + 4 in order-processor/src/lib.rs; the notifier: `POOL_SIZE`
/// in notifier/src/lib.rs) and one more (a lease or listening connection).
fn connections_per_replica(service: &str, partitions: u64) -> u64 {
    match service {
        "ingress-api" => 32 + 1,
        "order-processor" => partitions.min(32) + 4 + 1,
        "notifier" => 4 + 1,
        other => panic!("unknown service {other}"),
    }
}

#[test]
fn postgres_accepts_every_connection_the_services_may_open_at_their_largest() {
    let Some(overlays) = rendered_overlays() else {
        return;
    };
    for r in &overlays {
        let Some(postgres) = r.find("StatefulSet", "postgres") else {
            // An external database: its own limits apply (README.md).
            continue;
        };
        let args: Vec<String> = containers(postgres)[0]["args"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(str_of)
            .collect();
        let max_connections: u64 = args
            .iter()
            .find_map(|a| a.strip_prefix("max_connections="))
            .map(|v| v.parse().unwrap())
            .unwrap_or(100);
        let partitions: u64 = r.config_value("ORDERFLOW_PARTITIONS").parse().unwrap();
        let most_replicas = |service: &str| -> u64 {
            let hpa = r
                .of_kind("HorizontalPodAutoscaler")
                .find(|h| h["spec"]["scaleTargetRef"]["name"] == service);
            let scaled = r
                .of_kind("ScaledObject")
                .find(|s| s["spec"]["scaleTargetRef"]["name"] == service);
            match (hpa, scaled) {
                (Some(hpa), _) => hpa["spec"]["maxReplicas"].as_u64().unwrap(),
                (_, Some(scaled)) => scaled["spec"]["maxReplicaCount"].as_u64().unwrap(),
                _ => r.get("Deployment", service)["spec"]["replicas"]
                    .as_u64()
                    .unwrap_or(1),
            }
        };
        let needed: u64 = SERVICES
            .iter()
            .map(|s| most_replicas(s) * connections_per_replica(s, partitions))
            .sum::<u64>()
            // The backup job, and PostgreSQL's reserved superuser slots.
            + 1
            + 3;
        assert!(
            needed <= max_connections,
            "{}: the services may open {needed} connections, PostgreSQL takes {max_connections}",
            r.overlay
        );
    }
}
