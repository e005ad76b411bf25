//! The files under deploy/ checked as files: promtool on the Prometheus
//! configuration, rules and rule tests; the alerts' conventions; the
//! dashboard's structure; docker-compose mounting them where the
//! configurations expect them; and the images' Dockerfile and the compose
//! services built from it, parsed, since no Docker engine runs the tests.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use stack_tests::dockerfile::{self, Dockerfile};
use stack_tests::grafana::{self, DATASOURCE_UID};
use stack_tests::prometheus::find_tool;
use stack_tests::repo_root;

fn path(relative: &str) -> PathBuf {
    repo_root().join(relative)
}

fn yaml(relative: &str) -> Value {
    let text = std::fs::read_to_string(path(relative)).unwrap();
    serde_yaml_ng::from_str(&text).unwrap_or_else(|err| panic!("{relative}: {err}"))
}

/// Runs promtool with `args` from the repository root and asserts success.
fn promtool(args: &[&str]) {
    let promtool = find_tool("promtool").unwrap_or_else(|err| panic!("{err:#}"));
    let output = Command::new(&promtool)
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "promtool {} failed ({}):\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn promtool_accepts_the_prometheus_configuration_with_its_rule_files() {
    promtool(&["check", "config", "deploy/prometheus/prometheus.yml"]);
}

#[test]
fn promtool_accepts_the_alert_rules() {
    promtool(&["check", "rules", "deploy/prometheus/alerts.yml"]);
}

#[test]
fn the_alert_rules_pass_their_promtool_unit_tests() {
    promtool(&["test", "rules", "deploy/prometheus/alerts.test.yml"]);
}

/// Every alert rule of alerts.yml, by name.
fn alert_rules() -> BTreeMap<String, Value> {
    let rules = yaml("deploy/prometheus/alerts.yml");
    let mut out = BTreeMap::new();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            if let Some(name) = rule["alert"].as_str() {
                assert!(
                    out.insert(name.to_owned(), rule.clone()).is_none(),
                    "alert {name} is defined twice"
                );
            }
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-`
/// and `_` dropped, spaces to `-`.
fn github_anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_alert_holds_a_while_has_a_severity_annotations_and_a_runbook_anchor() {
    let rules = alert_rules();
    assert!(!rules.is_empty());
    for (name, rule) in &rules {
        assert!(
            rule["for"].as_str().is_some_and(|f| !f.is_empty()),
            "{name} has no `for:`"
        );
        let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            ["page", "ticket"].contains(&severity),
            "{name} has severity {severity:?}, not page or ticket"
        );
        for annotation in ["summary", "description", "runbook_url"] {
            assert!(
                rule["annotations"][annotation]
                    .as_str()
                    .is_some_and(|a| !a.trim().is_empty()),
                "{name} has no {annotation}"
            );
        }
        let expected = format!("README.md#{}", github_anchor(&format!("Alert: {name}")));
        assert_eq!(
            rule["annotations"]["runbook_url"].as_str().unwrap(),
            expected,
            "{name}'s runbook_url must be the anchor of the README heading `### Alert: {name}`"
        );
    }
}

#[test]
fn every_alert_has_its_runbook_in_the_readme() {
    let readme = std::fs::read_to_string(path("README.md")).expect("read README.md");
    let headings: Vec<&str> = readme
        .lines()
        .filter_map(|line| line.strip_prefix("### Alert: "))
        .collect();
    for name in alert_rules().keys() {
        assert!(
            headings.contains(&name.as_str()),
            "README.md has no runbook heading `### Alert: {name}`"
        );
    }
}

#[test]
fn every_alert_is_unit_tested_both_firing_and_silent() {
    let rules = alert_rules();
    let tests = yaml("deploy/prometheus/alerts.test.yml");
    let mut firing = BTreeSet::new();
    let mut silent = BTreeSet::new();
    for group in tests["tests"].as_array().unwrap() {
        for case in group["alert_rule_test"].as_array().into_iter().flatten() {
            let name = case["alertname"].as_str().unwrap().to_owned();
            assert!(rules.contains_key(&name), "tests name unknown alert {name}");
            let expected = case["exp_alerts"].as_array().map_or(0, Vec::len);
            if expected == 0 {
                silent.insert(name);
            } else {
                firing.insert(name);
            }
        }
    }
    for name in rules.keys() {
        assert!(firing.contains(name), "no test shows {name} firing");
        assert!(silent.contains(name), "no test shows {name} silent");
    }
}

