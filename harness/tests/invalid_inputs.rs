//! Every bad input explained: each malformed file under tests/fixtures/invalid makes firedrill
//! stop with exit code 2 and a message that names the file (and the line, where the problem
//! has one) and says what to do, without a panic and without starting anything. The messages
//! themselves are insta snapshots, so a change of wording is reviewed like code.
//!
//! Environment problems (no Docker daemon, a published port already taken, an image that
//! cannot be built, no Debian mirror configured, not root) are not the user's files: they stop
//! a run with exit code 3, and leave nothing behind. A machine without debootstrap is no such
//! problem: firedrill fetches it.

mod common;

use std::fs::Permissions;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{firedrill, firedrill_pid, leftovers_of, repo, Output};

/// Where the corpus lives, relative to the repository root the binary runs from.
const FIXTURES: &str = "harness/tests/fixtures/invalid";

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

/// Absolute paths would make snapshots depend on the checkout; none should appear, but a
/// message that quotes one must not break the snapshot either.
fn relative(text: &str) -> String {
    let root = repo();
    let mut text = text.to_string();
    for r in [root.canonicalize().ok(), Some(root)].into_iter().flatten() {
        text = text.replace(&format!("{}/", r.display()), "");
    }
    text
}

/// The checks every refusal must pass; returns what the snapshot records.
fn assert_refused(command: &str, path: &str, out: &Output) -> String {
    assert_eq!(out.code, 2, "{command} {path}: exit code\n{}", out.stderr);
    assert!(
        !out.stderr.contains("panicked"),
        "{command} {path} panicked:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("nothing was started"),
        "{command} {path} must say nothing was started:\n{}",
        out.stderr
    );
    assert!(
        out.stdout.is_empty(),
        "{command} {path} printed on stdout:\n{}",
        out.stdout
    );
    format!("$ firedrill {command} {path}\n{}", relative(&out.stderr))
}

/// `firedrill validate <path>`: refused, with `location` (file, or file:line:) in the message.
fn validate_refuses(path: &str, location: &str) -> String {
    let out = firedrill(&["validate", path]);
    let shown = assert_refused("validate", path, &out);
    assert!(
        out.stderr.contains(&fixture(location)),
        "the message must point at {location}:\n{}",
        out.stderr
    );
    shown
}

/// `firedrill run <path>` is refused the same way, before it touches Docker at all.
fn run_refuses(path: &str) {
    // Checked first so that a fixture which turned valid fails here instead of starting a
    // real cluster below.
    assert_eq!(
        firedrill(&["validate", path]).code,
        2,
        "{path} is no longer invalid"
    );
    let out_dir = tempfile::tempdir().expect("temporary directory");
    let (out, pid) = firedrill_pid(
        &[
            "run",
            path,
            "--out",
            out_dir.path().to_str().expect("UTF-8 path"),
        ],
        &[],
    );
    assert_refused("run", path, &out);
    assert_eq!(
        leftovers_of(pid),
        "",
        "firedrill run {path} created something on the daemon"
    );
    let artifacts = std::fs::read_dir(out_dir.path()).expect("readable").count();
    assert_eq!(artifacts, 0, "firedrill run {path} wrote artifacts");
}

/// One test per malformed input: the test's name says what is wrong, `at` where the
/// message must point (a file, or `file:line:`), and the snapshot holds the whole message.
macro_rules! refused {
    ($($case:ident: $file:literal at $location:literal;)+) => {$(
        #[test]
        fn $case() {
            insta::assert_snapshot!(stringify!($case), validate_refuses(&fixture($file), $location));
        }
    )+};
}

