use std::path::{Path, PathBuf};

use super::super::{read_str, Section};
use crate::plan::{Action, Plan};
use crate::yaml::Diagnostic;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/runbook/read/fixtures")
}

/// Front matter pointing at the neutral topology and load of `fixtures/`, from a page in
/// a temporary directory.
fn front_matter(extra: &str) -> String {
    let fixtures = fixtures().canonicalize().unwrap();
    format!(
        "---\nname: drill\ndescription: A drill.\ncluster:\n  compose: {}/kv-3.yaml\n  fault_image: example/faults:1\nload:\n  profile: {}/kv.yaml\n{extra}---\n",
        fixtures.display(),
        fixtures.display()
    )
}

const FRONT_LINES: u64 = 9;

fn plan(body: &str) -> Result<Plan, Vec<Diagnostic>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drill.md");
    std::fs::write(&path, front_matter("") + body).unwrap();
    Plan::load(&path)
}

/// The one problem of a page, as `line:column: message`.
fn refused(body: &str) -> String {
    let text = front_matter("") + body;
    let problems = match read_str(Path::new("p.md"), &text) {
        Err(p) => p,
        Ok(_) => match plan(body) {
            Err(p) => p,
            Ok(_) => panic!("accepted:\n{body}"),
        },
    };
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let d = &problems[0];
    format!("{}:{}: {}", d.line - FRONT_LINES, d.column, d.message)
}

const PAGE: &str = r#"
# 1. Restart a member

Why this matters.

## Prerequisites

```sh
kvadmin version
```

## Check the members

Look first.

```sh {node=node1 timeout=5s}
kvadmin member list
```

Expect three:

```text {output}
...
[..], started, node3, [..]
```

```firedrill
capture:
  id: { regex: '^(\w+)' }
wait: { timeout: 10s }
```

Then again, with the same heading:

```sh {node=node2 contains=started}
kvadmin member list
```

## Restart

```firedrill
restart: node2
recovers: { within: 10s }
```

```firedrill
name: Each member
for_each:
  var: m
  in: [node1, node3]
  steps:
    - name: Check ${m}
      exec: { node: "${m}", command: "kvadmin endpoint health" }
```

## Verification

### Health

```sh {node=node1 wait=30s/250ms}
kvadmin endpoint health
```

## Rollback

### Heal everything

```firedrill
heal: all
```

## Troubleshooting

```sh
docker logs node2
```
"#;

