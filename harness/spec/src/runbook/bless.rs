//! Blessing a runbook: the page rewritten with what the commands really printed, in its
//! output blocks, and the last run's results in its results region. Everything else stays
//! byte for byte, so the rewrite can be committed as a reviewable diff.

use std::ops::Range;

use super::expect_output::rewrite;
use super::parse::{self, Block};
use super::ExpectedOutput;

const OPEN: &str = "<!-- firedrill:results -->";
const CLOSE: &str = "<!-- /firedrill:results -->";

/// `source` with each output block in `outputs` rewritten to its actual output (blocks
/// that still match are left alone; in the others `[..]` and `...` lines stay where they
/// still match), and with the results region holding `results` (Markdown) when given: the
/// region is added at the end of the page when it has none.
///
/// The outputs must come from a plan of this same text: one whose range no longer frames
/// an output block of `source` is left out rather than written into the wrong place.
pub fn bless(source: &str, outputs: &[(&ExpectedOutput, &str)], results: Option<&str>) -> String {
    let page = parse::page(source);
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    for (expected, actual) in outputs {
        let Some(block) = page
            .blocks
            .iter()
            .find(|b| b.content_range == expected.range && b.fence.is_some())
        else {
            continue;
        };
        if edits
            .iter()
            .any(|(r, _)| r.start <= block.range.start && block.range.end <= r.end)
        {
            continue;
        }
        if expected.check(actual).is_ok() {
            continue;
        }
        edits.push(rewrite_block(
            source,
            block,
            &rewrite(&block.content, actual, expected.options),
        ));
    }
    let mut out = apply(source, edits);
    if let Some(results) = results {
        let body = format!("\n{}\n\n", results.trim_matches('\n'));
        let body = if results.trim().is_empty() {
            "\n".to_string()
        } else {
            body
        };
        // Offsets into `out` are those of `source` only before the first edit: the region
        // is found again.
        match parse::page(&out).results {
            Some(region) => out.replace_range(region, &body),
            None => {
                if !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(&format!("\n{OPEN}\n{body}{CLOSE}\n"));
            }
        }
    }
    out
}

/// The edit that puts `lines` in `block`: its contents only, unless a line of the output
/// would close the fence, in which case the whole block gets a longer one.
fn rewrite_block(source: &str, block: &Block, lines: &str) -> (Range<usize>, String) {
    let Some(fence) = &block.fence else {
        return (block.content_range.clone(), lines.to_string());
    };
    let contents: String = lines
        .lines()
        .map(|l| {
            if l.is_empty() {
                format!("{}\n", fence.prefix.trim_end())
            } else {
                format!("{}{l}\n", fence.prefix)
            }
        })
        .collect();
    let longest_run = lines
        .lines()
        .map(|l| {
            let l = l.trim_start();
            l.len() - l.trim_start_matches(fence.ch).len()
        })
        .max()
        .unwrap_or(0);
    if longest_run < fence.len {
        return (block.content_range.clone(), contents);
    }
    let marks = fence.ch.to_string().repeat(longest_run + 1);
    let closing_prefix = &source[block.content_range.end..block.range.end];
    let closing_prefix = closing_prefix.trim_end_matches(fence.ch);
    (
        block.range.clone(),
        format!("{marks}{}\n{contents}{closing_prefix}{marks}", fence.info),
    )
}

