//! `causeway dev …`: development helpers for the embedded default.

use std::io::Write;
use std::path::PathBuf;

use causeway_contract::dev::{DEV_AUDIENCE, DEV_ISSUER, DevKey};
use clap::Subcommand;

use crate::{CliError, Output};

/// Development commands.
#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Mint a token signed by the development key of a hub's data directory. The hub trusts it only in
    /// `identity.mode = "dev"`.
    Token {
        /// The user (`sub`).
        #[arg(long)]
        sub: String,
        /// A group the user belongs to; repeat for several.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
        /// The hub's data directory (where it keeps the development key).
        #[arg(long, default_value = ".causeway", env = "CAUSEWAY_DATA_DIR")]
        data_dir: PathBuf,
    },
}

fn valid_name(value: &str) -> bool {
    !value.is_empty() && value.len() <= 256 && !value.chars().any(char::is_control)
}

/// Runs a dev command.
pub fn run(command: DevCommand, output: Output, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        DevCommand::Token {
            sub,
            groups,
            ttl,
            data_dir,
        } => {
            if !valid_name(&sub) {
                return Err(CliError::usage(
                    "`--sub` must be 1-256 printable characters",
                ));
            }
            if let Some(bad) = groups.iter().find(|g| !valid_name(g)) {
                return Err(CliError::usage(format!(
                    "group `{bad}` must be 1-256 printable characters"
                )));
            }
            if !(60..=86_400).contains(&ttl) {
                return Err(CliError::usage(
                    "`--ttl` must be between 60 and 86400 seconds",
                ));
            }
            let key = DevKey::load_or_create(&data_dir).map_err(|e| CliError::io(e.to_string()))?;
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let token = key
                .mint(&sub, &groups, now, ttl)
                .map_err(|e| CliError::io(e.to_string()))?;
            let written = match output {
                Output::Text => writeln!(out, "{token}"),
                Output::Json => writeln!(
                    out,
                    "{}",
                    serde_json::json!({
                        "token": token, "sub": sub, "groups": groups, "issuer": DEV_ISSUER,
                        "audience": DEV_AUDIENCE, "expires_at": now + ttl,
                    })
                ),
            };
            written.map_err(|e| CliError::io(format!("cannot write the token: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::{Cli, CliExit, run};

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("causeway").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn token_is_signed_by_the_data_dir_key() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let mut out = Vec::new();
        run(
            cli(&[
                "dev",
                "token",
                "--sub",
                "alice",
                "--group",
                "analysts",
                "--data-dir",
                data,
            ]),
            &mut out,
        )
        .unwrap();
        let token = String::from_utf8(out).unwrap();
        assert_eq!(token.matches('.').count(), 2, "{token}");
        assert!(dir.path().join(causeway_contract::dev::KEY_FILE).exists());
    }

    #[test]
    fn json_output_and_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let mut out = Vec::new();
        run(
            cli(&[
                "--output",
                "json",
                "dev",
                "token",
                "--sub",
                "bob",
                "--data-dir",
                data,
            ]),
            &mut out,
        )
        .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["sub"], "bob");
        assert_eq!(value["issuer"], "causeway-dev");

        let err = run(
            cli(&[
                "dev",
                "token",
                "--sub",
                "bob",
                "--ttl",
                "5",
                "--data-dir",
                data,
            ]),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(err.exit, CliExit::Usage);
        insta::assert_snapshot!(err.to_string(), @"`--ttl` must be between 60 and 86400 seconds");
    }
}
