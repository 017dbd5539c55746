//! Tables: aligned columns under a header for a person at a terminal, tab-separated
//! rows without a header for a script (as `gh` does), or JSON when asked.

use std::io::IsTerminal;

use super::json::Json;

/// How a command prints what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Aligned columns with a header: stdout is a terminal.
    Aligned,
    /// Tab-separated rows, no header: stdout is a pipe or a file.
    Tabs,
    /// One JSON document (`--json`).
    Json,
}

impl Style {
    /// `--json` if given, else by whether stdout is a terminal.
    pub fn detect(json: bool) -> Style {
        if json {
            Style::Json
        } else if std::io::stdout().is_terminal() {
            Style::Aligned
        } else {
            Style::Tabs
        }
    }

    /// Prints `tables` (a blank line between two) or, for JSON, what `json` makes.
    pub fn print(self, tables: &[&Table], json: impl FnOnce() -> Json) {
        match self {
            Style::Json => println!("{}", json()),
            Style::Aligned | Style::Tabs => {
                let text: Vec<String> =
                    tables.iter().map(|t| t.render(self == Style::Aligned)).collect();
                print!("{}", text.join("\n"));
            }
        }
    }
}

/// Rows under named columns.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(header: &[&'static str]) -> Table {
        Table { header: header.to_vec(), rows: Vec::new() }
    }

    /// Adds a row; it must have one cell per column.
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len(), "a cell per column");
        self.rows.push(cells);
    }

    /// The table as text: aligned with a header, or tab-separated without one. A cell's
    /// tabs and newlines become spaces, so every row stays one line of fields.
    pub fn render(&self, aligned: bool) -> String {
        let clean = |c: &str| c.replace(['\t', '\n', '\r'], " ");
        let mut out = String::new();
        if !aligned {
            for row in &self.rows {
                let cells: Vec<String> = row.iter().map(|c| clean(c)).collect();
                out.push_str(&cells.join("\t"));
                out.push('\n');
            }
            return out;
        }
        let header: Vec<String> = self.header.iter().map(|h| h.to_string()).collect();
        let rows: Vec<Vec<String>> = std::iter::once(header)
            .chain(self.rows.iter().map(|r| r.iter().map(|c| clean(c)).collect()))
            .collect();
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        for row in &rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let pad = widths[i] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A cell for an optional value: `-` when absent, as Kafka's tools print it.
pub fn cell<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let mut t = Table::new(&["TOPIC", "PARTITION", "LEADER"]);
        t.row(vec!["orders".into(), "0".into(), "1".into()]);
        t.row(vec!["a\tb".into(), "10".into(), cell(None::<i32>)]);
        t
    }

    #[test]
    fn aligned_for_people_with_a_header() {
        assert_eq!(
            table().render(true),
            "TOPIC   PARTITION  LEADER\norders  0          1\na b     10         -\n"
        );
    }

    #[test]
    fn tab_separated_for_scripts_without_a_header() {
        assert_eq!(table().render(false), "orders\t0\t1\na b\t10\t-\n");
    }
}