refused! {
    // YAML syntax.
    bad_indentation_is_a_syntax_error_on_its_line: "syntax-bad-indentation.yaml" at "syntax-bad-indentation.yaml:10:";
    unclosed_bracket_is_a_syntax_error: "syntax-unclosed-bracket.yaml" at "syntax-unclosed-bracket.yaml:10:";
    tab_indentation_is_a_syntax_error: "syntax-tab-indent.yaml" at "syntax-tab-indent.yaml:9:";
    // Wrong types.
    a_word_where_a_port_number_goes: "type-string-for-number.yaml" at "type-string-for-number.yaml:8:";
    a_list_where_a_map_goes: "type-list-for-map.yaml" at "type-list-for-map.yaml:5:";
    // Unknown keys at every depth.
    unknown_top_level_key: "unknown-key-top.yaml" at "unknown-key-top.yaml:6:";
    unknown_step_key: "unknown-key-step.yaml" at "unknown-key-step.yaml:9:";
    unknown_expect_key: "unknown-key-expect.yaml" at "unknown-key-expect.yaml:10:";
    unknown_slo_key_suggests_the_close_one: "unknown-key-slo.yaml" at "unknown-key-slo.yaml:10:";
    unknown_load_key: "unknown-key-load.yaml" at "unknown-key-load.yaml:7:";
    // Steps and their actions.
    unknown_step_kind: "step-unknown-kind.yaml" at "step-unknown-kind.yaml:8:";
    step_with_two_actions: "step-two-actions.yaml" at "step-two-actions.yaml:7:";
    step_with_no_action: "step-no-action.yaml" at "step-no-action.yaml:7:";
    empty_steps_list: "steps-empty.yaml" at "steps-empty.yaml";
    duplicate_step_names: "steps-duplicate-names.yaml" at "steps-duplicate-names.yaml:9:";
    // Missing required keys.
    missing_scenario_name: "missing-name.yaml" at "missing-name.yaml: has no `name`";
    missing_description: "missing-description.yaml" at "missing-description.yaml: has no `description`";
    missing_cluster: "missing-cluster.yaml" at "missing-cluster.yaml: has no `cluster`";
    missing_steps: "missing-steps.yaml" at "missing-steps.yaml: has no `steps`";
    missing_step_name: "missing-step-name.yaml" at "missing-step-name.yaml:9:";
    missing_exec_command: "missing-exec-command.yaml" at "missing-exec-command.yaml:8:";
    // Monitoring.
    a_promql_that_does_not_parse_names_its_line: "monitoring-promql-does-not-parse.yaml" at "monitoring-promql-does-not-parse.yaml:10:";
    an_alert_counted_from_no_step_lists_the_steps: "monitoring-alert-after-no-step.yaml" at "monitoring-alert-after-no-step.yaml:10:";
    a_quiet_phase_needs_a_prometheus: "monitoring-quiet-without-prometheus.yaml" at "monitoring-quiet-without-prometheus.yaml";
    a_query_slo_needs_a_prometheus: "monitoring-slo-without-prometheus.yaml" at "monitoring-slo-without-prometheus.yaml:9:";
    a_query_slo_takes_one_bound: "monitoring-slo-two-bounds.yaml" at "monitoring-slo-two-bounds.yaml:11:";
    a_promql_gate_that_does_not_parse_names_its_line: "monitoring-gate-does-not-parse.yaml" at "monitoring-gate-does-not-parse.yaml:18:";
    // Durations.
    negative_duration: "duration-negative.yaml" at "duration-negative.yaml:8:";
    unparsable_duration: "duration-unparsable.yaml" at "duration-unparsable.yaml:9:";
    // References to other files, nodes and variables.
    missing_compose_file: "ref-missing-compose.yaml" at "ref-missing-compose.yaml:4:";
    missing_load_profile: "ref-missing-profile.yaml" at "ref-missing-profile.yaml:5:";
    unknown_node_in_a_step: "ref-unknown-node-in-step.yaml" at "ref-unknown-node-in-step.yaml:7:";
    unknown_node_in_load_nodes: "ref-unknown-node-in-load.yaml" at "ref-unknown-node-in-load.yaml:7:";
    undefined_variable: "ref-undefined-var.yaml" at "ref-undefined-var.yaml:7:";
    // Captures and expectations.
    capture_with_both_regex_and_json: "capture-regex-and-json.yaml" at "capture-regex-and-json.yaml:7:";
    capture_with_an_invalid_regex: "capture-invalid-regex.yaml" at "capture-invalid-regex.yaml:7:";
    json_pointer_without_leading_slash: "expect-json-pointer-no-slash.yaml" at "expect-json-pointer-no-slash.yaml:7:";
    // Actions' own values.
    http_with_an_unknown_method: "http-unknown-method.yaml" at "http-unknown-method.yaml:7:";
    partition_with_two_forms: "partition-two-forms.yaml" at "partition-two-forms.yaml:9:";
    reject_share_above_one: "reject-share-above-one.yaml" at "reject-share-above-one.yaml:9:";
    reject_per_something_it_cannot_count: "reject-per-unknown.yaml" at "reject-per-unknown.yaml:9:";
    netem_loss_above_one: "netem-loss-above-one.yaml" at "netem-loss-above-one.yaml:9:";
    netem_without_delay_or_loss: "netem-no-delay-no-loss.yaml" at "netem-no-delay-no-loss.yaml:9:";
    recovers_on_a_step_without_a_node: "recovers-without-node.yaml" at "recovers-without-node.yaml:11:";
    // Rollouts and backup marks.
    rollout_stages_that_shrink: "rollout-stages-shrink.yaml" at "rollout-stages-shrink.yaml:7:";
    rollout_canary_also_in_the_baseline: "rollout-canary-in-baseline.yaml" at "rollout-canary-in-baseline.yaml:7:";
    rollout_stage_above_all_the_traffic: "rollout-stage-above-100.yaml" at "rollout-stage-above-100.yaml:7:";
    rollout_with_levers_and_a_kill_switch: "rollout-levers-and-kill-switch.yaml" at "rollout-levers-and-kill-switch.yaml:7:";
    rollout_restored_by_an_unknown_lever: "rollout-restored-by-unknown-lever.yaml" at "rollout-restored-by-unknown-lever.yaml:7:";
    unknown_mark: "marks-unknown-mark.yaml" at "marks-unknown-mark.yaml:8:";
    // Backgrounds, stalls and conditions.
    unknown_key_inside_a_background: "background-unknown-key.yaml" at "background-unknown-key.yaml:10:";
    stall_on_not_shorter_than_its_period: "stall-on-not-shorter-than-period.yaml" at "stall-on-not-shorter-than-period.yaml:11:";
    when_names_an_undefined_variable: "when-undefined-var.yaml" at "when-undefined-var.yaml:7:";
    // A problem of the marks as a whole: the message names the file, without a line.
    disaster_marked_before_the_backup: "marks-disaster-before-backup.yaml" at "marks-disaster-before-backup.yaml: the step marked `disaster` must come after";
    backup_marked_on_two_steps: "marks-backup-on-two-steps.yaml" at "marks-backup-on-two-steps.yaml: `marks: backup` is on 2 steps";
    // Checks.
    removed_names_an_unknown_node: "removed-unknown-node.yaml" at "removed-unknown-node.yaml:10:";
    // `checks.converge` problems name the file, without a line.
    converge_over_an_unknown_node: "converge-unknown-node.yaml" at "converge-unknown-node.yaml: checks.converge";
    converge_compare_that_is_not_a_regex: "converge-compare-invalid-regex.yaml" at "converge-compare-invalid-regex.yaml: checks.converge";
    // Files that are not scenarios at all.
    empty_file: "file-empty.yaml" at "file-empty.yaml: is empty";
    file_of_comments_only: "file-only-comments.yaml" at "file-only-comments.yaml: holds only comments";
    binary_file: "file-binary.yaml" at "file-binary.yaml: is a binary file";
    directory_without_scenarios: "no-scenarios" at "no-scenarios: holds no scenario files";
    path_that_does_not_exist: "does-not-exist.yaml" at "does-not-exist.yaml: does not exist";
    // Compose files.
    compose_port_not_on_loopback: "compose-port-not-loopback.yaml" at "compose/port-not-loopback.yaml:5:";
    compose_undeclared_volume: "compose-undeclared-volume.yaml" at "compose/undeclared-volume.yaml:5:";
    compose_unsupported_top_level_key: "compose-unsupported-top-level-key.yaml" at "compose/unsupported-top-level-key.yaml:6:";
    compose_unknown_service_key: "compose-unknown-service-key.yaml" at "compose/unknown-service-key.yaml:6:";
    // Load profiles.
    profile_read_ratio_above_one: "profile-read-ratio-above-one.yaml" at "profiles/read-ratio-above-one.yaml";
    profile_unknown_placeholder: "profile-unknown-placeholder.yaml" at "profiles/unknown-placeholder.yaml";
    profile_zero_clients: "profile-zero-clients.yaml" at "profiles/zero-clients.yaml";
}

