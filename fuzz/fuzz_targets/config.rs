//! The config loader on any text: `${VAR}` substitution, YAML and the validating walk never
//! panic; a config is either accepted or refused with problems, each naming where.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_engine::config::EngineConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let env = |name: &str| (name == "SET").then(|| "1".to_string());
    if let Err(e) = EngineConfig::parse_with_env(text, env) {
        assert!(!e.problems.is_empty(), "a refusal names at least one problem");
    }
});
