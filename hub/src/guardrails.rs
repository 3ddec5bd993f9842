//! Loads the guard profile the hub applies to every prompt and answer.

use std::path::Path;

use causeway_guard::{DEFAULT_PROFILE, GuardEngine, GuardProfile};

/// Builds the guard engine from a profile file, or the `default` profile compiled into the binary.
pub fn load_engine(path: Option<&Path>) -> Result<GuardEngine, String> {
    let (source, text) = match path {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?,
        ),
        None => (
            "the built-in default profile".to_owned(),
            DEFAULT_PROFILE.to_owned(),
        ),
    };
    let profile = GuardProfile::from_toml(&text).map_err(|e| format!("{source}: {e}"))?;
    GuardEngine::new(profile).map_err(|e| format!("{source}: {e}"))
}
