//! Markdown → what a runbook is made of: the front matter, the fenced blocks with their
//! byte ranges, the heading and section each sits under and the prose before it, and the
//! results region. pulldown-cmark parses; this keeps what a runbook needs.

use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::Section;

const RESULTS_OPEN: &str = "firedrill:results";
const RESULTS_CLOSE: &str = "/firedrill:results";

#[derive(Debug, Default)]
pub(crate) struct Page {
    pub front_matter: Option<FrontMatter>,
    pub blocks: Vec<Block>,
    /// The results region's contents, between its two comments.
    pub results: Option<Range<usize>>,
    pub problems: Vec<Problem>,
}

/// A mistake in the page's structure, at a byte offset.
#[derive(Debug, PartialEq)]
pub(crate) struct Problem {
    pub offset: usize,
    pub message: String,
}

#[derive(Debug)]
pub(crate) struct FrontMatter {
    pub text: String,
    /// Where its first line starts (the line after the opening `---`).
    pub offset: usize,
}

#[derive(Debug)]
pub(crate) struct Block {
    /// The whole block, from its opening fence to the end of its closing one.
    pub range: Range<usize>,
    /// Its contents, without the indentation of the list or quote it is in.
    pub content: String,
    /// Its contents in the file: from the line after the opening fence to the closing one.
    pub content_range: Range<usize>,
    /// `None`: an indented code block, which is always documentation.
    pub fence: Option<Fence>,
    pub heading: Option<Heading>,
    pub section: Section,
    /// The heading that put the block in its section, e.g. "Troubleshooting".
    pub section_title: String,
    /// The paragraphs between the heading (or the block before) and this block.
    pub prose: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Fence {
    /// What comes before the fence on the opening line, as spaces (a quote's `>` kept):
    /// what each line of the contents starts with in the file.
    pub prefix: String,
    pub ch: char,
    pub len: usize,
    /// The info string as written (escapes not processed), and where it starts.
    pub info: String,
    pub info_offset: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Heading {
    /// As written, without a leading "3." or "3)".
    pub text: String,
    /// Counts the page's headings: blocks with the same index sit under the same heading.
    pub index: usize,
}

/// 1-based line and column (in characters) of byte offsets.
pub(crate) struct LineIndex<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    pub fn new(text: &'t str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    pub fn position(&self, offset: usize) -> (u64, u64) {
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let column = self
            .text
            .get(start..offset.min(self.text.len()))
            .map_or(0, |t| t.chars().count());
        (line as u64 + 1, column as u64 + 1)
    }
}

/// What a heading opens.
fn classify(title: &str) -> Option<Section> {
    let t = title.trim().trim_end_matches(':').trim().to_lowercase();
    match t.as_str() {
        "rollback" | "roll back" => Some(Section::Rollback),
        "verification" => Some(Section::Verification),
        "when to use" | "prerequisites" | "troubleshooting" | "success metrics" => {
            Some(Section::Documentation)
        }
        _ => None,
    }
}

/// Runbooks number their steps; the step's id does that already.
fn without_ordinal(title: &str) -> &str {
    let t = title.trim();
    let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    match t[digits..].strip_prefix(['.', ')']) {
        Some(rest) if digits > 0 && rest.starts_with(char::is_whitespace) => rest.trim_start(),
        _ => t,
    }
}

/// The page's structure. Never fails: what it cannot make sense of is in `problems`.
pub(crate) fn page(text: &str) -> Page {
    let mut page = Page::default();
    let options = Options::ENABLE_YAML_STYLE_METADATA_BLOCKS
        | Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS;
    // (level, section it opens, its title) for each heading still open.
    let mut open_headings: Vec<(HeadingLevel, Option<Section>, String)> = Vec::new();
    let mut heading: Option<Heading> = None;
    let mut headings = 0;
    let mut prose: Vec<&str> = Vec::new();
    let mut results_open: Option<(usize, usize)> = None;
    // What the Text events belong to right now.
    let mut heading_text: Option<String> = None;
    // A code block's contents, and whether it is fenced.
    let mut code: Option<(String, bool)> = None;
    let mut meta: Option<String> = None;
    for (event, range) in Parser::new_ext(text, options).into_offset_iter() {
        if let Event::Html(html) = &event {
            match marker(html) {
                Some(RESULTS_OPEN) if results_open.is_some() || page.results.is_some() => {
                    page.problems.push(Problem {
                        offset: range.start,
                        message: "a second results region: a page has one, between `<!-- firedrill:results -->` and `<!-- /firedrill:results -->`".into(),
                    })
                }
                Some(RESULTS_OPEN) => results_open = Some((range.start, range.end)),
                Some(_) => match results_open.take() {
                    Some((_, start)) => page.results = Some(start..range.start),
                    None => page.problems.push(Problem {
                        offset: range.start,
                        message: "`<!-- /firedrill:results -->` closes no results region: put `<!-- firedrill:results -->` before it".into(),
                    }),
                },
                None => {}
            }
            continue;
        }
        // The region is the runner's to rewrite: nothing in it is part of the runbook.
        if results_open.is_some() {
            continue;
        }
        match event {
            Event::Start(Tag::MetadataBlock(_)) => meta = Some(String::new()),
            Event::End(TagEnd::MetadataBlock(_)) => {
                let body = meta.take().unwrap_or_default();
                if range.start == 0 {
                    let offset = text.find('\n').map_or(text.len(), |i| i + 1);
                    page.front_matter = Some(FrontMatter { text: body, offset });
                } else {
                    page.problems.push(Problem {
                        offset: range.start,
                        message: "a `---` line, text and another `---` line are read as front matter, which belongs at the top of the page only: use `***` for a horizontal rule".into(),
                    });
                }
            }
            Event::Start(Tag::Heading { .. }) => heading_text = Some(String::new()),
            Event::End(TagEnd::Heading(level)) => {
                let title = heading_text.take().unwrap_or_default();
                while open_headings.last().is_some_and(|(l, ..)| *l >= level) {
                    open_headings.pop();
                }
                open_headings.push((level, classify(without_ordinal(&title)), title.clone()));
                headings += 1;
                heading = Some(Heading {
                    text: without_ordinal(&title).to_string(),
                    index: headings,
                });
                prose.clear();
            }
            Event::Start(Tag::Paragraph) => prose.push(text[range].trim()),
            Event::Start(Tag::CodeBlock(kind)) => {
                code = Some((String::new(), matches!(kind, CodeBlockKind::Fenced(_))))
            }
            Event::End(TagEnd::CodeBlock) => {
                let (content, is_fenced) = code.take().unwrap_or_default();
                let (section, section_title) = open_headings
                    .iter()
                    .rev()
                    .find_map(|(_, s, t)| s.map(|s| (s, t.clone())))
                    .unwrap_or((Section::Procedure, String::new()));
                let (fence, content_range) = if is_fenced {
                    let Some(fence) = fence(text, &range) else {
                        page.problems.push(Problem {
                            offset: range.start,
                            message: "this fenced block is never closed: end it with a line of the same fence (the rest of the page went into it)".into(),
                        });
                        continue;
                    };
                    let block = &text[range.clone()];
                    let open_end = block.find('\n').map_or(range.end, |i| range.start + i + 1);
                    let close_start = block.rfind('\n').map_or(range.end, |i| range.start + i + 1);
                    let content_range = open_end..close_start.max(open_end);
                    if let Some(inner) = inner_fence(text, &content_range, &fence) {
                        let line = text[..range.start].matches('\n').count() + 1;
                        page.problems.push(Problem {
                            offset: inner,
                            message: format!("this line opens a fence inside the block of line {line}: that block is not closed above it; close it (a block that shows a fence needs a longer one of its own)"),
                        });
                        continue;
                    }
                    (Some(fence), content_range)
                } else {
                    (None, range.clone())
                };
                page.blocks.push(Block {
                    range,
                    content,
                    content_range,
                    fence,
                    heading: heading.clone(),
                    section,
                    section_title,
                    prose: prose.join("\n\n"),
                });
                prose.clear();
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading_text.as_mut() {
                    h.push_str(&t);
                } else if let Some((c, _)) = code.as_mut() {
                    c.push_str(&t);
                } else if let Some(m) = meta.as_mut() {
                    m.push_str(&t);
                }
            }
            _ => {}
        }
    }
    if let Some((offset, _)) = results_open {
        page.problems.push(Problem {
            offset,
            message:
                "the results region is never closed: end it with `<!-- /firedrill:results -->`"
                    .into(),
        });
    }
    page
}

/// The comment's word when it is one of the results region's.
fn marker(html: &str) -> Option<&'static str> {
    let inner = html
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim();
    [RESULTS_OPEN, RESULTS_CLOSE]
        .into_iter()
        .find(|m| *m == inner)
}

