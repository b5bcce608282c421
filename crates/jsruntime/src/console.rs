//! What a script writes to `console`, kept within the step record's bounds.

use fluxolab_workflows::code::{MAX_LOG_BYTES, MAX_LOG_LINES};

/// The lines a script logged, at most [`MAX_LOG_LINES`] lines and [`MAX_LOG_BYTES`]
/// bytes; what does not fit is counted and summed up in one last line.
#[derive(Debug, Default)]
pub(crate) struct Console {
    lines: Vec<String>,
    bytes: usize,
    dropped: usize,
}

impl Console {
    /// Adds `line`, cut to what is left of the byte budget.
    pub(crate) fn push(&mut self, mut line: String) {
        let left = MAX_LOG_BYTES.saturating_sub(self.bytes);
        if self.lines.len() >= MAX_LOG_LINES || left == 0 {
            self.dropped += 1;
            return;
        }
        if line.len() > left {
            let mut end = left;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
            line.push('…');
        }
        self.bytes += line.len();
        self.lines.push(line);
    }

    /// Whether another line would be dropped (so it need not be formatted).
    pub(crate) fn is_full(&self) -> bool {
        self.lines.len() >= MAX_LOG_LINES || self.bytes >= MAX_LOG_BYTES
    }

    /// The lines kept, and a note of how many were dropped.
    pub(crate) fn into_lines(self) -> Vec<String> {
        let mut lines = self.lines;
        if self.dropped > 0 {
            lines.push(format!(
                "[{} more console lines dropped: a step keeps {MAX_LOG_LINES} lines, {MAX_LOG_BYTES} bytes]",
                self.dropped
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_past_the_bounds_are_counted_not_kept() {
        let mut console = Console::default();
        for index in 0..150 {
            console.push(format!("line {index}"));
        }
        let lines = console.into_lines();
        assert_eq!(lines.len(), MAX_LOG_LINES + 1);
        assert_eq!(lines[0], "line 0");
        assert!(lines[MAX_LOG_LINES].starts_with("[50 more console lines dropped"));
    }

    #[test]
    fn a_long_line_is_cut_at_the_byte_budget_on_a_char_boundary() {
        let mut console = Console::default();
        console.push("é".repeat(MAX_LOG_BYTES));
        console.push("next".to_owned());
        let lines = console.into_lines();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].len() <= MAX_LOG_BYTES + '…'.len_utf8());
        assert!(lines[0].ends_with('…'));
        assert!(lines[1].starts_with("[1 more console lines dropped"));
    }
}