#[test]
fn every_dashboard_panel_queries_the_provisioned_datasource_with_rate_interval_windows() {
    let datasources = yaml("deploy/grafana/provisioning/datasources/prometheus.yml");
    assert_eq!(
        datasources["datasources"][0]["uid"], DATASOURCE_UID,
        "the provisioned datasource's uid"
    );
    let dashboard = grafana::load(&path("deploy/grafana/dashboards/orderflow.json")).unwrap();
    assert!(dashboard["uid"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(dashboard["schemaVersion"].as_i64().unwrap_or(0) >= 36);

    let panels = grafana::panels(&dashboard);
    assert!(
        panels.len() > 10,
        "the dashboard has {} panels",
        panels.len()
    );
    let mut ids = BTreeSet::new();
    for panel in &panels {
        let title = panel["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "a panel has no title: {panel}");
        let id = panel["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("{title} has no id"));
        assert!(ids.insert(id), "panel id {id} ({title}) is used twice");
        let grid = &panel["gridPos"];
        for key in ["h", "w", "x", "y"] {
            assert!(grid[key].is_u64(), "{title}: gridPos.{key} missing");
        }
        assert!(
            grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24,
            "{title} is wider than the grid"
        );
        if panel["type"] == "row" {
            continue;
        }
        assert!(
            panel["description"].as_str().is_some_and(|d| d.len() > 20),
            "{title} has no description"
        );
        assert_eq!(panel["datasource"]["uid"], DATASOURCE_UID, "{title}");
        assert_eq!(panel["datasource"]["type"], "prometheus", "{title}");
        let targets = panel["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("{title} has no targets"));
        assert!(!targets.is_empty(), "{title} has no targets");
        let mut ref_ids = BTreeSet::new();
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(!expr.trim().is_empty(), "{title}: a target has no expr");
            assert!(
                ref_ids.insert(target["refId"].to_string()),
                "{title}: refId twice"
            );
            if !target["datasource"].is_null() {
                assert_eq!(target["datasource"]["uid"], DATASOURCE_UID, "{title}");
            }
            // Every range window follows the scrape interval.
            for window in expr.split('[').skip(1) {
                let window = window.split(']').next().unwrap();
                assert_eq!(
                    window, "$__rate_interval",
                    "{title}: use $__rate_interval as the range of {expr}"
                );
            }
            grafana::concrete(expr, "1m").unwrap();
        }
    }
}

/// The container paths a compose service mounts, by host path.
fn mounts(compose: &Value, service: &str) -> BTreeMap<String, String> {
    compose["services"][service]["volumes"]
        .as_array()
        .unwrap_or_else(|| panic!("{service} mounts nothing"))
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|volume| {
            let mut parts = volume.split(':');
            Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
        })
        .collect()
}

#[test]
fn compose_mounts_the_prometheus_and_grafana_files_where_their_configurations_look() {
    let compose = yaml("docker-compose.yml");

    let prometheus = mounts(&compose, "prometheus");
    let config_dir = &prometheus["./deploy/prometheus"];
    let command: Vec<&str> = compose["services"]["prometheus"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        command.contains(&format!("--config.file={config_dir}/prometheus.yml").as_str()),
        "prometheus must read the mounted prometheus.yml: {command:?}"
    );
    // rule_files are relative to prometheus.yml, so they are mounted with it.
    let config = yaml("deploy/prometheus/prometheus.yml");
    for file in config["rule_files"].as_array().unwrap() {
        let file = file.as_str().unwrap();
        assert!(
            !Path::new(file).is_absolute() && path("deploy/prometheus").join(file).is_file(),
            "rule file {file} must be a file beside prometheus.yml"
        );
    }

    let grafana = mounts(&compose, "grafana");
    assert_eq!(
        grafana["./deploy/grafana/provisioning"],
        "/etc/grafana/provisioning"
    );
    let providers = yaml("deploy/grafana/provisioning/dashboards/orderflow.yml");
    assert_eq!(
        grafana["./deploy/grafana/dashboards"],
        providers["providers"][0]["options"]["path"]
            .as_str()
            .unwrap(),
        "the dashboards must be mounted where the provider reads them"
    );
}

/// The service images: build target (also the binary's name), the variable
/// of the address it listens on, and the port that address defaults to.
const SERVICE_IMAGES: [(&str, &str, u16); 3] = [
    ("ingress-api", "ORDERFLOW_HTTP_ADDR", 8080),
    ("order-processor", "ORDERFLOW_METRICS_ADDR", 9091),
    ("notifier", "ORDERFLOW_METRICS_ADDR", 9092),
];

/// How long `<service> healthcheck` may take itself (`PROBE_TIMEOUT` in
/// orderflow-core's health_probe); the orchestrator's timeout must be longer,
/// or it kills the probe before the probe can say why.
const PROBE_TIMEOUT_MS: u64 = 2_000;

const DOCKERFILE: &str = "deploy/docker/Dockerfile";

fn dockerfile() -> Dockerfile {
    let text = std::fs::read_to_string(path(DOCKERFILE)).unwrap();
    Dockerfile::parse(&text).unwrap_or_else(|err| panic!("{DOCKERFILE}: {err:#}"))
}

fn builder(file: &Dockerfile) -> &dockerfile::Stage {
    file.stage("builder")
        .unwrap_or_else(|| panic!("{DOCKERFILE} has no stage named builder"))
}

/// Where each image carries its service's binary.
fn binary_path(service: &str) -> String {
    format!("/usr/local/bin/{service}")
}

/// The workspace members, from the root manifest.
fn workspace_members() -> Vec<String> {
    let manifest = std::fs::read_to_string(path("Cargo.toml")).unwrap();
    let list = manifest
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .expect("the workspace lists its members")
        .0;
    let members: Vec<String> = list
        .split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    assert!(members.len() >= 4, "{members:?}");
    members
}

/// The workspace members `crate_dir` depends on to build (its
/// `[dependencies]`, not its dev-dependencies), and theirs in turn.
fn workspace_dependencies(crate_dir: &str, members: &[String]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut queue = vec![crate_dir.to_owned()];
    while let Some(dir) = queue.pop() {
        let manifest = std::fs::read_to_string(path(&format!("{dir}/Cargo.toml"))).unwrap();
        let mut in_dependencies = false;
        for line in manifest.lines().map(str::trim) {
            if line.starts_with('[') {
                in_dependencies = line == "[dependencies]";
                continue;
            }
            let name = line
                .split(['.', '=', ' '])
                .next()
                .unwrap_or_default()
                .trim();
            if in_dependencies && members.iter().any(|m| m == name) && found.insert(name.to_owned())
            {
                queue.push(name.to_owned());
            }
        }
    }
    found
}

/// The crates the `for crate in ...; do ...; done` loops of `script` create
/// a stub `file` for.
fn stubbed(script: &str, file: &str) -> BTreeSet<String> {
    script
        .split("for crate in ")
        .skip(1)
        .filter_map(|loop_| {
            let (list, rest) = loop_.split_once(';')?;
            let body = rest.split("done").next()?;
            body.contains(file).then_some(list)
        })
        .flat_map(|list| list.split_whitespace().map(str::to_owned))
        .collect()
}

#[test]
fn the_image_build_copies_every_workspace_members_manifest() {
    // cargo resolves the whole workspace, so the dependency layer of the
    // image fails to build when a member's manifest is missing from it.
    let file = dockerfile();
    let copied: Vec<&str> = builder(&file)
        .all("COPY")
        .filter_map(|copy| copy.args.split_whitespace().next())
        .collect();
    for member in workspace_members() {
        assert!(
            copied.contains(&format!("{member}/Cargo.toml").as_str()),
            "{DOCKERFILE} does not copy {member}/Cargo.toml into the builder"
        );
    }
}

#[test]
fn the_image_build_stubs_every_workspace_member_and_binary_before_the_dependency_layer() {
    // Without a stub the dependency build fails: cargo refuses a member with
    // no target, and a binary without its main.rs.
    let file = dockerfile();
    let runs: Vec<&str> = builder(&file)
        .all("RUN")
        .map(|run| run.args.as_str())
        .collect();
    let stub_run = runs
        .iter()
        .position(|run| run.contains("src/lib.rs"))
        .expect("a RUN that writes the stub sources");
    let first_build = runs
        .iter()
        .position(|run| run.contains("cargo build"))
        .expect("a cargo build");
    assert!(
        stub_run < first_build,
        "the stubs come after the first build"
    );

    let libraries = stubbed(runs[stub_run], "lib.rs");
    let binaries = stubbed(runs[stub_run], "main.rs");
    for member in workspace_members() {
        assert!(
            libraries.contains(&member),
            "{DOCKERFILE} writes no stub library for {member}: {libraries:?}"
        );
        if path(&format!("{member}/src/main.rs")).is_file() {
            assert!(
                binaries.contains(&member),
                "{DOCKERFILE} writes no stub main.rs for {member}: {binaries:?}"
            );
        }
    }
}

#[test]
fn the_image_build_compiles_the_three_services_in_one_cargo_invocation_from_their_real_sources() {
    let file = dockerfile();
    let builder = builder(&file);
    let builds: Vec<&str> = builder
        .all("RUN")
        .map(|run| run.args.as_str())
        .filter(|run| run.contains("cargo build"))
        .collect();
    assert_eq!(builds.len(), 2, "the dependency build and the real one");
    for build in &builds {
        assert_eq!(build.matches("cargo build").count(), 1, "{build}");
        let command = build.split("cargo build").nth(1).unwrap();
        let command = command.split(';').next().unwrap();
        assert!(
            command.contains("--release") && command.contains("--locked"),
            "{build}"
        );
        for (service, _, _) in SERVICE_IMAGES {
            assert!(
                command.contains(&format!("-p {service} "))
                    || command.ends_with(&format!("-p {service}")),
                "cargo build in {DOCKERFILE} does not build {service}: {build}"
            );
        }
        for cache in ["/usr/local/cargo/registry", "/src/target"] {
            assert!(
                build.contains(&format!("--mount=type=cache,target={cache}")),
                "no cache mount of {cache}: {build}"
            );
        }
    }
    for (service, _, _) in SERVICE_IMAGES {
        assert!(
            builds[1].contains(&format!("target/release/{service}")),
            "the binary {service} is not copied out of the target cache"
        );
    }

    // The real sources of everything the services are built from, after
    // their stubs are gone.
    let members = workspace_members();
    let mut needed: BTreeSet<String> = BTreeSet::new();
    for (service, _, _) in SERVICE_IMAGES {
        needed.insert(service.to_owned());
        needed.extend(workspace_dependencies(service, &members));
    }
    assert!(needed.contains("orderflow-core"), "{needed:?}");
    let copies: Vec<&str> = builder.all("COPY").map(|c| c.args.as_str()).collect();
    let removed = builder
        .all("RUN")
        .find(|run| run.args.starts_with("rm -rf"))
        .map(|run| run.args.clone())
        .unwrap_or_default();
    for dir in needed.iter().map(String::as_str).chain(["migrations"]) {
        assert!(
            copies.iter().any(|copy| {
                let words: Vec<&str> = copy.split_whitespace().collect();
                words == [dir, dir]
            }),
            "{DOCKERFILE} does not copy the sources of {dir}"
        );
        if dir != "migrations" {
            assert!(
                removed
                    .split_whitespace()
                    .any(|w| w == format!("{dir}/src")),
                "{dir}'s stub sources are not removed before its real ones are copied"
            );
        }
    }
}

#[test]
fn each_service_image_is_a_build_target_on_distroless_running_as_a_numeric_non_root_user() {
    let file = dockerfile();
    for (service, _, _) in SERVICE_IMAGES {
        assert!(file.stage(service).is_some(), "no build target {service}");
        let base = file.root_image(service).unwrap();
        assert!(
            base.starts_with("gcr.io/distroless/"),
            "{service} runs on {base}, not distroless"
        );
        let user = file
            .effective(service, "USER")
            .unwrap()
            .unwrap_or_else(|| panic!("{service} sets no USER and would run as root"));
        let ids: Vec<&str> = user.args.split(':').collect();
        assert!(ids.len() <= 2, "{service}: USER {}", user.args);
        for id in ids {
            let id: u32 = id.parse().unwrap_or_else(|_| {
                panic!(
                    "{service}: USER {} is not numeric, so runAsNonRoot cannot check it",
                    user.args
                )
            });
            assert_ne!(id, 0, "{service} runs as root: USER {}", user.args);
        }
    }
}

#[test]
fn each_service_image_runs_its_own_binary_as_entrypoint_and_healthcheck() {
    let file = dockerfile();
    for (service, _, _) in SERVICE_IMAGES {
        let binary = binary_path(service);
        let stage = file.stage(service).unwrap();
        assert!(
            stage.all("COPY").any(|copy| {
                copy.args.starts_with("--from=builder ") && copy.args.ends_with(&binary)
            }),
            "{service} does not copy its binary from the builder to {binary}"
        );

        let entrypoint = file
            .effective(service, "ENTRYPOINT")
            .unwrap()
            .unwrap_or_else(|| panic!("{service} has no ENTRYPOINT"));
        assert_eq!(
            dockerfile::exec_form(&entrypoint.args),
            Some(vec![binary.clone()]),
            "{service}: the ENTRYPOINT must be its binary in exec form"
        );

        let healthcheck = file
            .effective(service, "HEALTHCHECK")
            .unwrap()
            .unwrap_or_else(|| panic!("{service} has no HEALTHCHECK"));
        let healthcheck = dockerfile::parse_healthcheck(&healthcheck.args).unwrap();
        assert_eq!(
            healthcheck.command,
            Some(vec![binary.clone(), "healthcheck".to_owned()]),
            "{service}: the HEALTHCHECK must run `{binary} healthcheck` in exec form"
        );
        for option in ["interval", "timeout", "start-period", "retries"] {
            assert!(
                healthcheck.options.contains_key(option),
                "{service}: HEALTHCHECK without --{option}"
            );
        }
        let timeout = dockerfile::duration_ms(&healthcheck.options["timeout"]).unwrap();
        assert!(
            timeout > PROBE_TIMEOUT_MS,
            "{service}: HEALTHCHECK --timeout must leave the probe its own {PROBE_TIMEOUT_MS} ms"
        );
        let retries: u32 = healthcheck.options["retries"].parse().unwrap();
        assert!(retries >= 1, "{service}: --retries={retries}");
    }
}

#[test]
fn each_service_image_exposes_the_port_its_default_address_listens_on() {
    let file = dockerfile();
    for (service, variable, port) in SERVICE_IMAGES {
        let env = file.env(service).unwrap();
        let addr: SocketAddr = env
            .get(variable)
            .unwrap_or_else(|| panic!("{service} sets no default {variable}"))
            .parse()
            .unwrap_or_else(|err| panic!("{service}: {variable}: {err}"));
        assert!(
            addr.ip().is_unspecified(),
            "{service} listens on {addr}: unreachable from outside the container"
        );
        assert_eq!(addr.port(), port, "{service}: {variable}");
        let exposed: Vec<String> = file
            .lineage(service)
            .unwrap()
            .into_iter()
            .flat_map(|stage| stage.all("EXPOSE"))
            .flat_map(|expose| expose.args.split_whitespace().map(str::to_owned))
            .collect();
        assert_eq!(
            exposed,
            [port.to_string()],
            "{service} must EXPOSE the port of its {variable}, {port}"
        );
        assert_eq!(
            env.get("ORDERFLOW_LOG_FORMAT").map(String::as_str),
            Some("json"),
            "{service}"
        );
    }
}

/// `map` with the entries of its YAML merge key (`<<: *anchor`) folded in,
/// its own entries winning.
fn merged(map: &Value) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    let merges = match &map["<<"] {
        Value::Array(list) => list.clone(),
        Value::Null => Vec::new(),
        single => vec![single.clone()],
    };
    for merge in merges {
        out.extend(merge.as_object().cloned().unwrap_or_default());
    }
    for (key, value) in map.as_object().into_iter().flatten() {
        if key != "<<" {
            out.insert(key.clone(), value.clone());
        }
    }
    out
}

#[test]
fn compose_builds_each_service_from_its_target_and_checks_it_with_its_binary() {
    let compose = yaml("docker-compose.yml");
    let file = dockerfile();
    for (service, variable, port) in SERVICE_IMAGES {
        let definition = &compose["services"][service];
        let build = &definition["build"];
        assert_eq!(build["dockerfile"], DOCKERFILE, "{service}");
        assert_eq!(build["target"], service, "{service} must build its target");
        assert!(
            build["args"]["SERVICE"].is_null(),
            "{service}: the Dockerfile takes no SERVICE argument any more"
        );
        assert!(file.stage(service).is_some(), "no build target {service}");

        let healthcheck = merged(&definition["healthcheck"]);
        let expected: Vec<Value> = ["CMD", &binary_path(service), "healthcheck"]
            .into_iter()
            .map(Value::from)
            .collect();
        assert_eq!(
            healthcheck["test"],
            Value::Array(expected),
            "{service}: the image has no curl; its healthcheck is its binary"
        );
        let timeout = dockerfile::duration_ms(healthcheck["timeout"].as_str().unwrap()).unwrap();
        assert!(timeout > PROBE_TIMEOUT_MS, "{service}: healthcheck timeout");

        // The address compose sets is the one the image exposes.
        let environment = merged(&definition["environment"]);
        let addr: SocketAddr = environment[variable]
            .as_str()
            .unwrap_or_else(|| panic!("{service}: compose sets no {variable}"))
            .parse()
            .unwrap();
        assert_eq!(addr.port(), port, "{service}: {variable} in compose");
    }
}
