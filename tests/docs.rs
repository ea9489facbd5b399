//! Docs that are generated from the code stay in step with it.

#[test]
fn counters_md_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/counters.md");
    let on_disk = std::fs::read_to_string(path).expect("docs/counters.md");
    assert_eq!(
        on_disk,
        hairpin::stats::counters_markdown(),
        "docs/counters.md is stale: regenerate with `cargo run -- counters > docs/counters.md`"
    );
}

#[test]
fn example_configs_validate() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configs");
    let mut n = 0;
    for e in std::fs::read_dir(dir).expect("docs/configs") {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) == Some("toml") {
            hairpin::config::Config::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 3, "expected at least 3 example configs, found {n}");
}