/// `run` checks everything `validate` does before it connects to Docker: a syntax error,
/// a bad reference, a bad compose file and a bad profile all stop it with nothing created.
#[test]
fn run_refuses_invalid_input_before_starting_anything() {
    for name in [
        "syntax-tab-indent.yaml",
        "ref-unknown-node-in-step.yaml",
        "compose-port-not-loopback.yaml",
        "profile-zero-clients.yaml",
        "file-empty.yaml",
    ] {
        run_refuses(&fixture(name));
    }
}

/// The corpus stays honest: every fixture says in its first line what is wrong with it,
/// and validating the whole directory reports a problem in each of its scenarios at once.
#[test]
fn every_fixture_says_what_is_wrong_and_all_are_reported_together() {
    let dir = repo().join(FIXTURES);
    let mut scenarios = Vec::new();
    for sub in ["", "compose", "profiles"] {
        for entry in std::fs::read_dir(dir.join(sub)).expect("fixture directory") {
            let path = entry.expect("directory entry").path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let bytes = std::fs::read(&path).expect("readable fixture");
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            if name != "file-empty.yaml" {
                assert!(
                    bytes.starts_with(b"# Wrong: "),
                    "{name} must start with `# Wrong: …`"
                );
            }
            if sub.is_empty() {
                scenarios.push(name);
            }
        }
    }
    assert!(
        scenarios.len() >= 30,
        "the corpus has only {} scenarios",
        scenarios.len()
    );
    let out = firedrill(&["validate", FIXTURES]);
    assert_refused("validate", FIXTURES, &out);
    let problems = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .count();
    assert!(
        problems >= scenarios.len(),
        "{problems} problems for {} files:\n{}",
        scenarios.len(),
        out.stderr
    );
    for name in &scenarios {
        let stem = name.trim_end_matches(".yaml");
        // Compose and profile cases are reported under the file they refer to.
        let shown = stem
            .replace("compose-", "compose/")
            .replace("profile-", "profiles/");
        assert!(
            out.stderr.contains(&format!("/{name}")) || out.stderr.contains(&format!("/{shown}")),
            "{name} is missing from the report:\n{}",
            out.stderr
        );
    }
}

