//! etcdctl's ASCII tables (olekukonko/tablewriter as etcdctl configures it), reproduced exactly:
//! centred upper-case headers, right-aligned cells, and long cells word-wrapped at 30 columns with
//! tablewriter's minimum-raggedness algorithm.

/// tablewriter's default maximum column width before wrapping.
const MAX_COLUMN_WIDTH: usize = 30;
/// tablewriter's penalty for a line longer than the limit.
const OVERLONG_PENALTY: i64 = 100_000;

/// Renders a table with the given headers and rows, every line ending in `\n`.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let columns = headers.len();
    let header_cells: Vec<Vec<String>> = headers.iter().map(|h| wrap_cell(&title(h))).collect();
    let row_cells: Vec<Vec<Vec<String>>> = rows
        .iter()
        .map(|row| {
            (0..columns)
                .map(|i| wrap_cell(row.get(i).map(String::as_str).unwrap_or("")))
                .collect()
        })
        .collect();
    let mut widths = vec![0usize; columns];
    for cells in std::iter::once(&header_cells).chain(row_cells.iter()) {
        for (i, lines) in cells.iter().enumerate() {
            for line in lines {
                widths[i] = widths[i].max(width(line));
            }
        }
    }
    let separator = {
        let mut s = String::from("+");
        for w in &widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s.push('\n');
        s
    };
    let mut out = separator.clone();
    push_row(&mut out, &header_cells, &widths, center);
    out.push_str(&separator);
    for cells in &row_cells {
        push_row(&mut out, cells, &widths, pad_left);
    }
    out.push_str(&separator);
    out
}

fn push_row(
    out: &mut String,
    cells: &[Vec<String>],
    widths: &[usize],
    pad: fn(&str, usize) -> String,
) {
    let height = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
    for line in 0..height {
        out.push('|');
        for (i, lines) in cells.iter().enumerate() {
            let text = lines.get(line).map(String::as_str).unwrap_or("");
            out.push(' ');
            out.push_str(&pad(text, widths[i]));
            out.push_str(" |");
        }
        out.push('\n');
    }
}

/// tablewriter's `Title`: `_` (and `.` between non-digits) become spaces, trimmed, upper-cased.
fn title(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let is_num_or_space = |c: char| c.is_ascii_digit() || c == ' ';
    let mapped: String = chars
        .iter()
        .enumerate()
        .map(|(i, &c)| match c {
            '_' => ' ',
            '.' if (i != 0 && !is_num_or_space(chars[i - 1]))
                || (i + 1 != chars.len() && !is_num_or_space(chars[i + 1])) =>
            {
                ' '
            }
            other => other,
        })
        .collect();
    let trimmed = mapped.trim();
    if trimmed.is_empty() && !name.is_empty() {
        return " ".into();
    }
    trimmed.to_uppercase()
}

/// Display width; etcd's tables hold ASCII, where this equals the character count.
fn width(s: &str) -> usize {
    s.chars().count()
}

fn center(s: &str, w: usize) -> String {
    let gap = w.saturating_sub(width(s));
    let left = gap / 2;
    format!("{}{s}{}", " ".repeat(left), " ".repeat(gap - left))
}

fn pad_left(s: &str, w: usize) -> String {
    format!("{}{s}", " ".repeat(w.saturating_sub(width(s))))
}

/// tablewriter's `parseDimension` with auto-wrap on: each paragraph wrapped to min(width, 30).
fn wrap_cell(text: &str) -> Vec<String> {
    let paragraphs: Vec<&str> = text.split('\n').collect();
    let widest = paragraphs.iter().map(|p| width(p)).max().unwrap_or(0);
    let limit = widest.min(MAX_COLUMN_WIDTH);
    let mut lines = Vec::new();
    for (i, paragraph) in paragraphs.iter().enumerate() {
        if i > 0 {
            lines.push(" ".to_string());
        }
        lines.extend(wrap_paragraph(paragraph, limit));
    }
    lines
}

/// tablewriter's `WrapString`: words split on single spaces, minimum raggedness.
fn wrap_paragraph(text: &str, limit: usize) -> Vec<String> {
    let words: Vec<&str> = text.split(' ').collect();
    let limit = words.iter().map(|w| width(w)).max().unwrap_or(0).max(limit) as i64;
    let n = words.len();
    // line_len(i, j): width of words[i..=j] joined by single spaces.
    let prefix: Vec<i64> = std::iter::once(0)
        .chain(words.iter().scan(0i64, |acc, w| {
            *acc += width(w) as i64;
            Some(*acc)
        }))
        .collect();
    let line_len = |i: usize, j: usize| prefix[j + 1] - prefix[i] + (j - i) as i64;
    let mut cost = vec![i64::from(i32::MAX); n];
    let mut next_break = vec![n; n];
    for i in (0..n).rev() {
        if line_len(i, n - 1) <= limit {
            cost[i] = 0;
            next_break[i] = n;
            continue;
        }
        for j in i + 1..n {
            let d = limit - line_len(i, j - 1);
            let mut c = d * d + cost[j];
            if line_len(i, j - 1) > limit {
                c += OVERLONG_PENALTY;
            }
            if c < cost[i] {
                cost[i] = c;
                next_break[i] = j;
            }
        }
    }
    let mut lines = Vec::new();
    let mut i = 0;
    while i < n {
        let end = next_break[i].max(i + 1);
        lines.push(words[i..end].join(" "));
        i = end;
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_etcdctl_health_table() {
        let table = render(
            &["endpoint", "health", "took", "error"],
            &[vec![
                "127.0.0.1:2379".into(),
                "true".into(),
                "1.2ms".into(),
                String::new(),
            ]],
        );
        let expected = "\
+----------------+--------+-------+-------+
|    ENDPOINT    | HEALTH | TOOK  | ERROR |
+----------------+--------+-------+-------+
| 127.0.0.1:2379 |   true | 1.2ms |       |
+----------------+--------+-------+-------+
";
        assert_eq!(table, expected);
    }

    #[test]
    fn long_cells_wrap_at_thirty_columns() {
        let lines = wrap_cell("failed to commit proposal: context deadline exceeded");
        assert!(lines.iter().all(|l| l.len() <= 30), "{lines:?}");
        assert_eq!(
            lines.join(" "),
            "failed to commit proposal: context deadline exceeded"
        );
        assert_eq!(title("total_size"), "TOTAL SIZE");
    }
}