/// The opening fence of the fenced block at `range`; `None` when no closing fence ends it:
/// pulldown-cmark runs an unclosed fence to the end of the page, as CommonMark says, which
/// would hide the rest of the runbook.
fn fence(text: &str, range: &Range<usize>) -> Option<Fence> {
    let block = &text[range.clone()];
    let ch = block.chars().next()?;
    let len = block.len() - block.trim_start_matches(ch).len();
    let closing = &block[block.rfind('\n')? + 1..];
    let run = closing.trim_start_matches([' ', '>']);
    let n = run.len() - run.trim_start_matches(ch).len();
    if n < len || !run[n..].trim().is_empty() {
        return None;
    }
    let line_start = text[..range.start].rfind('\n').map_or(0, |i| i + 1);
    let prefix = text[line_start..range.start]
        .chars()
        .map(|c| if c == '>' { '>' } else { ' ' })
        .collect();
    let first_line = block.split('\n').next().unwrap_or_default();
    Some(Fence {
        prefix,
        ch,
        len,
        info: first_line[len..].trim_end_matches('\r').to_string(),
        info_offset: range.start + len,
    })
}

/// Where a line of the contents looks like an opening fence (fence characters and an info
/// string). CommonMark takes it as text, but it means the block was left open and runs
/// on into the next one: the page would silently lose a step.
fn inner_fence(text: &str, contents: &Range<usize>, fence: &Fence) -> Option<usize> {
    let mut offset = contents.start;
    for line in text[contents.clone()].split_inclusive('\n') {
        let run = line.trim_start_matches([' ', '>']);
        let n = run.len() - run.trim_start_matches(fence.ch).len();
        if n >= fence.len && !run[n..].trim().is_empty() {
            return Some(offset + (line.len() - run.len()));
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "---\nname: x\n---\n\n# 1. Upgrade\n\nCheck it first.\n\nReally.\n\n```sh {node=etcd1}\necho hi\n```\n\n```text {output}\nhi\n```\n\n## Rollback\n\n- Undo:\n\n  ```sh {node=etcd1}\n  undo\n  ```\n\n### Details\n\n    indented\n\n## Troubleshooting\n\n> ```sh\n> look\n> ```\n\n<!-- firedrill:results -->\n```sh {node=nope}\n```\n<!-- /firedrill:results -->\n";

    #[test]
    fn blocks_with_their_positions_headings_and_sections() {
        let page = page(PAGE);
        assert_eq!(page.problems, []);
        let fm = page.front_matter.as_ref().unwrap();
        assert_eq!((fm.text.as_str(), fm.offset), ("name: x\n", 4));
        let lines = LineIndex::new(PAGE);
        let summary: Vec<_> = page
            .blocks
            .iter()
            .map(|b| {
                (
                    lines.position(b.range.start).0,
                    b.heading.as_ref().map(|h| (h.text.as_str(), h.index)),
                    b.section,
                    b.content.as_str(),
                    b.fence.as_ref().map(|f| f.info.as_str()),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    11,
                    Some(("Upgrade", 1)),
                    Section::Procedure,
                    "echo hi\n",
                    Some("sh {node=etcd1}")
                ),
                (
                    15,
                    Some(("Upgrade", 1)),
                    Section::Procedure,
                    "hi\n",
                    Some("text {output}")
                ),
                (
                    23,
                    Some(("Rollback", 2)),
                    Section::Rollback,
                    "undo\n",
                    Some("sh {node=etcd1}")
                ),
                (
                    29,
                    Some(("Details", 3)),
                    Section::Rollback,
                    "indented\n",
                    None
                ),
                (
                    33,
                    Some(("Troubleshooting", 4)),
                    Section::Documentation,
                    "look\n",
                    Some("sh")
                ),
            ]
        );
        let first = &page.blocks[0];
        assert_eq!(first.prose, "Check it first.\n\nReally.");
        assert_eq!(&PAGE[first.content_range.clone()], "echo hi\n");
        assert_eq!(page.blocks[1].prose, "");
        let undo = &page.blocks[2];
        assert_eq!(undo.prose, "Undo:");
        assert_eq!(&PAGE[undo.content_range.clone()], "  undo\n");
        assert_eq!(undo.fence.as_ref().unwrap().prefix, "  ");
        assert_eq!(
            lines.position(undo.fence.as_ref().unwrap().info_offset),
            (23, 6)
        );
        assert_eq!(page.blocks[4].fence.as_ref().unwrap().prefix, "> ");
        assert_eq!(page.blocks[4].section_title, "Troubleshooting");
        let results = page.results.clone().unwrap();
        assert_eq!(&PAGE[results], "```sh {node=nope}\n```\n");
    }

    #[test]
    fn structural_mistakes_are_problems() {
        let unclosed = page("# A\n\n```sh {node=a}\necho\n\n# B\n");
        assert_eq!(unclosed.problems.len(), 1);
        assert_eq!(unclosed.problems[0].offset, 5);
        assert!(unclosed.blocks.is_empty());
        let run_on = page("# A\n\n```sh {node=a}\necho\n\n# B\n\n```firedrill\nstop: a\n```\n");
        assert_eq!(run_on.problems.len(), 1, "{:?}", run_on.problems);
        assert_eq!(run_on.problems[0].offset, 31);
        assert!(run_on.problems[0]
            .message
            .contains("inside the block of line 3"));
        // A block that shows a fence, with a longer one of its own, is fine.
        assert!(page("````markdown\n```sh {node=a}\nx\n```\n````\n")
            .problems
            .is_empty());
        // A longer closing fence closes; a shorter one does not.
        assert!(page("````sh\nx\n`````\n").problems.is_empty());
        assert_eq!(page("````sh\nx\n```\n").problems.len(), 1);
        let second_front_matter = page("---\na: 1\n---\n\ntext\n\n---\nb: 2\n---\n");
        assert_eq!(second_front_matter.problems[0].offset, 20);
        let results = page("<!-- /firedrill:results -->\n\n<!-- firedrill:results -->\n");
        assert_eq!(results.problems.len(), 2, "{:?}", results.problems);
        assert!(results.problems[1].message.contains("never closed"));
    }

    #[test]
    fn positions_count_characters() {
        let text = "é\nab\n";
        let lines = LineIndex::new(text);
        assert_eq!(lines.position(0), (1, 1));
        assert_eq!(lines.position(2), (1, 2));
        assert_eq!(lines.position(3), (2, 1));
        assert_eq!(lines.position(text.len()), (3, 1));
    }

    #[test]
    fn ordinals_are_not_part_of_a_name() {
        assert_eq!(without_ordinal("3. Stop etcd1"), "Stop etcd1");
        assert_eq!(without_ordinal("12) Stop"), "Stop");
        assert_eq!(without_ordinal("3.5 upgrade"), "3.5 upgrade");
        assert_eq!(without_ordinal("Rollback"), "Rollback");
        assert_eq!(classify("Roll back:"), Some(Section::Rollback));
        assert_eq!(classify("VERIFICATION"), Some(Section::Verification));
        assert_eq!(classify("Rollback plan"), None);
    }
}
