//! The org commands' arguments, as clap parses them.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::orgfile::DeploymentMode;

/// The AWS connection options every org command takes.
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// The AWS region of the API calls (default: the standard provider chain's).
    #[arg(long)]
    pub region: Option<String>,
    /// An endpoint override for every AWS API (e.g. a local emulator).
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// API calls in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

/// Org commands.
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Write an org file from the live Organization (OU tree, accounts, the Causeway SCPs attached) and the
    /// hub's spoke registry (a `spoke` block for every account `org apply` registered).
    Init {
        /// Where to write it (`.yaml` or `.toml`); standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Overwrite `--out` if it exists.
        #[arg(long)]
        force: bool,
        /// The hub account (default: the management account).
        #[arg(long)]
        hub_account: Option<String>,
        /// The hub region (default: `--region` or the provider chain's region).
        #[arg(long)]
        hub_region: Option<String>,
        /// An approved region; repeat for several (default: the hub region).
        #[arg(long = "approved-region")]
        approved_regions: Vec<String>,
        /// The name prefix of Causeway's resources.
        #[arg(long, default_value = "causeway")]
        name_prefix: String,
        /// The hub API id (hub stack output `ApiId`); required when the hub's registry has spokes
        /// `org apply` registered, which the file then keeps.
        #[arg(long)]
        hub_api_id: Option<String>,
        /// The hub API stage (hub stack output `ApiStage`).
        #[arg(long, default_value = "v1")]
        hub_api_stage: String,
        /// The hub's spoke registry table (default: `<name-prefix>-spoke-registry`).
        #[arg(long)]
        registry_table: Option<String>,
        /// How spoke roles are deployed (default: `stackset` when the spoke StackSet exists or no spoke is
        /// registered, `assume_role` otherwise).
        #[arg(long, value_enum)]
        spoke_deployment: Option<DeploymentMode>,
        /// AWS options.
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Print the changes that would make the Organization match the org file. Exits 7 when there are some.
    Plan {
        /// The org file.
        #[arg(long)]
        org: PathBuf,
        /// AWS options.
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Make the planned changes. Safe to re-run: it plans again and finishes what is left.
    Apply {
        /// The org file.
        #[arg(long)]
        org: PathBuf,
        /// Where the external ids of new spoke invoker roles are written (one 0600 file per spoke).
        #[arg(long)]
        secrets_dir: Option<PathBuf>,
        /// AWS options.
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Report every difference between the org file and the live Organization. Exits 8 when there are some.
    Drift {
        /// The org file.
        #[arg(long)]
        org: PathBuf,
        /// AWS options.
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Print the org file's JSON Schema (for editor completion).
    Schema,
}
