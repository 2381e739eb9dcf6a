//! The dry run's findings: one line per check, `ok`, `warn` or `fail` and
//! why, or the same as a JSON array.

use crate::progress::json_string;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    /// Worth knowing; the run would go ahead.
    Warn,
    /// The run would fail (or do something the user did not ask for).
    Fail,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub status: Status,
    /// What was checked: `source`, `target permissions`, `versions`, …
    pub name: String,
    /// Why, in one line.
    pub message: String,
}

/// Every finding, in the order they were made.
#[derive(Debug, Default)]
pub struct Checks {
    pub list: Vec<Check>,
}

impl Checks {
    pub fn add(&mut self, status: Status, name: impl Into<String>, message: impl Into<String>) {
        self.list.push(Check {
            status,
            name: name.into(),
            message: message.into(),
        });
    }

    pub fn ok(&mut self, name: impl Into<String>, message: impl Into<String>) {
        self.add(Status::Ok, name, message);
    }

    pub fn warn(&mut self, name: impl Into<String>, message: impl Into<String>) {
        self.add(Status::Warn, name, message);
    }

    pub fn fail(&mut self, name: impl Into<String>, message: impl Into<String>) {
        self.add(Status::Fail, name, message);
    }

    /// Findings of `status`.
    pub fn count(&self, status: Status) -> usize {
        self.list.iter().filter(|c| c.status == status).count()
    }

    /// The exit status: 1 when any check failed.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.count(Status::Fail) > 0)
    }

    /// One line per check (`fail` padded, so the messages line up).
    pub fn lines(&self) -> Vec<String> {
        self.list
            .iter()
            .map(|c| format!("{:<4}  {}: {}", c.status.name(), c.name, c.message))
            .collect()
    }

    /// The closing line.
    pub fn verdict(&self) -> String {
        let (warns, fails) = (self.count(Status::Warn), self.count(Status::Fail));
        if fails == 0 {
            format!("dry run: nothing blocks the run ({warns} warnings); nothing was written")
        } else {
            format!("dry run: {fails} checks failed, {warns} warnings; nothing was written")
        }
    }

    /// The checks as one JSON object holding them as an array.
    pub fn json(&self) -> String {
        let checks: Vec<String> = self
            .list
            .iter()
            .map(|c| {
                format!(
                    "{{\"check\":{},\"status\":\"{}\",\"message\":{}}}",
                    json_string(&c.name),
                    c.status.name(),
                    json_string(&c.message)
                )
            })
            .collect();
        format!(
            "{{\"dry_run\":true,\"ok\":{},\"warnings\":{},\"failures\":{},\"checks\":[{}]}}",
            self.count(Status::Ok),
            self.count(Status::Warn),
            self.count(Status::Fail),
            checks.join(",")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_json_and_exit_status() {
        let mut c = Checks::default();
        c.ok("source", "reached");
        c.warn("keys", "the target holds 3 keys");
        assert_eq!(c.exit_code(), 0);
        assert!(c.verdict().contains("nothing blocks the run (1 warnings)"));
        c.fail("target", "\"pw\" refused");
        assert_eq!(c.exit_code(), 1);
        assert_eq!(c.lines()[0], "ok    source: reached");
        assert_eq!(c.lines()[2], "fail  target: \"pw\" refused");
        let json = c.json();
        assert!(
            json.starts_with(
                "{\"dry_run\":true,\"ok\":1,\"warnings\":1,\"failures\":1,\"checks\":["
            ),
            "{json}"
        );
        assert!(
            json.contains(
                "{\"check\":\"target\",\"status\":\"fail\",\"message\":\"\\\"pw\\\" refused\"}"
            ),
            "{json}"
        );
    }
}