#[test]
fn a_page_becomes_steps_with_their_sources() {
    let plan = plan(PAGE).unwrap();
    let steps: Vec<_> = plan
        .steps
        .iter()
        .map(|s| {
            let source = s.source.as_ref().unwrap();
            (
                s.id.as_str(),
                s.name.as_str(),
                source.line - FRONT_LINES,
                source.section,
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("1", "Check the members", 16, Section::Procedure),
            ("2", "Check the members (2)", 35, Section::Procedure),
            ("3", "Restart", 41, Section::Procedure),
            ("4.1.1", "Check node1", 46, Section::Procedure),
            ("4.2.1", "Check node3", 46, Section::Procedure),
            ("5", "Health", 60, Section::Verification),
        ]
    );
    let first = &plan.steps[0];
    assert_eq!(first.prose, "Look first.");
    assert_eq!(first.timeout, std::time::Duration::from_secs(5));
    assert!(
        matches!(&first.action, Action::Exec { node, command } if node == "node1" && command == "kvadmin member list")
    );
    // The firedrill block below the output gave the command its capture and its wait.
    assert_eq!(first.captures[0].0, "id");
    assert_eq!(
        first.wait.unwrap().timeout,
        std::time::Duration::from_secs(10)
    );
    let output = first.source.as_ref().unwrap().output.as_ref().unwrap();
    assert_eq!(output.text, "...\n[..], started, node3, [..]\n");
    assert_eq!(output.line - FRONT_LINES, 22);
    assert!(output
        .check("8e9e, started, node1, x\n8e9f, started, node3, y\n")
        .is_ok());
    assert_eq!(plan.steps[1].prose, "Then again, with the same heading:");
    assert_eq!(plan.steps[1].expect.stdout_contains, ["started"]);
    assert!(plan.steps[2].recovers.is_some());
    assert_eq!(plan.steps[2].prose, "");

    let page = plan.page.as_ref().unwrap();
    let rollback: Vec<_> = page
        .rollback
        .iter()
        .map(|s| {
            (
                s.id.as_str(),
                s.name.as_str(),
                s.source.as_ref().unwrap().section,
            )
        })
        .collect();
    assert_eq!(rollback, [("R1", "Heal everything", Section::Rollback)]);
    let docs: Vec<_> = page
        .documentation
        .iter()
        .map(|d| {
            (
                d.line - FRONT_LINES,
                d.lang.as_str(),
                d.heading.as_deref(),
                d.section,
            )
        })
        .collect();
    assert_eq!(
        docs,
        [
            (8, "sh", Some("Prerequisites"), Section::Documentation),
            (74, "sh", Some("Troubleshooting"), Section::Documentation),
        ]
    );
}

#[test]
fn the_bundled_runbook_plans() {
    let path = repo().join("scenarios/rolling-upgrade.md");
    let plan = Plan::load(&path).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(plan.steps.len(), 4 + 3 * 4 + 2);
    let last = plan.steps.last().unwrap();
    assert_eq!(last.name, "Wait for the cluster version to reach 3.5");
    assert_eq!(last.source.as_ref().unwrap().section, Section::Verification);
    let page = plan.page.as_ref().unwrap();
    // Each member stopped, put back and waited for, then the cluster checked.
    assert_eq!(page.rollback.len(), 3 * 3 + 1);
    assert_eq!(page.documentation.len(), 2);
    let images = plan.images();
    assert!(plan
        .compose
        .services
        .iter()
        .all(|s| images.contains(&s.image)));
    // The upgrade's target image, named by a `replace` step of the page, is needed too.
    assert!(images.len() > plan.compose.images().len(), "{images:?}");
    let outputs = plan
        .steps
        .iter()
        .filter(|s| s.source.as_ref().is_some_and(|s| s.output.is_some()))
        .count();
    assert_eq!(outputs, 4);
}

#[test]
fn attribute_mistakes_point_into_the_fence() {
    assert_eq!(
        refused("# A\n\n```sh {node=node1 timout=5s}\nx\n```\n"),
        "3:19: unknown attribute `timout`: a command block takes node, run, image, name, timeout, wait, exit_code, contains, regex, capture.NAME, marks; an output block takes output, unordered"
    );
    assert!(refused("# A\n\n```sh {node=node1 timeout=5x}\nx\n```\n")
        .starts_with("3:19: timeout: `5x` is not a duration"));
    assert!(
        refused("# A\n\n  ```sh {node=node1 wait=1s/x}\n  x\n  ```\n")
            .starts_with("3:21: wait: `x` is not a duration")
    );
}

#[test]
fn yaml_mistakes_in_a_firedrill_block_are_located_in_the_page() {
    let d = refused("# A\n\n```firedrill\nstop: node1\nexpct: {}\n```\n");
    assert!(
        d.starts_with("5:1: unknown key `expct`: did you mean `expect`?"),
        "{d}"
    );
    // Inside a list item, the columns are the page's.
    let d = refused("- A\n\n  ```firedrill\n  partition:\n    isolate: [node1\n  ```\n");
    assert!(d.starts_with("5:"), "{d}");
    assert!(d.contains("YAML syntax error"), "{d}");
    let d = refused("# A\n\n```firedrill\nsleep: soon\n```\n");
    assert!(d.starts_with("4:1: `soon` is not a duration"), "{d}");
    let d = refused("# A\n\n```firedrill\nexec: { node: node1, command: x }\nexpect: { stdout_contains: [a }\n```\n");
    assert!(d.starts_with("5:"), "{d}");
    // A name given in the block: the planner's errors point at it.
    let d = refused("# A\n\n```firedrill\nname: Stop it\nstop: node9\n```\n");
    assert!(d.starts_with("4:7: node `node9` is not a service"), "{d}");
}

#[test]
fn the_planners_mistakes_point_at_the_block() {
    let d = refused("# A\n\n```sh {node=node9}\nx\n```\n");
    assert!(
        d.starts_with("3:1: node `node9` is not a service of the compose file"),
        "{d}"
    );
    let d = refused("# A\n\n```sh {node=node1}\necho ${nope}\n```\n");
    assert!(d.starts_with("3:1: `${nope}` is not defined"), "{d}");
    let d = refused("# A\n\n```sh {node=node1 regex='(('}\nx\n```\n");
    assert!(
        d.starts_with("3:1: expect.stdout_regex is not a valid regular expression"),
        "{d}"
    );
    let d = refused("# A\n\n```firedrill\nstop: node1\nkill: node1\n```\n");
    assert!(
        d.starts_with("3:1: step `A` has more than one action"),
        "{d}"
    );
    let d = refused("# A\n\n```sh {node=node1}\nx\n```\n\n# A\n\n```sh {node=node1}\ny\n```\n");
    assert!(d.starts_with("9:1: step name `A` is used twice"), "{d}");
    let d = refused("# A\n\n```sh {node=node1}\nx\n```\n\n## Rollback\n\n```sh {node=node1 marks=backup}\ny\n```\n");
    assert!(
        d.starts_with("9:1: step `Rollback`: `marks` cannot be used in a rollback step"),
        "{d}"
    );
}

#[test]
fn page_mistakes() {
    assert_eq!(
        refused("# A\n\n```text {output}\nx\n```\n"),
        "3:1: an output block goes right after the command whose output it is (an sh block with `node=` or `run=`, or a firedrill exec, run or http step), under the same heading"
    );
    // Under another heading than its command.
    assert!(
        refused("# A\n\n```sh {node=node1}\nx\n```\n\n# B\n\n```text {output}\nx\n```\n")
            .starts_with("9:1: an output block goes right after")
    );
    // After a loop.
    assert!(refused("# A\n\n```firedrill\nfor_each: { var: m, in: [a], steps: [{ name: x, sleep: 1s }] }\n```\n\n```text {output}\nx\n```\n")
        .starts_with("7:1: an output block goes right after"));
    assert!(refused("# A\n\n```sh {node=node1}\nx\n```\n\n```text {output}\nx\n```\n\n```text {output}\nx\n```\n")
        .starts_with("11:1: step `A` already has an output block (line 16): keep one"));
    assert!(refused("# A\n\n```sh {node=node1}\nx\n```\n\n- out:\n\n  ```text {output}\n  a\n  b [...]\n  ```\n")
        .starts_with("11:5: `[...]` is not a wildcard"));
    assert!(refused("# A\n\n```firedrill\nwait: { timeout: 1s }\n```\n")
        .starts_with("3:1: this firedrill block has no action"));
    assert!(refused(
        "# A\n\n```sh {node=node1 timeout=1s}\nx\n```\n\n```firedrill\ntimeout: 2s\n```\n"
    )
    .starts_with("7:1: `timeout` is given both as an attribute of the command block and here"));
    assert!(refused("```sh {node=node1}\nx\n```\n")
        .starts_with("1:1: this block has no heading above it"));
    assert!(
        refused("# A\n\n```sh {node=node1}\n```\n").starts_with("3:1: this command block is empty")
    );
    assert!(refused("# A\n\n```firedrill\n```\n").starts_with("3:1: this firedrill block is empty"));
    assert!(refused("# A\n\n```sh {node=node1}\nx\n")
        .starts_with("3:1: this fenced block is never closed"));
    assert!(
        refused("## Troubleshooting\n\n```sh {node=node1}\nx\n```\n")
            .starts_with("3:1: this block would run, but it sits under `Troubleshooting`")
    );
    assert!(refused(
        "# Verification\n\n```sh {node=node1}\nx\n```\n\n# Later\n\n```sh {node=node1}\ny\n```\n"
    )
    .starts_with("9:1: a procedure step below the Verification section (line 12)"));
    assert!(refused("# A\n\n```sh\nx\n```\n").starts_with("3:1: the page has no runnable block"));
    assert!(refused("# Rollback\n\n```sh {node=node1}\nx\n```\n")
        .starts_with("3:1: the page has no runnable block"));
    assert!(refused("# A\n\n```bash {node=node1}\nx\n```\n").starts_with("3:4: only sh blocks run"));
    assert!(refused("# A\n\n<!-- firedrill:results -->\n")
        .starts_with("3:1: the results region is never closed"));
    // A mistake in a command block is not reported again by the output block after it.
    assert!(
        refused("# A\n\n```sh {node=node1 x}\nx\n```\n\n```text {output}\nx\n```\n")
            .starts_with("3:19: unknown attribute `x`")
    );
}

#[test]
fn front_matter_mistakes_are_located_in_the_page() {
    let at = |text: &str| {
        let problems = read_str(Path::new("p.md"), text).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        format!(
            "{}:{}: {}",
            problems[0].line, problems[0].column, problems[0].message
        )
    };
    let body = "\n# A\n\n```sh {node=node1}\nx\n```\n";
    let d = at(&format!("---\nname: x\ndescription: y\ncluster: {{ compose: c.yaml }}\nload: {{ profile: p.yaml }}\nrunbok: z\n---\n{body}"));
    assert!(
        d.starts_with("6:1: unknown key `runbok`: did you mean `runbook`?"),
        "{d}"
    );
    let d = at(&format!(
        "---\nname: x\ndescription: y\nload: {{ profile: p.yaml }}\n---\n{body}"
    ));
    assert_eq!(
        d,
        "1:1: the front matter has no `cluster`: add `cluster: …` to it"
    );
    let d = at(&format!("---\nname: x\nsteps: []\n---\n{body}"));
    assert!(
        d.starts_with("3:1: `steps` does not belong in the front matter"),
        "{d}"
    );
    let d = at(&format!("---\nname: [x\n---\n{body}"));
    assert!(
        d.starts_with("2:") && d.contains("YAML syntax error"),
        "{d}"
    );
    let d = at(&format!("---\n{{name: x, description: y}}\n---\n{body}"));
    assert!(
        d.starts_with("2:1: write the front matter as `key: value` lines"),
        "{d}"
    );
    let d = at(body);
    assert!(d.starts_with("1:1: the page has no front matter"), "{d}");
    let d = at(&format!("---\n\nname: x\n---\n{body}"));
    assert!(
        d.starts_with("1:1: the front matter is never closed"),
        "{d}"
    );
}

#[test]
fn files_that_are_not_runbooks() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("b.md");
    std::fs::write(&binary, [0x7f, b'E', b'L', b'F', 0, 1]).unwrap();
    let d = &super::super::read(&binary).unwrap_err()[0];
    assert!(d.message.starts_with("is a binary file"), "{d}");
    let empty = dir.path().join("e.md");
    std::fs::write(&empty, "\n \n").unwrap();
    let d = &super::super::read(&empty).unwrap_err()[0];
    assert!(d.message.starts_with("is empty"), "{d}");
    let d = &super::super::read(dir.path()).unwrap_err()[0];
    assert!(d.message.starts_with("is a directory"), "{d}");
}
