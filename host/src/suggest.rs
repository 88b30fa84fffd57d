//! "Did you mean …?": the known name closest to a mistyped one, for the
//! errors that name something unknown (a function, an alias, an API, a
//! stage, a plan, a key).

/// The candidate most like `name` (Jaro–Winkler similarity above 0.8, as
/// a typo or a changed case is), if any.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_lowercase()), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// ` (did you mean X?)` when a candidate is close to `name`, else nothing:
/// to append to a "not found" message.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, candidates).map(|c| format!(" (did you mean {c}?)")).unwrap_or_default()
}

/// What to append to a "not found" message: the candidate most like
/// `name`, then `; {label}: a, b, c` — ` (did you mean prod?); its stages:
/// dev, prod`.
pub fn hint_and_list<'a>(name: &str, label: &str, candidates: impl IntoIterator<Item = &'a str> + Clone) -> String {
    format!("{}; {label}: {}", did_you_mean(name, candidates.clone()), list(candidates))
}

/// `a, b, c`, or `none`.
pub fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.into_iter().collect();
    if items.is_empty() { "none".to_string() } else { items.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_or_a_case_finds_its_name_and_nothing_else_does() {
        let names = ["ItemsFunction", "EchoFunction", "prod", "dev"];
        assert_eq!(closest("ItemsFuncton", names), Some("ItemsFunction"));
        assert_eq!(closest("itemsfunction", names), Some("ItemsFunction"));
        assert_eq!(closest("production", names), Some("prod"));
        assert_eq!(closest("staging", names), None);
        assert_eq!(did_you_mean("Echo", ["EchoFunction"]), " (did you mean EchoFunction?)");
        assert_eq!(did_you_mean("zzz", ["EchoFunction"]), "");
        assert_eq!(list([]), "none");
        assert_eq!(hint_and_list("prd", "its stages", ["dev", "prod"]), " (did you mean prod?); its stages: dev, prod");
    }
}
