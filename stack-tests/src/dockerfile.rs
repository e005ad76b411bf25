//! Just enough of a Dockerfile parser to check the images' recipe without a
//! Docker engine: instructions with their line continuations joined and
//! comments dropped, grouped into stages, and what a stage inherits from
//! the stage it is built `FROM`.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context};

/// One instruction: its keyword in upper case and the rest of its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// `FROM`, `RUN`, `COPY`, ...
    pub keyword: String,
    /// Everything after the keyword, continuations joined with a space.
    pub args: String,
}

/// A build stage: `FROM <base> [AS <name>]` and the instructions after it.
#[derive(Debug, Clone)]
pub struct Stage {
    /// The name after `AS`, if any.
    pub name: Option<String>,
    /// The image or earlier stage it starts from.
    pub base: String,
    /// Its instructions after `FROM`, in order.
    pub instructions: Vec<Instruction>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    /// The stages in the order they appear.
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    /// Parses `text`. Instructions before the first `FROM` other than `ARG`
    /// are refused, as Docker refuses them.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut stages: Vec<Stage> = Vec::new();
        for instruction in instructions(text) {
            if instruction.keyword == "FROM" {
                stages.push(parse_from(&instruction.args)?);
            } else if let Some(stage) = stages.last_mut() {
                stage.instructions.push(instruction);
            } else if instruction.keyword != "ARG" {
                bail!("{} before the first FROM", instruction.keyword);
            }
        }
        Ok(Self { stages })
    }

    /// The stage named `name`.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages
            .iter()
            .find(|stage| stage.name.as_deref() == Some(name))
    }

    /// `name` and the stages of this file it is built on, nearest first.
    pub fn lineage(&self, name: &str) -> anyhow::Result<Vec<&Stage>> {
        let mut chain = vec![self
            .stage(name)
            .ok_or_else(|| anyhow!("no stage named {name}"))?];
        while let Some(parent) = self.stage(&chain.last().unwrap().base) {
            if chain.len() > self.stages.len() {
                bail!("stage {name} is built on itself");
            }
            chain.push(parent);
        }
        Ok(chain)
    }

    /// The external image stage `name` finally starts from.
    pub fn root_image(&self, name: &str) -> anyhow::Result<String> {
        Ok(self.lineage(name)?.last().unwrap().base.clone())
    }

    /// The last `keyword` instruction in effect for stage `name`: its own,
    /// else the nearest one it inherits (`USER`, `ENTRYPOINT`, `HEALTHCHECK`
    /// and `WORKDIR` carry over from the stage it is built on).
    pub fn effective(&self, name: &str, keyword: &str) -> anyhow::Result<Option<Instruction>> {
        Ok(self.lineage(name)?.into_iter().find_map(|stage| {
            stage
                .instructions
                .iter()
                .rev()
                .find(|i| i.keyword == keyword)
                .cloned()
        }))
    }

    /// The environment stage `name` sets, inherited values first and its
    /// own last, so later settings win as in Docker.
    pub fn env(&self, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
        let mut env = BTreeMap::new();
        for stage in self.lineage(name)?.into_iter().rev() {
            for instruction in stage.instructions.iter().filter(|i| i.keyword == "ENV") {
                env.extend(parse_env(&instruction.args)?);
            }
        }
        Ok(env)
    }

    /// Every instruction of every stage, in file order.
    pub fn all_instructions(&self) -> impl Iterator<Item = &Instruction> {
        self.stages.iter().flat_map(|stage| &stage.instructions)
    }
}

impl Stage {
    /// This stage's own instructions with `keyword`.
    pub fn all(&self, keyword: &str) -> impl Iterator<Item = &Instruction> + '_ {
        let keyword = keyword.to_owned();
        self.instructions
            .iter()
            .filter(move |i| i.keyword == keyword)
    }
}

/// The exec (JSON array) form of `args`, as `ENTRYPOINT`, `CMD` and
/// `HEALTHCHECK ... CMD` take it; `None` for the shell form.
pub fn exec_form(args: &str) -> Option<Vec<String>> {
    let args = args.trim();
    if !args.starts_with('[') {
        return None;
    }
    serde_json::from_str(args).ok()
}

/// A `HEALTHCHECK` split into its `--name=value` options and its command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// `interval`, `timeout`, `start-period`, `retries`, ... as written.
    pub options: BTreeMap<String, String>,
    /// The command's exec form; `None` for a shell-form command.
    pub command: Option<Vec<String>>,
}

/// Parses the arguments of `HEALTHCHECK [options] CMD <command>`.
pub fn parse_healthcheck(args: &str) -> anyhow::Result<Healthcheck> {
    let mut options = BTreeMap::new();
    let mut rest = args.trim();
    while let Some(option) = rest.strip_prefix("--") {
        let (option, after) = option
            .split_once(char::is_whitespace)
            .unwrap_or((option, ""));
        let (name, value) = option
            .split_once('=')
            .with_context(|| format!("HEALTHCHECK option --{option} has no value"))?;
        options.insert(name.to_owned(), value.to_owned());
        rest = after.trim_start();
    }
    let command = rest
        .strip_prefix("CMD")
        .with_context(|| format!("HEALTHCHECK without CMD: {args}"))?;
    Ok(Healthcheck {
        options,
        command: exec_form(command),
    })
}

