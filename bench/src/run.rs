//! The orchestrator behind `bench/run.sh`: starts the mocks, then each system in turn, measures it with
//! `oha` and the streaming client, reads its process tree from `/proc`, and writes the results.
//!
//! Pinning: the system under test runs on CPU 0 (`taskset -c 0`); the mocks, `oha` and the streaming client
//! on CPU 1. Each system is started twice, once forwarding to the 0 ms mock (concurrency 1, rate search) and
//! once to the 20 ms mock (concurrency 64, streaming), since every gateway has one upstream.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::procfs;
use crate::ttft::{StreamKind, TtftSummary};

// === Settings ===

/// Durations and counts of one run.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Plan {
    /// Seconds of warm-up load before measuring each system instance.
    pub warmup_secs: u64,
    /// Requests per second of the concurrency-1 phase.
    pub c1_rate: u32,
    /// Seconds of the concurrency-1 phase.
    pub c1_secs: u64,
    /// Seconds of each step of the rate search.
    pub step_secs: u64,
    /// Connections `oha` keeps open during the rate search.
    pub step_connections: u32,
    /// Bisection steps after the ramp, per threshold.
    pub bisect_steps: u32,
    /// Seconds of the concurrency-64 phase.
    pub c64_secs: u64,
    /// Streamed requests measured for time to first token.
    pub ttft_requests: u32,
    /// Latency of the slow mock, milliseconds.
    pub slow_mock_ms: u64,
    /// Delay between streamed events of both mocks, milliseconds.
    pub stream_chunk_delay_ms: u64,
    /// Content deltas per streamed answer.
    pub stream_chunks: usize,
}

impl Plan {
    /// The full run.
    pub fn full() -> Self {
        Self {
            warmup_secs: 5,
            c1_rate: 20,
            c1_secs: 20,
            step_secs: 4,
            step_connections: 128,
            bisect_steps: 3,
            c64_secs: 15,
            ttft_requests: 200,
            slow_mock_ms: 20,
            stream_chunk_delay_ms: 2,
            stream_chunks: 16,
        }
    }

    /// A smoke run with short phases.
    pub fn quick() -> Self {
        Self {
            warmup_secs: 1,
            c1_secs: 5,
            step_secs: 2,
            bisect_steps: 2,
            c64_secs: 4,
            ttft_requests: 30,
            ..Self::full()
        }
    }
}

/// The systems measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SystemId {
    /// The load generator straight to the mock (the baseline added latency is measured from).
    Direct,
    /// The bare axum pass-through.
    Passthrough,
    /// The Causeway hub, every governance feature on, OpenAI-compatible provider.
    Hub,
    /// The same hub with the Bedrock Converse provider (the mock's Bedrock endpoints).
    HubBedrock,
    /// LiteLLM proxy.
    Litellm,
    /// Portkey gateway.
    Portkey,
}

impl SystemId {
    /// Every system, in table order.
    pub const ALL: [Self; 6] = [
        Self::Direct,
        Self::Passthrough,
        Self::Hub,
        Self::HubBedrock,
        Self::Litellm,
        Self::Portkey,
    ];

    /// The name in tables and on the chart.
    pub fn label(self) -> &'static str {
        match self {
            Self::Direct => "direct to mock",
            Self::Passthrough => "bare pass-through (axum)",
            Self::Hub => "Causeway hub, all governance on",
            Self::HubBedrock => "Causeway hub, Bedrock Converse",
            Self::Litellm => "LiteLLM proxy",
            Self::Portkey => "Portkey gateway",
        }
    }

    /// The id used on the command line and in `latest.json`.
    pub fn key(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Passthrough => "passthrough",
            Self::Hub => "hub",
            Self::HubBedrock => "hub-bedrock",
            Self::Litellm => "litellm",
            Self::Portkey => "portkey",
        }
    }
}

/// Where everything lives.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The repository root (for `policies/`).
    pub repo: PathBuf,
    /// `causeway-hub`.
    pub hub_bin: PathBuf,
    /// `bench-passthrough`.
    pub passthrough_bin: PathBuf,
    /// `bench-mock`.
    pub mock_bin: PathBuf,
    /// This binary (for the streaming client).
    pub self_bin: PathBuf,
    /// `oha`.
    pub oha: PathBuf,
    /// The virtualenv holding LiteLLM.
    pub venv: PathBuf,
    /// `bench/` (holding `node_modules` and the Portkey preload).
    pub bench_dir: PathBuf,
    /// Transient files: configs, logs, pid list.
    pub scratch: PathBuf,
    /// Where `latest.json`, the table and the chart go.
    pub results: PathBuf,
}

// === Results ===