/// No Docker daemon: valid input, so exit code 3 with what is wrong and what to do.
#[test]
fn no_docker_daemon_is_an_infrastructure_error() {
    let out_dir = tempfile::tempdir().expect("temporary directory");
    let path = fixture("environment/valid.yaml");
    let (out, pid) = firedrill_pid(
        &[
            "run",
            &path,
            "--out",
            out_dir.path().to_str().expect("UTF-8 path"),
        ],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot reach the Docker daemon"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("/nonexistent/docker.sock"),
        "names where it looked: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("start it"),
        "says what to do: {}",
        out.stderr
    );
    insta::assert_snapshot!(format!(
        "$ DOCKER_HOST=unix:///nonexistent/docker.sock firedrill run {path}\n{}",
        relative(&out.stderr)
    ));
    assert_eq!(leftovers_of(pid), "");
}

/// A fixed host port that something else holds: exit code 3 naming the port and the node,
/// found before any container, network or volume exists.
#[test]
fn a_published_port_already_taken_is_an_infrastructure_error() {
    let _serial = common::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The port written in environment/compose/fixed-port.yaml.
    let _taken =
        TcpListener::bind(("127.0.0.1", 42379)).expect("port 42379 is free for the test to take");
    let out_dir = tempfile::tempdir().expect("temporary directory");
    let path = fixture("environment/port-taken.yaml");
    let (out, pid) = firedrill_pid(
        &[
            "run",
            &path,
            "--out",
            out_dir.path().to_str().expect("UTF-8 path"),
        ],
        &[],
    );
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(
        out.stderr.contains("127.0.0.1:42379"),
        "names the port: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("node `etcd1`"),
        "names the node: {}",
        out.stderr
    );
    insta::assert_snapshot!(format!("$ firedrill run {path}\n{}", relative(&out.stderr)));
    assert_eq!(leftovers_of(pid), "", "objects left on the Docker daemon");
}

