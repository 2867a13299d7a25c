//! Aligned text tables for people, pretty JSON for scripts, and the small formatting helpers
//! both share.

use serde_json::Value;

/// Columns with a header row; numbers are right-aligned, text left-aligned.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table { headers: headers.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        let mut numeric = vec![true; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
                numeric[i] &= looks_numeric(cell);
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let mut text = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                let pad = width.saturating_sub(cell.chars().count());
                if i > 0 {
                    text.push_str("  ");
                }
                if numeric[i] {
                    text.push_str(&" ".repeat(pad));
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.push_str(&" ".repeat(pad));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&self.headers);
        for row in &self.rows {
            line(row);
        }
        out
    }

    pub fn print(&self) {
        print!("{}", self.render());
    }
}

fn looks_numeric(cell: &str) -> bool {
    cell == "-" || (!cell.is_empty() && cell.parse::<f64>().is_ok())
}

/// Prints `value` as indented JSON on stdout.
pub fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
}

/// A JSON field as table text: strings bare, null or missing as "-".
pub fn cell(value: &Value, field: &str) -> String {
    text(value.get(field).unwrap_or(&Value::Null))
}

/// A JSON value as table text.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(s) if s.is_empty() => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Bytes as B, KiB, MiB, GiB with one decimal.
pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A field holding a byte count as human text ("-" when absent).
pub fn bytes_cell(value: &Value, field: &str) -> String {
    value.get(field).and_then(Value::as_f64).map(human_bytes).unwrap_or_else(|| "-".to_string())
}

/// The array in `value`, or an error naming what was expected (guards against a changed API).
pub fn array<'a>(value: &'a Value, what: &str) -> anyhow::Result<&'a Vec<Value>> {
    value.as_array().ok_or_else(|| anyhow::anyhow!("unexpected answer from the admin API: {what} is not a list"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_text_left_and_numbers_right() {
        let mut t = Table::new(&["NAME", "PARTITIONS"]);
        t.row(vec!["orders".into(), "3".into()]);
        t.row(vec!["a".into(), "12".into()]);
        assert_eq!(t.render(), "NAME    PARTITIONS\norders           3\na               12\n");
    }

    #[test]
    fn formats_bytes() {
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
        assert_eq!(human_bytes(3.0 * 1024.0 * 1024.0), "3.0 MiB");
    }
}
