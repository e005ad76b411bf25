//! The monitoring files under deploy/ checked as files: promtool on the
//! Prometheus configuration, rules and rule tests; the alerts' conventions;
//! the dashboard's structure; and docker-compose mounting them where the
//! configurations expect them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
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

#[test]
fn the_image_build_copies_every_workspace_members_manifest() {
    // cargo resolves the whole workspace, so the dependency layer of the
    // image fails to build when a member's manifest is missing from it.
    let manifest = std::fs::read_to_string(path("Cargo.toml")).unwrap();
    let list = manifest
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .expect("the workspace lists its members")
        .0;
    let members: Vec<&str> = list
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .collect();
    let dockerfile = std::fs::read_to_string(path("deploy/docker/Dockerfile")).unwrap();
    assert!(members.len() >= 4, "{members:?}");
    for member in members {
        assert!(
            dockerfile.contains(&format!("COPY {member}/Cargo.toml")),
            "deploy/docker/Dockerfile does not copy {member}/Cargo.toml"
        );
    }
}
