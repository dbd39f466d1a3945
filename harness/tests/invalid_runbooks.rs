//! Every bad runbook explained: each malformed Markdown page under tests/runbooks/invalid
//! makes `firedrill validate` stop with exit code 2 and a message that names the `.md` file
//! and the line (and column) to fix, and says what to do, without a panic and without
//! starting anything. The messages are insta snapshots, as for the YAML corpus
//! (invalid_inputs.rs). Nothing here needs Docker.

mod common;

use common::{firedrill, repo, Output};

/// Where the corpus lives, relative to the repository root the binary runs from.
const CORPUS: &str = "harness/tests/runbooks/invalid";

fn page(name: &str) -> String {
    format!("{CORPUS}/{name}")
}

/// The checks every refusal must pass; returns what the snapshot records.
fn assert_refused(args: &[&str], out: &Output) -> String {
    let command = args.join(" ");
    assert_eq!(
        out.code, 2,
        "firedrill {command}: exit code\n{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("panicked"),
        "firedrill {command} panicked:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("nothing was started"),
        "firedrill {command} must say nothing was started:\n{}",
        out.stderr
    );
    assert!(
        out.stdout.is_empty(),
        "firedrill {command} printed on stdout:\n{}",
        out.stdout
    );
    format!("$ firedrill {command}\n{}", out.stderr)
}

/// `firedrill validate <page>`: refused, with `location` (`file.md:line:`, or the file for
/// what has no line) in the message.
fn validate_refuses(name: &str, location: &str) -> String {
    let path = page(name);
    let args = ["validate", path.as_str()];
    let out = firedrill(&args);
    let shown = assert_refused(&args, &out);
    assert!(
        out.stderr.contains(&format!("error: {}", page(location))),
        "the message must point at {location}:\n{}",
        out.stderr
    );
    shown
}

/// One test per malformed page: the name says what is wrong, `at` where the message must
/// point, and the snapshot holds the whole message.
macro_rules! refused {
    ($($case:ident: $file:literal at $location:literal;)+) => {$(
        #[test]
        fn $case() {
            insta::assert_snapshot!(stringify!($case), validate_refuses($file, $location));
        }
    )+};
}

