//! The provisioned Grafana dashboard, read as data: its panels, their
//! queries, and those queries with Grafana's variables filled in so
//! Prometheus can run them.

use std::path::Path;

use anyhow::{bail, Context};
use serde_json::Value;

/// The datasource uid every panel names (deploy/grafana/provisioning).
pub const DATASOURCE_UID: &str = "orderflow-prometheus";

/// One query of one panel.
#[derive(Debug, Clone)]
pub struct PanelQuery {
    /// The panel's title.
    pub panel: String,
    /// The target's refId.
    pub ref_id: String,
    /// The PromQL as written in the dashboard.
    pub expr: String,
}

/// Reads a dashboard JSON file.
pub fn load(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))
}

/// Every panel, those inside collapsed rows included.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Every query of every panel.
pub fn queries(dashboard: &Value) -> Vec<PanelQuery> {
    panels(dashboard)
        .into_iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or_default().to_owned();
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |target| PanelQuery {
                    panel: title.clone(),
                    ref_id: target["refId"].as_str().unwrap_or_default().to_owned(),
                    expr: target["expr"].as_str().unwrap_or_default().to_owned(),
                })
        })
        .collect()
}

/// `expr` with Grafana's built-in interval variables replaced by
/// `rate_interval`, ready for Prometheus. Fails on any other variable, which
/// the dashboard does not define.
pub fn concrete(expr: &str, rate_interval: &str) -> anyhow::Result<String> {
    let mut out = expr.to_owned();
    for variable in [
        "$__rate_interval",
        "${__rate_interval}",
        "$__interval",
        "${__interval}",
        "$__range",
        "${__range}",
    ] {
        out = out.replace(variable, rate_interval);
    }
    if let Some(at) = out.find('$') {
        bail!("unknown variable at {:?} in {expr:?}", &out[at..]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_variables_are_filled_and_others_refused() {
        assert_eq!(
            concrete("rate(x[$__rate_interval]) + rate(y[${__interval}])", "1m").unwrap(),
            "rate(x[1m]) + rate(y[1m])"
        );
        assert!(concrete("up{instance=\"$instance\"}", "1m").is_err());
    }
}