/// An image whose recipe fails to build: exit code 3 naming the tag and showing the build's
/// own output, with no container started and no image left under that tag.
#[test]
fn an_image_that_cannot_be_built_is_an_infrastructure_error() {
    let _serial = common::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The Dockerfile builds FROM the bundled base image.
    let base = firedrill(&["images", "build"]);
    assert_eq!(base.code, 0, "{}", base.stderr);
    let out_dir = tempfile::tempdir().expect("temporary directory");
    let path = fixture("environment/unbuildable.yaml");
    let (out, pid) = firedrill_pid(
        &[
            "run",
            &path,
            "--out",
            out_dir.path().to_str().expect("UTF-8 path"),
        ],
        &[],
    );
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    for expected in [
        "firedrill-test/unbuildable:1",
        "release tarball not found",
        "7",
    ] {
        assert!(
            out.stderr.contains(expected),
            "says `{expected}`: {}",
            out.stderr
        );
    }
    let image = Command::new("docker")
        .args(["image", "inspect", "firedrill-test/unbuildable:1"])
        .output()
        .expect("docker runs");
    assert!(!image.status.success(), "a failed build left an image");
    assert_eq!(leftovers_of(pid), "", "objects left on the Docker daemon");
}

/// Runs firedrill in a mount namespace of the test's own where the machine looks bare:
/// debootstrap and wget, where installed, are hidden under /dev/null (not a regular file, so
/// neither firedrill nor debootstrap finds them), and so is the apt configuration when
/// `hide_apt` (under an empty tmpfs). The rest of the system stays: debootstrap needs chroot
/// from /usr/sbin and curl.
fn on_a_bare_machine(args: &[&str], hide_apt: bool, env: &[(&str, &str)]) -> Output {
    let hide = r#"set -e
for tool in /usr/sbin/debootstrap /sbin/debootstrap /usr/bin/wget /bin/wget; do
  if [ -f "$tool" ]; then mount --bind /dev/null "$tool"; fi
done
if [ "$HIDE_APT" = yes ]; then mount -t tmpfs tmpfs /etc/apt; fi
exec "$@""#;
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "sh", "-c", hide, "sh"])
        .arg(env!("CARGO_BIN_EXE_firedrill"))
        .args(args)
        .current_dir(repo())
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HIDE_APT", if hide_apt { "yes" } else { "no" })
        .env("NO_COLOR", "1")
        .env_remove("FIREDRILL_DEBIAN_MIRROR");
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().expect("unshare runs (util-linux)");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Removes an image when dropped, also after a failed assertion.
struct RemoveImage(&'static str);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["image", "rm", "--force", self.0])
            .output();
    }
}

