//! How commands print what they read: an aligned table for people, or
//! (`--output json`) the admin API's JSON for scripts, as `aws --output json`.

use clap::{Args, ValueEnum};
use serde_json::Value;

/// `--output text|json`.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// An aligned table (or a line) for people.
    #[default]
    Text,
    /// JSON, indented, for scripts.
    Json,
}

#[derive(Args, Clone, Copy, Debug)]
pub struct OutputArgs {
    /// How to print the answer: `text` (a table) or `json` (for scripts).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

impl OutputArgs {
    /// Prints `json` when JSON was asked for, and says so: the caller
    /// prints text otherwise.
    pub fn json(&self, json: &Value) -> bool {
        if self.output == Format::Json {
            crate::client::print_json(json);
        }
        self.output == Format::Json
    }
}

/// Columns as wide as their widest cell, two spaces apart; the last column
/// is not padded.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table { rows: vec![header.iter().map(|h| h.to_string()).collect()] }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table's text, a line per row.
    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| self.rows.iter().filter_map(|r| r.get(c)).map(|cell| cell.chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    pub fn print(&self) {
        out!("{}", self.render());
    }
}

/// A JSON string's text, or nothing.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let mut t = Table::new(&["NAME", "N", "NOTE"]);
        t.row(vec!["ItemsFunction".into(), "12".into(), "a note".into()]);
        t.row(vec!["é".into(), "1".into(), String::new()]);
        assert_eq!(t.render(), "NAME           N   NOTE\nItemsFunction  12  a note\né              1\n");
    }
}
