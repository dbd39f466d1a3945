//! Naming a series or an alert by its labels, as PromQL writes them: `instance="kv1:2379"`.

use std::collections::BTreeMap;

/// The metric's name: a panel's title already says what it measures.
const NAME: &str = "__name__";

/// `k="v", …` in label order, without the metric's name.
pub(super) fn written<'a>(labels: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    labels
        .into_iter()
        .filter(|(k, _)| *k != NAME)
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The labels whose value some sibling does not share: what tells `labels` apart from them.
pub(super) fn distinguishing<'a>(
    labels: &'a BTreeMap<String, String>,
    siblings: &[&BTreeMap<String, String>],
) -> Vec<(&'a String, &'a String)> {
    labels
        .iter()
        .filter(|(k, v)| !siblings.iter().all(|s| s.get(*k) == Some(*v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_the_labels_that_differ_name_a_sibling() {
        let kv1 = set(&[("__name__", "up"), ("instance", "kv1:2379"), ("job", "kv")]);
        let kv2 = set(&[("__name__", "up"), ("instance", "kv2:2379"), ("job", "kv")]);
        assert_eq!(written(&kv1), "instance=\"kv1:2379\", job=\"kv\"");
        assert_eq!(
            written(distinguishing(&kv1, &[&kv1, &kv2])),
            "instance=\"kv1:2379\""
        );
        assert_eq!(written(distinguishing(&kv1, &[&kv1])), "", "alone");
    }
}