/// debootstrap and wget not installed: firedrill fetches debootstrap from the apt
/// configuration's mirror into its cache, has curl stand in for wget, and builds the image.
#[test]
fn a_missing_debootstrap_is_fetched_from_the_mirror() {
    let _serial = common::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const TAG: &str = "firedrill-test/fetched-debootstrap:1";
    let _remove = RemoveImage(TAG);
    let cache = tempfile::tempdir().expect("temporary directory");
    let recipes = fixture("environment/fetched-debootstrap-recipes.yaml");
    let out = on_a_bare_machine(
        &["images", "build", "--recipes", &recipes],
        false,
        &[("XDG_CACHE_HOME", cache.path().to_str().expect("UTF-8 path"))],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let copy = cache.path().join("firedrill/debootstrap");
    for expected in [
        "images: debootstrap not installed: fetched debootstrap ".to_string(),
        format!("into {}/", copy.display()),
        "Release signature checked against /usr/share/keyrings/debian-archive-keyring.gpg"
            .to_string(),
        "images: wget not installed: debootstrap downloads through curl instead".to_string(),
        format!("built {TAG} in "),
    ] {
        assert!(
            out.stdout.contains(&expected),
            "says `{expected}`:\n{}",
            out.stdout
        );
    }
    let versions = std::fs::read_dir(&copy)
        .expect("the cache holds the copy")
        .count();
    assert_eq!(versions, 1, "one unpacked copy in {}", copy.display());
    let os = Command::new("docker")
        .args(["run", "--rm", TAG, "cat", "/etc/debian_version"])
        .output()
        .expect("docker runs");
    assert!(
        os.status.success() && String::from_utf8_lossy(&os.stdout).starts_with("12."),
        "the image is Debian 12: {}",
        String::from_utf8_lossy(&os.stderr)
    );
}

/// Neither debootstrap nor an apt configuration, and FIREDRILL_DEBIAN_MIRROR unset: nothing
/// says where Debian comes from, so exit code 3 naming the variable to set.
#[test]
fn no_mirror_configured_is_an_infrastructure_error() {
    let recipes = fixture("environment/rootfs-recipes.yaml");
    let out = on_a_bare_machine(&["images", "build", "--recipes", &recipes], true, &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(
        out.stderr.contains("set FIREDRILL_DEBIAN_MIRROR"),
        "{}",
        out.stderr
    );
    insta::assert_snapshot!(format!(
        "$ firedrill images build --recipes {recipes}   # no debootstrap, no /etc/apt, FIREDRILL_DEBIAN_MIRROR unset\n{}",
        relative(&out.stderr)
    ));
}

/// Not root, with access to the Docker engine (the socket's group): building a base image
/// with debootstrap needs root, and the message says so before anything is unpacked.
#[test]
fn debootstrap_without_root_is_an_infrastructure_error() {
    let socket_group = std::fs::metadata("/var/run/docker.sock")
        .map(|m| std::os::unix::fs::MetadataExt::gid(&m))
        .expect("the Docker socket");
    let recipes = fixture("environment/rootfs-recipes.yaml");
    // The checkout may sit where that user cannot go: copy what it needs somewhere it can.
    let open_dir = tempfile::tempdir().expect("temporary directory");
    std::fs::set_permissions(open_dir.path(), Permissions::from_mode(0o755))
        .expect("chmod the temporary directory");
    let binary = open_dir.path().join("firedrill");
    std::fs::copy(env!("CARGO_BIN_EXE_firedrill"), &binary).expect("copy the binary");
    std::fs::copy(repo().join(&recipes), open_dir.path().join("recipes.yaml"))
        .expect("copy the recipes");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534"])
        .arg(format!("--groups={socket_group}"))
        .arg(&binary)
        .args(["images", "build", "--recipes", "recipes.yaml"])
        .current_dir(open_dir.path())
        .env("NO_COLOR", "1")
        .env("HOME", "/tmp")
        .output()
        .expect("setpriv runs (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    insta::assert_snapshot!(format!(
        "$ setpriv --reuid=65534 … firedrill images build --recipes {recipes}\n{}",
        relative(&stderr)
    ));
}