/// One `oha` run, reduced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadResult {
    /// Target rate (requests per second), when fixed.
    pub target_rate: Option<u32>,
    /// Connections.
    pub connections: u32,
    /// Seconds.
    pub secs: u64,
    /// Achieved requests per second (every finished request).
    pub rps: f64,
    /// Requests answered with 200.
    pub ok: u64,
    /// Requests that failed (non-200 status or transport error; requests cut by the deadline excluded).
    pub failed: u64,
    /// Latency percentiles, milliseconds (latency-corrected when the rate is fixed).
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
}

impl LoadResult {
    fn healthy(&self) -> bool {
        let total = self.ok + self.failed;
        total > 0 && self.failed * 1000 <= total
    }

    /// Whether this fixed-rate step held `threshold_ms` at p99 and kept up with its rate.
    fn passes(&self, threshold_ms: f64) -> bool {
        let kept_up = self
            .target_rate
            .is_none_or(|r| self.rps >= 0.95 * f64::from(r));
        self.healthy() && kept_up && self.p99_ms < threshold_ms
    }
}

/// Everything measured for one system.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SystemResult {
    /// Which system.
    pub system: SystemId,
    /// Its label.
    pub label: String,
    /// Concurrency 1, fixed rate, 0 ms mock.
    pub c1: Option<LoadResult>,
    /// Highest passing rate with p99 under 5 ms (0 when even the lowest step failed).
    pub max_rate_p99_5ms: Option<u32>,
    /// Highest passing rate with p99 under 50 ms.
    pub max_rate_p99_50ms: Option<u32>,
    /// Every step of the rate search.
    pub rate_steps: Vec<LoadResult>,
    /// Concurrency 64, open throttle, slow mock.
    pub c64: Option<LoadResult>,
    /// Streaming time to first token, slow mock.
    pub ttft: Option<TtftSummary>,
    /// Peak resident memory of the process tree, MiB (sum of `VmHWM`, max over both instances).
    pub peak_rss_mib: Option<f64>,
    /// CPU seconds of the process tree per 1000 requests in the concurrency-64 phase.
    pub cpu_s_per_1k: Option<f64>,
    /// 1-minute load average before and after this system's measurements.
    pub load_before: f64,
    /// After.
    pub load_after: f64,
    /// What the first governed answer reported (hub only): the guard findings and the audit id header.
    pub check: Option<Value>,
    /// Problems met; the figures they touch are absent.
    pub errors: Vec<String>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// `run.sh` arguments as given.
    pub command: String,
    /// Quick mode.
    pub quick: bool,
    /// Durations and counts.
    pub plan: Plan,
    /// Versions of everything measured and measuring.
    pub versions: Value,
    /// The machine.
    pub machine: Value,
    /// What the hub had on.
    pub hub_features: Vec<String>,
    /// Started and finished, RFC 3339.
    pub started: String,
    /// Finished.
    pub finished: String,
    /// Per system, in order.
    pub systems: Vec<SystemResult>,
}

// === Processes ===

/// A started process; stopped (its whole tree, by pid) on drop.
#[derive(Debug)]
struct Proc {
    name: String,
    child: Child,
}