/// A Docker duration (`10s`, `1m30s`, `500ms`) in milliseconds.
pub fn duration_ms(text: &str) -> anyhow::Result<u64> {
    let mut total = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: u64 = rest[..digits]
            .parse()
            .with_context(|| format!("duration {text:?}"))?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            other => bail!("duration {text:?} has unit {other:?}"),
        };
        total += number * scale;
        rest = &rest[unit..];
    }
    Ok(total)
}

/// The file's instructions: comment and empty lines dropped (also inside a
/// continuation, as Docker does), continuations joined.
fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        // Docker skips empty lines inside a continuation too.
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(continued) => {
                pending.push_str(continued.trim());
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                let line = std::mem::take(&mut pending);
                let line = line.trim();
                let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                out.push(Instruction {
                    keyword: keyword.to_ascii_uppercase(),
                    args: args.trim().to_owned(),
                });
            }
        }
    }
    out
}

fn parse_from(args: &str) -> anyhow::Result<Stage> {
    let words: Vec<&str> = args
        .split_whitespace()
        .filter(|word| !word.starts_with("--"))
        .collect();
    let (base, name) = match words.as_slice() {
        [base] => (base, None),
        [base, as_, name] if as_.eq_ignore_ascii_case("as") => (base, Some(name.to_string())),
        _ => bail!("FROM {args} is not `FROM <image> [AS <name>]`"),
    };
    Ok(Stage {
        name,
        base: base.to_string(),
        instructions: Vec::new(),
    })
}

/// `ENV KEY=VALUE ...` (values unquoted or in double quotes without spaces
/// to escape) or the legacy `ENV KEY VALUE`.
fn parse_env(args: &str) -> anyhow::Result<Vec<(String, String)>> {
    let first = args.split_whitespace().next().unwrap_or_default();
    if !first.contains('=') {
        let (key, value) = args
            .split_once(char::is_whitespace)
            .with_context(|| format!("ENV {args} sets nothing"))?;
        return Ok(vec![(key.to_owned(), value.trim().to_owned())]);
    }
    args.split_whitespace()
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .with_context(|| format!("ENV {args}: {pair} is not KEY=VALUE"))?;
            Ok((key.to_owned(), value.trim_matches('"').to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"# syntax=docker/dockerfile:1
ARG VERSION=1
FROM rust:1 AS builder
RUN set -eu; \
    # a comment inside a continuation
    echo one; \
    echo two

FROM base:tag AS runtime
ENV A=1 \
    B="two"
USER 10001:10001

from runtime as app
ENV B=3
HEALTHCHECK --interval=10s --timeout=1m30s CMD ["/bin/app", "healthcheck"]
ENTRYPOINT ["/bin/app"]
"#;

    #[test]
    fn stages_inherit_from_the_stage_they_are_built_on() {
        let file = Dockerfile::parse(SAMPLE).unwrap();
        assert_eq!(file.stages.len(), 3);
        let builder = file.stage("builder").unwrap();
        assert_eq!(builder.instructions.len(), 1);
        assert_eq!(builder.instructions[0].args, "set -eu; echo one; echo two");

        assert_eq!(file.root_image("app").unwrap(), "base:tag");
        assert_eq!(
            file.effective("app", "USER").unwrap().unwrap().args,
            "10001:10001"
        );
        assert_eq!(file.effective("builder", "USER").unwrap(), None);
        let env = file.env("app").unwrap();
        assert_eq!(env["A"], "1");
        assert_eq!(env["B"], "3");
        assert_eq!(file.env("runtime").unwrap()["B"], "two");
    }

    #[test]
    fn healthchecks_and_entrypoints_are_read_in_exec_form() {
        let file = Dockerfile::parse(SAMPLE).unwrap();
        let check = file.effective("app", "HEALTHCHECK").unwrap().unwrap();
        let check = parse_healthcheck(&check.args).unwrap();
        assert_eq!(check.options["interval"], "10s");
        assert_eq!(duration_ms(&check.options["timeout"]).unwrap(), 90_000);
        assert_eq!(
            check.command.unwrap(),
            ["/bin/app".to_owned(), "healthcheck".to_owned()]
        );
        let entrypoint = file.effective("app", "ENTRYPOINT").unwrap().unwrap();
        assert_eq!(exec_form(&entrypoint.args).unwrap(), ["/bin/app"]);
        assert_eq!(exec_form("/bin/sh -c app"), None);
        assert_eq!(
            parse_healthcheck("CMD curl -f http://x/").unwrap().command,
            None
        );
    }

    #[test]
    fn malformed_instructions_are_refused() {
        assert!(Dockerfile::parse("RUN true\nFROM x").is_err());
        assert!(Dockerfile::parse("FROM a b c d").is_err());
        assert!(duration_ms("10 seconds").is_err());
        assert!(parse_healthcheck("--interval CMD [\"x\"]").is_err());
    }
}
