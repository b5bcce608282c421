//! The MCP server's settings (`/api/mcp`).

use std::time::Duration;

use super::Reader;

/// How the MCP server waits and how long its sessions live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct McpSettings {
    /// `MCP_CALL_TIMEOUT_SECONDS` (default 30, 1–300): how long a `tools/call` waits for
    /// its run's answer before it returns the execution id (the run goes on).
    pub call_timeout: Duration,
    /// `MCP_SESSION_IDLE_SECONDS` (default 3600, 60–604800): how long an MCP session
    /// lives without a request; then the client gets 404 and initializes again.
    pub session_idle: Duration,
}

impl<F: Fn(&str) -> Option<String>> Reader<F> {
    pub(super) fn mcp(&mut self) -> McpSettings {
        let call_timeout = self.number("MCP_CALL_TIMEOUT_SECONDS", 30, 1..=300);
        let session_idle = self.number("MCP_SESSION_IDLE_SECONDS", 3600, 60..=7 * 24 * 3600);
        McpSettings {
            call_timeout: Duration::from_secs(call_timeout),
            session_idle: Duration::from_secs(session_idle),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(
        pairs: &'static [(&'static str, &'static str)],
    ) -> Reader<impl Fn(&str) -> Option<String>> {
        Reader::new(move |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn mcp_settings_have_defaults_and_are_checked() {
        let mut defaults = reader(&[]);
        assert_eq!(
            defaults.mcp(),
            McpSettings {
                call_timeout: Duration::from_secs(30),
                session_idle: Duration::from_secs(3600),
            }
        );
        assert!(defaults.problems.is_empty());

        let mut set = reader(&[
            ("MCP_CALL_TIMEOUT_SECONDS", "5"),
            ("MCP_SESSION_IDLE_SECONDS", "120"),
        ]);
        assert_eq!(set.mcp().call_timeout, Duration::from_secs(5));

        let mut wrong = reader(&[
            ("MCP_CALL_TIMEOUT_SECONDS", "0"),
            ("MCP_SESSION_IDLE_SECONDS", "soon"),
        ]);
        wrong.mcp();
        let variables: Vec<_> = wrong
            .problems
            .iter()
            .map(|problem| problem.variable)
            .collect();
        assert_eq!(
            variables,
            ["MCP_CALL_TIMEOUT_SECONDS", "MCP_SESSION_IDLE_SECONDS"]
        );
    }
}