impl Proc {
    fn start(name: &str, mut command: Command, log: &Path, pids: &Path) -> anyhow::Result<Self> {
        let out =
            std::fs::File::create(log).with_context(|| format!("creating `{}`", log.display()))?;
        let err = out.try_clone()?;
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        use std::io::Write as _;
        let mut list = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(pids)?;
        writeln!(list, "{}", child.id())?;
        Ok(Self {
            name: name.to_owned(),
            child,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(&mut self) {
        let members = procfs::tree(self.pid());
        if !members.is_empty() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .args(members.iter().map(u32::to_string))
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let left = procfs::tree(self.pid());
        if matches!(self.child.try_wait(), Ok(None)) || left.len() > 1 {
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(left.iter().map(u32::to_string))
                .stderr(Stdio::null())
                .status();
            let _ = self.child.wait();
        }
        crate::note(&format!("  stopped {}", self.name));
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// `program` pinned to `cpu`, at niceness -10 so that other work on a shared machine disturbs the
/// measurement less (every benchmark process gets the same priority, so no system is favoured).
fn pinned(cpu: u32, program: &Path) -> Command {
    let mut command = Command::new("nice");
    command
        .args(["-n", "-10", "taskset", "-c"])
        .arg(cpu.to_string())
        .arg(program);
    command
}

// === The systems ===

/// How a load generator reaches a system.
#[derive(Debug, Clone)]
struct Target {
    url: String,
    /// Where streamed requests go (the same URL, except Bedrock's `converse-stream`).
    stream_url: String,
    headers: Vec<(String, String)>,
    body: PathBuf,
    stream_body: PathBuf,
    stream_kind: StreamKind,
}

/// Ports: mocks 18000/18001, systems 18100 + n.
const MOCK_FAST_PORT: u16 = 18000;
const MOCK_SLOW_PORT: u16 = 18001;
const SYSTEM_PORT: u16 = 18100;

struct Runner {
    paths: Paths,
    plan: Plan,
    token: String,
    ticks: u64,
    pids: PathBuf,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing `{}`", path.display()))
}

fn toml_str(path: &Path) -> String {
    // TOML basic strings: escape backslashes and quotes.
    format!(
        "\"{}\"",
        path.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    )
}

impl Runner {
    fn scratch(&self, name: &str) -> PathBuf {
        self.paths.scratch.join(name)
    }

    fn mock_url(port: u16) -> String {
        format!("http://127.0.0.1:{port}")
    }

    /// The hub's configuration: OIDC JWT verification against a local JWKS, the repository's Cedar policies
    /// and catalog, the default guard profile (input and output), budgets on but high, the embedded durable
    /// audit store in a fresh directory.
    fn hub_config(&self, instance: &str, port: u16, mock_port: u16) -> anyhow::Result<PathBuf> {
        let data = self.scratch(&format!("hub-data-{instance}"));
        if data.exists() {
            std::fs::remove_dir_all(&data)?;
        }
        std::fs::create_dir_all(&data)?;
        let policies = self.paths.repo.join("policies");
        let config = format!(
            r#"# Written by bench/run.sh: every governance feature on.
data_dir = {data}

[server]
listen = "127.0.0.1:{port}"
# One load generator on one address: the flood ceilings would measure themselves.
max_requests_per_source_per_second = 0
max_requests_per_connection_per_second = 0

[identity]
mode = "oidc"
issuer = "{issuer}"
audience = "{audience}"
jwks_file = {jwks}
require_workload = false

[policy]
dir = {policies}
guard_profile = {profile}
reload_secs = 0

[providers]
timeout_secs = 60

[providers.local]
enabled = false

[providers.openai]
base_url = "{mock}/v1"

[providers.bedrock]
region = "us-east-1"
endpoint_url = "{mock}"
max_attempts = 1

[budgets]
user_requests_per_minute = 1000000000
user_tokens_per_day = 1000000000000
global_requests_per_minute = 1000000000

[audit]
store = "embedded"
"#,
            data = toml_str(&data),
            issuer = crate::token::ISSUER,
            audience = crate::token::AUDIENCE,
            jwks = toml_str(&self.scratch("jwks.json")),
            policies = toml_str(&policies),
            profile = toml_str(&policies.join("guard-profiles/default.toml")),
            mock = Self::mock_url(mock_port),
        );
        let path = self.scratch(&format!("hub-{instance}.toml"));
        write(&path, &config)?;
        Ok(path)
    }

    fn start_system(
        &self,
        system: SystemId,
        instance: &str,
        mock_port: u16,
    ) -> anyhow::Result<(Proc, Target)> {
        let port = SYSTEM_PORT
            + match (system, instance) {
                (_, "fast") => 0,
                _ => 1,
            };
        let log = self.scratch(&format!("{}-{instance}.log", system.key()));
        let body = self.scratch("body.json");
        let stream_body = self.scratch("body-stream.json");
        let openai = |base: String, headers: Vec<(String, String)>| Target {
            url: format!("{base}/v1/chat/completions"),
            stream_url: format!("{base}/v1/chat/completions"),
            headers,
            body: body.clone(),
            stream_body: stream_body.clone(),
            stream_kind: StreamKind::Sse,
        };
        let hub_headers = vec![
            ("authorization".to_owned(), format!("Bearer {}", self.token)),
            (
                "x-causeway-purpose".to_owned(),
                crate::prompt::PURPOSE.to_owned(),
            ),
        ];
        let base = format!("http://127.0.0.1:{port}");
        match system {
            SystemId::Direct => anyhow::bail!("the direct baseline starts no system"),
            SystemId::Passthrough => {
                let mut command = pinned(0, &self.paths.passthrough_bin);
                command
                    .arg("--listen")
                    .arg(format!("127.0.0.1:{port}"))
                    .arg("--upstream")
                    .arg(Self::mock_url(mock_port));
                let proc = Proc::start("pass-through", command, &log, &self.pids)?;
                Ok((proc, openai(base, Vec::new())))
            }
            SystemId::Hub | SystemId::HubBedrock => {
                let config =
                    self.hub_config(&format!("{}-{instance}", system.key()), port, mock_port)?;
                let mut command = pinned(0, &self.paths.hub_bin);
                command
                    .arg("serve")
                    .arg("--config")
                    .arg(&config)
                    .env_remove("RUST_LOG")
                    // Static test credentials for SigV4 to the mock; never a real account.
                    .env("AWS_ACCESS_KEY_ID", "AKIDCAUSEWAYBENCH")
                    .env("AWS_SECRET_ACCESS_KEY", "causeway-bench-not-a-secret")
                    .env("AWS_REGION", "us-east-1")
                    .env("AWS_EC2_METADATA_DISABLED", "true")
                    .current_dir(&self.paths.scratch);
                let proc = Proc::start("hub", command, &log, &self.pids)?;
                let mut target = openai(base, hub_headers);
                if system == SystemId::HubBedrock {
                    target.body = self.scratch("body-bedrock.json");
                    target.stream_body = self.scratch("body-bedrock-stream.json");
                }
                Ok((proc, target))
            }
            SystemId::Litellm => {
                let config = format!(
                    "model_list:\n  - model_name: {model}\n    litellm_params:\n      model: openai/causeway-bench-model\n      api_base: {mock}/v1\n      api_key: sk-bench-upstream\ngeneral_settings:\n  master_key: sk-bench-master\n",
                    model = crate::prompt::MODEL,
                    mock = Self::mock_url(mock_port),
                );
                let path = self.scratch(&format!("litellm-{instance}.yaml"));
                write(&path, &config)?;
                let mut command = pinned(0, &self.paths.venv.join("bin/litellm"));
                command
                    .arg("--config")
                    .arg(&path)
                    .arg("--host")
                    .arg("127.0.0.1")
                    .arg("--port")
                    .arg(port.to_string())
                    .arg("--num_workers")
                    .arg("1")
                    // The bundled cost map, never the one on the internet.
                    .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
                    .env("LITELLM_TELEMETRY", "False")
                    // For a model name it recognises (e.g. a Llama) LiteLLM fetches a tokenizer from the
                    // Hugging Face hub to count streamed tokens; the upstream name above is generic, and
                    // the hub client is kept offline so nothing is ever fetched.
                    .env("HF_HUB_OFFLINE", "1")
                    .env("TRANSFORMERS_OFFLINE", "1")
                    .env(
                        "PATH",
                        format!("{}:/usr/bin:/bin", self.paths.venv.join("bin").display()),
                    )
                    .current_dir(&self.paths.scratch);
                let proc = Proc::start("litellm", command, &log, &self.pids)?;
                Ok((
                    proc,
                    openai(
                        base,
                        vec![(
                            "authorization".to_owned(),
                            "Bearer sk-bench-master".to_owned(),
                        )],
                    ),
                ))
            }
            SystemId::Portkey => {
                let mut command = pinned(0, Path::new("node"));
                command
                    .arg("--require")
                    .arg(self.paths.bench_dir.join("portkey-localhost.cjs"))
                    .arg(
                        self.paths
                            .bench_dir
                            .join("node_modules/@portkey-ai/gateway/build/start-server.js"),
                    )
                    .arg(format!("--port={port}"))
                    .arg("--headless")
                    .env("NODE_ENV", "production")
                    .current_dir(&self.paths.scratch);
                let proc = Proc::start("portkey", command, &log, &self.pids)?;
                Ok((
                    proc,
                    openai(
                        base,
                        vec![
                            ("x-portkey-provider".to_owned(), "openai".to_owned()),
                            (
                                "x-portkey-custom-host".to_owned(),
                                format!("{}/v1", Self::mock_url(mock_port)),
                            ),
                            (
                                "authorization".to_owned(),
                                "Bearer sk-bench-upstream".to_owned(),
                            ),
                        ],
                    ),
                ))
            }
        }
    }

    fn direct_target(&self, mock_port: u16, bedrock: bool) -> Target {
        let base = Self::mock_url(mock_port);
        if bedrock {
            Target {
                url: format!("{base}/model/bench/converse"),
                stream_url: format!("{base}/model/bench/converse-stream"),
                headers: Vec::new(),
                body: self.scratch("converse.json"),
                stream_body: self.scratch("converse.json"),
                stream_kind: StreamKind::Eventstream,
            }
        } else {
            Target {
                url: format!("{base}/v1/chat/completions"),
                stream_url: format!("{base}/v1/chat/completions"),
                headers: Vec::new(),
                body: self.scratch("body.json"),
                stream_body: self.scratch("body-stream.json"),
                stream_kind: StreamKind::Sse,
            }
        }
    }

    /// Sends one real request until it succeeds (or `timeout`); returns the body.
    fn ready(
        &self,
        target: &Target,
        mut proc: Option<&mut Proc>,
        timeout: Duration,
    ) -> anyhow::Result<(Value, Option<String>)> {
        let body = std::fs::read(&target.body)?;
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < timeout {
            if let Some(proc) = proc.as_mut()
                && let Ok(Some(status)) = proc.child.try_wait()
            {
                anyhow::bail!(
                    "{} exited ({status}); see its log in the scratch directory",
                    proc.name
                );
            }
            let attempt = self.runtime.block_on(async {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()?;
                let mut request = client
                    .post(&target.url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                for (name, value) in &target.headers {
                    request = request.header(name, value);
                }
                let response = request.send().await?;
                let status = response.status();
                let audit = response
                    .headers()
                    .get("x-causeway-audit-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let text = response.text().await?;
                anyhow::ensure!(status.is_success(), "status {status}: {text}");
                let value: Value = serde_json::from_str(&text).context("the answer is not JSON")?;
                Ok::<_, anyhow::Error>((value, audit))
            });
            match attempt {
                Ok(done) => return Ok(done),
                Err(err) => last = format!("{err:#}"),
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        anyhow::bail!("not ready after {}s: {last}", timeout.as_secs())
    }

    fn oha(
        &self,
        target: &Target,
        connections: u32,
        secs: u64,
        rate: Option<u32>,
    ) -> anyhow::Result<LoadResult> {
        let mut command = pinned(1, &self.paths.oha);
        command
            .args(["--no-tui", "--output-format", "json", "-m", "POST"])
            .args(["-T", "application/json", "-D"])
            .arg(&target.body)
            .arg("-c")
            .arg(connections.to_string())
            .arg("-z")
            .arg(format!("{secs}s"));
        if let Some(rate) = rate {
            command
                .arg("-q")
                .arg(rate.to_string())
                .arg("--latency-correction");
        }
        for (name, value) in &target.headers {
            command.arg("-H").arg(format!("{name}: {value}"));
        }
        command.arg(&target.url);
        let out = command.output().context("running oha")?;
        anyhow::ensure!(
            out.status.success(),
            "oha failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).context("reading oha's JSON")?;
        parse_oha(&report, rate, connections, secs)
    }

    fn ttft(&self, target: &Target) -> anyhow::Result<TtftSummary> {
        let mut command = pinned(1, &self.paths.self_bin);
        command
            .arg("ttft")
            .arg("--url")
            .arg(&target.stream_url)
            .arg("--body")
            .arg(&target.stream_body)
            .arg("--kind")
            .arg(match target.stream_kind {
                StreamKind::Sse => "sse",
                StreamKind::Eventstream => "eventstream",
            })
            .arg("--requests")
            .arg(self.plan.ttft_requests.to_string())
            .arg("--warmup")
            .arg("10")
            .arg("--header")
            .arg("content-type: application/json");
        for (name, value) in &target.headers {
            command.arg("--header").arg(format!("{name}: {value}"));
        }
        let out = command.output().context("running the streaming client")?;
        anyhow::ensure!(
            out.status.success(),
            "streaming client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).context("reading the streaming client's JSON")
    }

    /// One fixed-rate step; a failing step is run once more and the better of the two kept, so one
    /// scheduling hiccup on a shared machine does not end the search.
    fn step(
        &self,
        target: &Target,
        rate: u32,
        threshold_ms: f64,
        steps: &mut Vec<LoadResult>,
    ) -> Option<LoadResult> {
        let mut best: Option<LoadResult> = None;
        for attempt in 0..2 {
            match self.oha(
                target,
                self.plan.step_connections,
                self.plan.step_secs,
                Some(rate),
            ) {
                Ok(r) => {
                    crate::note(&format!(
                        "    rate {rate}/s{}: achieved {:.0}/s p50 {:.2} ms p99 {:.2} ms failed {}",
                        if attempt > 0 { " (again)" } else { "" },
                        r.rps,
                        r.p50_ms,
                        r.p99_ms,
                        r.failed
                    ));
                    steps.push(r.clone());
                    let better = best.as_ref().is_none_or(|b| {
                        (r.passes(threshold_ms), -r.p99_ms) > (b.passes(threshold_ms), -b.p99_ms)
                    });
                    if better {
                        best = Some(r);
                    }
                }
                Err(err) => crate::note(&format!("    rate {rate}/s: {err:#}")),
            }
            // Let queues drain before the next step.
            std::thread::sleep(Duration::from_millis(500));
            if best.as_ref().is_some_and(|b| b.passes(threshold_ms)) {
                break;
            }
        }
        best
    }

    /// The rate search. Ramp: fixed rates 25, 50, 100, … (doubling) until a step misses p99 < 50 ms. For each
    /// threshold (5 ms, 50 ms), the highest passing ramp rate and the ramp rate above it bound a bisection of
    /// `bisect_steps` steps. A step passes when it kept up with its rate (≥ 95 %), at most 0.1 % of requests
    /// failed, and its latency-corrected p99 was under the threshold; a failing step is retried once.
    fn rate_search(&self, target: &Target, result: &mut SystemResult) {
        let thresholds = [5.0, 50.0];
        let mut steps = Vec::new();
        let mut ramp: Vec<(u32, Option<LoadResult>)> = Vec::new();
        let mut rate = 25;
        loop {
            // Retry against the threshold that still matters: 5 ms until it has failed once, then 50 ms.
            let strict_open = ramp
                .iter()
                .all(|(_, r)| r.as_ref().is_some_and(|r| r.passes(thresholds[0])));
            let threshold = if strict_open {
                thresholds[0]
            } else {
                thresholds[1]
            };
            let r = self.step(target, rate, threshold, &mut steps);
            let ok = r.as_ref().is_some_and(|r| r.passes(thresholds[1]));
            ramp.push((rate, r));
            if !ok || rate >= 64_000 {
                break;
            }
            rate *= 2;
        }
        let mut found = [0_u32; 2];
        for (i, t) in thresholds.into_iter().enumerate() {
            let mut low = ramp
                .iter()
                .filter(|(_, r)| r.as_ref().is_some_and(|r| r.passes(t)))
                .map(|(rate, _)| *rate)
                .max()
                .unwrap_or(0);
            let mut high = low.saturating_mul(2);
            let above_was_tried = ramp.iter().any(|(rate, _)| *rate == high);
            if low > 0 && above_was_tried {
                for _ in 0..self.plan.bisect_steps {
                    if high - low <= low / 20 {
                        break;
                    }
                    let mid = low + (high - low) / 2;
                    match self.step(target, mid, t, &mut steps) {
                        Some(r) if r.passes(t) => low = mid,
                        _ => high = mid,
                    }
                }
            }
            found[i] = low;
        }
        result.max_rate_p99_5ms = Some(found[0]);
        result.max_rate_p99_50ms = Some(found[1]);
        result.rate_steps = steps;
    }

    fn measure(&self, system: SystemId, direct_bedrock: bool) -> SystemResult {
        let mut result = SystemResult {
            system,
            label: system.label().to_owned(),
            c1: None,
            max_rate_p99_5ms: None,
            max_rate_p99_50ms: None,
            rate_steps: Vec::new(),
            c64: None,
            ttft: None,
            peak_rss_mib: None,
            cpu_s_per_1k: None,
            load_before: procfs::load_average(),
            load_after: f64::NAN,
            check: None,
            errors: Vec::new(),
        };
        crate::note(&format!(
            "== {} (load {:.2})",
            system.label(),
            result.load_before
        ));
        let mut peak: Option<f64> = None;
        for (instance, mock_port) in [("fast", MOCK_FAST_PORT), ("slow", MOCK_SLOW_PORT)] {
            let started = if system == SystemId::Direct {
                Ok((None, self.direct_target(mock_port, direct_bedrock)))
            } else {
                self.start_system(system, instance, mock_port)
                    .map(|(p, t)| (Some(p), t))
            };
            let (mut proc, target) = match started {
                Ok(s) => s,
                Err(err) => {
                    result.errors.push(format!("{instance}: {err:#}"));
                    continue;
                }
            };
            match self.ready(&target, proc.as_mut(), Duration::from_secs(180)) {
                Ok((answer, audit)) => {
                    if matches!(system, SystemId::Hub | SystemId::HubBedrock) && instance == "fast"
                    {
                        result.check = Some(serde_json::json!({
                            "audit_id_header": audit,
                            "guards": answer.pointer("/causeway/guards"),
                            "usage": answer.get("usage"),
                        }));
                    }
                }
                Err(err) => {
                    result.errors.push(format!("{instance}: {err:#}"));
                    continue;
                }
            }
            if let Err(err) = self.oha(&target, 8, self.plan.warmup_secs, None) {
                result.errors.push(format!("{instance} warm-up: {err:#}"));
            }
            if instance == "fast" {
                crate::note(&format!("  c=1 at {}/s", self.plan.c1_rate));
                match self.oha(&target, 1, self.plan.c1_secs, Some(self.plan.c1_rate)) {
                    Ok(r) => result.c1 = Some(r),
                    Err(err) => result.errors.push(format!("c1: {err:#}")),
                }
                crate::note("  rate search");
                self.rate_search(&target, &mut result);
            } else {
                crate::note("  c=64, slow mock");
                let cpu_before = proc
                    .as_ref()
                    .map(|p| procfs::cpu_seconds(p.pid(), self.ticks));
                match self.oha(&target, 64, self.plan.c64_secs, None) {
                    Ok(r) => {
                        if let (Some(before), Some(p)) = (cpu_before, proc.as_ref()) {
                            let used = procfs::cpu_seconds(p.pid(), self.ticks) - before;
                            let requests = r.ok + r.failed;
                            if requests > 0 {
                                result.cpu_s_per_1k = Some(used * 1000.0 / requests as f64);
                            }
                        }
                        result.c64 = Some(r);
                    }
                    Err(err) => result.errors.push(format!("c64: {err:#}")),
                }
                crate::note("  streaming time to first token");
                match self.ttft(&target) {
                    Ok(t) => result.ttft = Some(t),
                    Err(err) => result.errors.push(format!("ttft: {err:#}")),
                }
            }
            if let Some(p) = proc.as_mut() {
                let rss = procfs::peak_rss_mib(p.pid());
                peak = Some(peak.map_or(rss, |m| m.max(rss)));
                p.stop();
            }
        }
        result.peak_rss_mib = peak;
        result.load_after = procfs::load_average();
        for err in &result.errors {
            crate::note(&format!("  problem: {err}"));
        }
        result
    }
}

/// Reduces `oha --output-format json`.
fn parse_oha(
    report: &Value,
    rate: Option<u32>,
    connections: u32,
    secs: u64,
) -> anyhow::Result<LoadResult> {
    let seconds = |pointer: &str| report.pointer(pointer).and_then(Value::as_f64);
    let statuses = report
        .get("statusCodeDistribution")
        .and_then(Value::as_object)
        .context("oha reported no status codes")?;
    let ok = statuses.get("200").and_then(Value::as_u64).unwrap_or(0);
    let other: u64 = statuses
        .iter()
        .filter(|(code, _)| code.as_str() != "200")
        .filter_map(|(_, n)| n.as_u64())
        .sum();
    let errors: u64 = report
        .get("errorDistribution")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(message, _)| !message.contains("deadline"))
        .filter_map(|(_, n)| n.as_u64())
        .sum();
    Ok(LoadResult {
        target_rate: rate,
        connections,
        secs,
        rps: seconds("/summary/requestsPerSec").unwrap_or(0.0),
        ok,
        failed: other + errors,
        p50_ms: seconds("/latencyPercentiles/p50").unwrap_or(f64::NAN) * 1000.0,
        p99_ms: seconds("/latencyPercentiles/p99").unwrap_or(f64::NAN) * 1000.0,
    })
}

// === The run ===

fn command_version(program: &Path, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

fn versions(paths: &Paths) -> Value {
    let portkey = std::fs::read_to_string(
        paths
            .bench_dir
            .join("node_modules/@portkey-ai/gateway/package.json"),
    )
    .ok()
    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
    .and_then(|v| v.get("version").cloned())
    .unwrap_or(Value::Null);
    let litellm = command_version(
        &paths.venv.join("bin/python"),
        &[
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ],
    );
    serde_json::json!({
        "causeway_hub": command_version(&paths.hub_bin, &["--version"]),
        "rustc": command_version(Path::new("rustc"), &["--version"]),
        "oha": command_version(&paths.oha, &["--version"]),
        "litellm": litellm,
        "python": command_version(&paths.venv.join("bin/python"), &["--version"]),
        "portkey_gateway": portkey,
        "node": command_version(Path::new("node"), &["--version"]),
    })
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split(':').nth(1))
        })
        .map(str::trim)
        .unwrap_or("")
        .to_owned();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    serde_json::json!({
        "cpus": cpus,
        "cpu_model": model,
        "memory_gib": (mem_kib as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "kernel": command_version(Path::new("uname"), &["-sr"]),
    })
}

/// What the hub had on, for the record.
pub fn hub_features() -> Vec<String> {
    [
        "identity: oidc mode, ES256 JWT verified against a JWKS file (iss, aud, exp, nbf); a verified token is remembered for up to 60 s",
        "authorization: Cedar, the repository's policies/ (default deny; permit analysts-analytics)",
        "budgets: per-user requests per minute, per-user tokens per day, global requests per minute; limits high enough not to trip",
        "input guard: default guard profile (NFKC normalisation, PII detection: the e-mail address and phone number are masked, denied words, topics, injection scoring), guardrail system instructions prepended",
        "output guard: default profile on the answer (PII, words), streamed answers included",
        "audit: embedded store, hash-chained, SQLite WAL with synchronous = FULL; the record is durable before the answer leaves",
        "logging: the default (text, info) to a file",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// Runs every selected system and writes `latest.json`, the markdown table and the chart.
pub fn run(
    mut paths: Paths,
    plan: Plan,
    quick: bool,
    only: &[SystemId],
    command: String,
) -> anyhow::Result<RunResult> {
    std::fs::create_dir_all(&paths.scratch)?;
    std::fs::create_dir_all(&paths.results)?;
    // Systems run with the scratch directory as their working directory: every path must be absolute.
    for path in [
        &mut paths.repo,
        &mut paths.scratch,
        &mut paths.results,
        &mut paths.bench_dir,
        &mut paths.venv,
        &mut paths.hub_bin,
        &mut paths.passthrough_bin,
        &mut paths.mock_bin,
        &mut paths.oha,
    ] {
        if let Ok(absolute) = std::path::absolute(&*path) {
            *path = absolute;
        }
    }
    let pids = paths.scratch.join("pids");
    let _ = std::fs::remove_file(&pids);
    let token = crate::token::issue(
        &paths.scratch.join("jwks.json"),
        "bench-user",
        &["analysts"],
        86_400,
    )?;
    let scratch = |n: &str| paths.scratch.join(n);
    // Kept for bench/profile.sh, which drives the hub with the same token.
    write(&scratch("token"), &token)?;
    write(
        &scratch("body.json"),
        &crate::prompt::chat_body(false).to_string(),
    )?;
    write(
        &scratch("body-stream.json"),
        &crate::prompt::chat_body(true).to_string(),
    )?;
    write(
        &scratch("body-bedrock.json"),
        &crate::prompt::chat_body_bedrock(false).to_string(),
    )?;
    write(
        &scratch("body-bedrock-stream.json"),
        &crate::prompt::chat_body_bedrock(true).to_string(),
    )?;
    let converse = serde_json::json!({
        "messages": [{"role": "user", "content": [{"text": crate::prompt::document()}]}],
        "inferenceConfig": {"maxTokens": crate::prompt::MAX_TOKENS},
    });
    write(&scratch("converse.json"), &converse.to_string())?;
    let runner = Runner {
        ticks: procfs::ticks_per_second()?,
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        paths,
        plan,
        token,
        pids,
    };
    let started = time::OffsetDateTime::now_utc();
    let mut mocks = Vec::new();
    for (port, latency) in [(MOCK_FAST_PORT, 0), (MOCK_SLOW_PORT, plan.slow_mock_ms)] {
        let mut command = pinned(1, &runner.paths.mock_bin);
        command
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--latency-ms")
            .arg(latency.to_string())
            .arg("--stream-chunks")
            .arg(plan.stream_chunks.to_string())
            .arg("--stream-chunk-delay-ms")
            .arg(plan.stream_chunk_delay_ms.to_string());
        mocks.push(Proc::start(
            &format!("mock {latency} ms"),
            command,
            &runner.scratch(&format!("mock-{latency}ms.log")),
            &runner.pids,
        )?);
    }
    let mut systems = Vec::new();
    for system in SystemId::ALL {
        if !only.is_empty() && !only.contains(&system) {
            continue;
        }
        systems.push(runner.measure(system, false));
        if system == SystemId::HubBedrock {
            // The Bedrock hub's own baseline: the load generator straight to the mock's Converse endpoint.
            let mut direct = runner.measure(SystemId::Direct, true);
            direct.label = "direct to mock (Bedrock Converse)".to_owned();
            systems.push(direct);
        }
    }
    drop(mocks);
    let result = RunResult {
        command,
        quick,
        plan,
        versions: versions(&runner.paths),
        machine: machine(),
        hub_features: hub_features(),
        started: started.format(&time::format_description::well_known::Rfc3339)?,
        finished: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)?,
        systems,
    };
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(rate: Option<u32>, rps: f64, failed: u64, p99: f64) -> LoadResult {
        LoadResult {
            target_rate: rate,
            connections: 1,
            secs: 1,
            rps,
            ok: 1000,
            failed,
            p50_ms: p99 / 2.0,
            p99_ms: p99,
        }
    }

    #[test]
    fn a_step_passes_only_when_it_kept_up_stayed_healthy_and_under_the_threshold() {
        assert!(step(Some(100), 99.0, 0, 4.0).passes(5.0));
        assert!(!step(Some(100), 99.0, 0, 6.0).passes(5.0));
        assert!(!step(Some(100), 80.0, 0, 4.0).passes(5.0));
        assert!(!step(Some(100), 99.0, 5, 4.0).passes(5.0));
        assert!(step(None, 10.0, 1, 40.0).passes(50.0));
    }

    #[test]
    fn oha_json_is_reduced_to_ok_failed_and_milliseconds() {
        let report = serde_json::json!({
            "summary": {"requestsPerSec": 99.5},
            "latencyPercentiles": {"p50": 0.0012, "p99": 0.0034},
            "statusCodeDistribution": {"200": 990, "503": 2},
            "errorDistribution": {"aborted due to deadline": 3, "connection reset": 1},
        });
        let r = parse_oha(&report, Some(100), 4, 10).unwrap();
        assert_eq!((r.ok, r.failed), (990, 3));
        assert!((r.p50_ms - 1.2).abs() < 1e-9 && (r.p99_ms - 3.4).abs() < 1e-9);
    }
}