refused! {
    // The page's structure.
    unclosed_fence_running_into_the_next_block: "fence-unclosed.md" at "fence-unclosed.md:18:1:";
    unclosed_fence_at_the_end: "fence-unclosed-at-end.md" at "fence-unclosed-at-end.md:19:1:";
    unclosed_results_region: "results-unclosed.md" at "results-unclosed.md:19:1:";
    page_without_a_runnable_block: "no-runnable-block.md" at "no-runnable-block.md:13:1:";
    runnable_block_under_troubleshooting: "runnable-in-troubleshooting.md" at "runnable-in-troubleshooting.md:19:1:";
    procedure_step_after_verification: "procedure-after-verification.md" at "procedure-after-verification.md:25:1:";
    // Fence attributes.
    unknown_attribute: "attr-unknown.md" at "attr-unknown.md:13:8:";
    misspelt_attribute_among_valid_ones: "attr-typo-among-valid.md" at "attr-typo-among-valid.md:13:19:";
    timeout_that_is_not_a_duration: "attr-bad-timeout.md" at "attr-bad-timeout.md:13:19:";
    wait_interval_that_is_not_a_duration: "attr-bad-wait.md" at "attr-bad-wait.md:13:19:";
    unclosed_quote_in_an_attribute: "attr-unclosed-quote.md" at "attr-unclosed-quote.md:13:24:";
    unclosed_attribute_braces: "attr-unclosed-brace.md" at "attr-unclosed-brace.md:13:7:";
    runnable_block_that_is_not_sh: "attr-not-sh.md" at "attr-not-sh.md:13:4:";
    command_option_without_a_node: "attr-without-node.md" at "attr-without-node.md:13:8:";
    // Front matter.
    no_front_matter: "front-matter-missing.md" at "front-matter-missing.md:1:1:";
    unclosed_front_matter: "front-matter-unclosed.md" at "front-matter-unclosed.md:1:1:";
    yaml_syntax_error_in_the_front_matter: "front-matter-syntax.md" at "front-matter-syntax.md:5:5:";
    unknown_key_in_the_front_matter: "front-matter-unknown-key.md" at "front-matter-unknown-key.md:3:1:";
    missing_key_in_the_front_matter: "front-matter-missing-key.md" at "front-matter-missing-key.md:1:1:";
    steps_in_the_front_matter: "front-matter-steps.md" at "front-matter-steps.md:6:1:";
    // firedrill blocks.
    yaml_syntax_error_in_a_firedrill_block: "firedrill-yaml-syntax.md" at "firedrill-yaml-syntax.md:15:11:";
    unknown_step_kind: "firedrill-unknown-step-kind.md" at "firedrill-unknown-step-kind.md:14:1:";
    unknown_step_key: "firedrill-unknown-key.md" at "firedrill-unknown-key.md:15:1:";
    options_without_a_command: "options-without-command.md" at "options-without-command.md:13:1:";
    // Output blocks.
    output_without_a_command: "output-without-command.md" at "output-without-command.md:15:1:";
    two_outputs_for_one_command: "output-twice.md" at "output-twice.md:21:1:";
    mistyped_wildcard: "output-bad-wildcard.md" at "output-bad-wildcard.md:18:71:";
    // What the plan checks, located in the page.
    unknown_node: "node-unknown.md" at "node-unknown.md:13:1:";
    undefined_variable: "variable-undefined.md" at "variable-undefined.md:13:1:";
    duplicate_step_names: "steps-duplicate-names.md" at "steps-duplicate-names.md:25:1:";
    marks_on_a_rollback_step: "rollback-marks.md" at "rollback-marks.md:19:1:";
    // Files that are not runbooks at all.
    binary_file: "file-binary.md" at "file-binary.md: is a binary file";
    empty_file: "file-empty.md" at "file-empty.md: is empty";
}

/// The corpus stays honest: every page says in a `<!-- Wrong: … -->` comment what is wrong
/// with it, each has a test above, and validating them all at once reports each of them.
#[test]
fn every_page_says_what_is_wrong_and_all_are_reported_together() {
    let dir = repo().join(CORPUS);
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .expect("the corpus directory")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".md"))
        .collect();
    pages.sort();
    assert!(
        pages.len() >= 30,
        "the corpus has only {} pages",
        pages.len()
    );
    let this_file = std::fs::read_to_string(repo().join("harness/tests/invalid_runbooks.rs"))
        .expect("this test's source");
    for name in &pages {
        let bytes = std::fs::read(dir.join(name)).expect("a readable page");
        if !name.starts_with("file-") {
            let text = String::from_utf8(bytes).expect("UTF-8");
            assert!(
                text.contains("<!-- Wrong: "),
                "{name} must say `<!-- Wrong: … -->`"
            );
        }
        assert!(
            this_file.contains(&format!("\"{name}\" at")),
            "{name} has no test"
        );
    }
    let paths: Vec<String> = pages.iter().map(|n| page(n)).collect();
    let mut args = vec!["validate"];
    args.extend(paths.iter().map(String::as_str));
    let out = firedrill(&args);
    assert_refused(&args, &out);
    for path in &paths {
        assert!(
            out.stderr.contains(&format!("error: {path}")),
            "{path} is missing from the report:\n{}",
            out.stderr
        );
    }
}

/// The bundled runbooks are valid: the same command says so, with exit code 0.
#[test]
fn the_bundled_runbooks_validate() {
    let out = firedrill(&["validate", "scenarios"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for page in [
        "rolling-upgrade.md",
        "cluster-expansion.md",
        "canary-rollout-bad.md",
    ] {
        assert!(
            out.stdout.contains(&format!("scenarios/{page}: ok")),
            "{}",
            out.stdout
        );
    }
}