fn apply(source: &str, mut edits: Vec<(Range<usize>, String)>) -> String {
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(source.len());
    let mut at = 0;
    for (range, text) in edits {
        out.push_str(&source[at..range.start]);
        out.push_str(&text);
        at = range.end;
    }
    out.push_str(&source[at..]);
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const PAGE: &str = r#"---
name: bless-me
description: A page to bless.
cluster: { compose: c.yaml }
load: { profile: p.yaml }
---

# Drill

Intro *text* stays.

## Check the members

```sh {node=etcd1}
etcdctl member list
```

```text {output}
etcd1, started, took [..]
...
end
```

- In a list:

  ```sh {node=etcd1}
  etcdctl get k
  ```

  ```text {output unordered}
  b
  a
  ```

## Results

<!-- firedrill:results -->
old results
<!-- /firedrill:results -->

Trailing words.
"#;

    fn outputs(text: &str) -> Vec<ExpectedOutput> {
        let (_, runbook) = super::super::read_str(Path::new("bless.md"), text).unwrap();
        runbook
            .sources
            .iter()
            .filter_map(|s| s.output.clone())
            .collect()
    }

    #[test]
    fn the_same_outputs_leave_the_page_byte_for_byte() {
        let out = outputs(PAGE);
        assert_eq!(out.len(), 2);
        let blessed = bless(
            PAGE,
            &[
                (&out[0], "etcd1, started, took 3ms\nx\ny\nend\n"),
                (&out[1], "a\nb\n"),
            ],
            None,
        );
        assert_eq!(blessed, PAGE);
        assert_eq!(bless(PAGE, &[], None), PAGE);
    }

    #[test]
    fn new_outputs_keep_wildcards_and_nothing_else_changes() {
        let out = outputs(PAGE);
        let blessed = bless(
            PAGE,
            &[
                (&out[0], "etcd1, started, took 3ms\nx\nthe end  \r\n"),
                (&out[1], "c\na\n"),
            ],
            None,
        );
        let expected = PAGE
            .replace(
                "etcd1, started, took [..]\n...\nend\n",
                "etcd1, started, took [..]\n...\nthe end\n",
            )
            .replace("  b\n  a\n", "  c\n  a\n");
        assert_eq!(blessed, expected);
        // Blessed once, blessing again with the same outputs changes nothing.
        let again = outputs(&blessed);
        assert_eq!(
            bless(
                &blessed,
                &[
                    (&again[0], "etcd1, started, took 3ms\nx\nthe end\n"),
                    (&again[1], "c\na\n")
                ],
                None
            ),
            blessed
        );
    }

    #[test]
    fn the_results_region_is_rewritten_or_added() {
        let blessed = bless(PAGE, &[], Some("**PASS** on 2026-01-01, seed 7\n"));
        assert_eq!(
            blessed,
            PAGE.replace(
                "<!-- firedrill:results -->\nold results\n",
                "<!-- firedrill:results -->\n\n**PASS** on 2026-01-01, seed 7\n\n"
            )
        );
        assert_eq!(
            bless(&blessed, &[], Some("**PASS** on 2026-01-01, seed 7")),
            blessed
        );
        let bare = "---\nname: x\n---\n\ntext";
        assert_eq!(
            bless(bare, &[], Some("| a |\n|---|\n")),
            "---\nname: x\n---\n\ntext\n\n<!-- firedrill:results -->\n\n| a |\n|---|\n\n<!-- /firedrill:results -->\n"
        );
        // Outputs and results together: the region is found after the blocks changed.
        let out = outputs(PAGE);
        let both = bless(PAGE, &[(&out[1], "a\nb\nc\n")], Some("new"));
        assert!(both.contains("  a\n  b\n  c\n"), "{both}");
        assert!(both.contains("-->\n\nnew\n\n<!--"), "{both}");
    }

    #[test]
    fn an_output_with_a_fence_in_it_gets_a_longer_fence() {
        let out = outputs(PAGE);
        let blessed = bless(PAGE, &[(&out[1], "```\nx\n")], None);
        assert!(
            blessed.contains("  ````text {output unordered}\n  ```\n  x\n  ````\n"),
            "{blessed}"
        );
        assert_eq!(outputs(&blessed)[1].text, "```\nx\n");
    }

    #[test]
    fn ranges_from_another_text_are_left_out() {
        let mut stale = outputs(PAGE)[0].clone();
        stale.range = 3..9;
        assert_eq!(bless(PAGE, &[(&stale, "whatever")], None), PAGE);
    }
}
