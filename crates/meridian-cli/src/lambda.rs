//! `meridian serve` and `meridian lambda ...`: the local regions' Lambda host. Parsing and
//! presentation only; the work is in `meridian-local`.
//!
//! Exit codes: 0 success; 1 the function failed (`X-Amz-Function-Error`), was throttled, or the
//! function/version/alias does not exist; 2 unusable input.

use crate::{Global, OutputFormat};
use meridian_core::clock::EpochMillis;
use meridian_core::{Clock, RegionId, SystemClock};
use meridian_local::{CodeSource, FunctionSpec, FunctionVersion, HostConfig, InvokeRequest, LambdaError, LambdaHost};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// TCP port of the endpoint (0 picks a free port).
    #[arg(long, default_value_t = 9001)]
    pub port: u16,
    /// Address to listen on: loopback unless told otherwise (`0.0.0.0` serves every interface,
    /// with `--require-auth` advised).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Refuse unsigned requests and credentials other than the local ones (`meridian
    /// credentials`); S3 checks their signatures.
    #[arg(long)]
    pub require_auth: bool,
    /// Region of unsigned requests (signed ones name theirs in the credential scope).
    #[arg(long, default_value = "us-east-1")]
    pub default_region: String,
    /// Concurrent executions per function without reserved concurrency.
    #[arg(long, default_value_t = 10)]
    pub max_concurrency: u32,
    /// Seconds a warm execution environment may stay idle before it is stopped.
    #[arg(long, default_value_t = 300)]
    pub idle_timeout: u64,
}

#[derive(clap::Args, Debug)]
pub struct CredentialsArgs {
    /// The endpoint `meridian serve` printed.
    #[arg(long, default_value = "http://127.0.0.1:9001")]
    pub endpoint_url: String,
    /// The region clients call by default.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
}

/// Prints shell `export` lines: the local credentials, the region and the endpoint.
pub fn credentials(args: CredentialsArgs) -> anyhow::Result<ExitCode> {
    RegionId::new(&args.region)?;
    for (k, v) in meridian_local::credentials::client_env(&args.region, Some(&args.endpoint_url)) {
        println!("export {k}='{}'", v.replace('\'', "'\\''"));
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct RegionArg {
    /// The local region.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
}

#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub struct CodeArg {
    /// The deployment package (`fileb://` prefix accepted, as in the AWS CLI).
    #[arg(long)]
    pub zip_file: Option<String>,
    /// A directory to package (zipped deterministically).
    #[arg(long)]
    pub code_dir: Option<PathBuf>,
}

/// What Lambda takes as a package uploaded directly (zipped): 50 MB.
const MAX_DIRECT_UPLOAD_BYTES: u64 = 52_428_800;

impl CodeArg {
    /// A `--zip-file` must be a file of at most 50 MB, as Lambda's direct upload: checked before
    /// it is read, so a device or a pipe (`/dev/zero`) is refused at once.
    fn check(&self) -> Result<(), String> {
        let Some(z) = &self.zip_file else { return Ok(()) };
        let path = Path::new(z.strip_prefix("fileb://").unwrap_or(z));
        match std::fs::metadata(path) {
            Ok(m) if !m.is_file() => Err(format!("--zip-file {}: not a file (a deployment package is a .zip file)", path.display())),
            Ok(m) if m.len() > MAX_DIRECT_UPLOAD_BYTES => Err(format!(
                "--zip-file {}: {} bytes is more than Lambda's {MAX_DIRECT_UPLOAD_BYTES} for a direct upload; upload it to a bucket and deploy it from there (a stack's S3Bucket/S3Key)",
                path.display(),
                m.len()
            )),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("--zip-file {}: {e}", path.display())),
        }
    }

    fn source(&self) -> CodeSource {
        match (&self.zip_file, &self.code_dir) {
            (Some(z), _) => CodeSource::ZipFile(PathBuf::from(z.strip_prefix("fileb://").unwrap_or(z))),
            (None, Some(d)) => CodeSource::Directory(d.clone()),
            (None, None) => unreachable!("clap requires one of --zip-file and --code-dir"),
        }
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum LambdaCommand {
    /// List the functions of a region.
    List {
        #[command(flatten)]
        region: RegionArg,
    },
    /// Show a function's configuration (`NAME[:QUALIFIER]`).
    Get {
        #[command(flatten)]
        region: RegionArg,
        function: String,
    },
    /// Invoke a function (`NAME[:QUALIFIER]`, or an ARN) and print its response.
    Invoke {
        #[command(flatten)]
        region: RegionArg,
        function: String,
        /// The event, as JSON.
        #[arg(long, default_value = "{}")]
        payload: String,
        /// Print the invocation's log to stderr.
        #[arg(long)]
        log: bool,
    },
    /// Create a function from a zip file or a directory.
    CreateFunction {
        #[command(flatten)]
        region: RegionArg,
        #[arg(long)]
        function_name: String,
        /// provided.al2023, provided.al2, python3.x, nodejs18.x/20.x/22.x
        #[arg(long)]
        runtime: String,
        #[arg(long)]
        handler: String,
        #[command(flatten)]
        code: CodeArg,
        /// Seconds.
        #[arg(long, default_value_t = 3)]
        timeout: u32,
        #[arg(long, default_value_t = 128)]
        memory_size: u32,
        /// `KEY=VALUE`, repeatable.
        #[arg(long = "environment", value_parser = parse_key_value)]
        environment: Vec<(String, String)>,
        #[arg(long)]
        reserved_concurrency: Option<u32>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Replace the code of `$LATEST`.
    UpdateFunctionCode {
        #[command(flatten)]
        region: RegionArg,
        #[arg(long)]
        function_name: String,
        #[command(flatten)]
        code: CodeArg,
    },
    /// Publish `$LATEST` as a numbered version.
    PublishVersion {
        #[command(flatten)]
        region: RegionArg,
        #[arg(long)]
        function_name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List a function's versions.
    ListVersions {
        #[command(flatten)]
        region: RegionArg,
        #[arg(long)]
        function_name: String,
    },
    /// Create an alias, optionally sending a weight of traffic to one more version.
    CreateAlias {
        #[command(flatten)]
        region: RegionArg,
        #[arg(long)]
        function_name: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        function_version: String,
        /// `VERSION=WEIGHT` with the weight in 0..=1, e.g. `2=0.1`.
        #[arg(long, value_parser = parse_weight)]
        routing_config: Option<(String, f64)>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Change an alias's version or routing.
    UpdateAlias {
        #[command(flatten)]
        region: RegionArg,
        #[arg(long)]
        function_name: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        function_version: Option<String>,
        /// `VERSION=WEIGHT`; `none` removes the routing.
        #[arg(long, value_parser = parse_routing)]
        routing_config: Option<Routing>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List a function's aliases.
    ListAliases {
        #[command(flatten)]
        region: RegionArg,
        #[arg(long)]
        function_name: String,
    },
    /// Delete a function with its versions and aliases.
    DeleteFunction {
        #[command(flatten)]
        region: RegionArg,
        #[arg(long)]
        function_name: String,
    },
    /// Invocation metrics in one-minute buckets.
    Metrics {
        #[command(flatten)]
        region: RegionArg,
        #[arg(long)]
        function_name: String,
        /// A version or alias; without it, the whole function.
        #[arg(long)]
        qualifier: Option<String>,
        /// How many minutes back to show.
        #[arg(long, default_value_t = 60)]
        minutes: i64,
    },
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

fn parse_weight(s: &str) -> Result<(String, f64), String> {
    let (v, w) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not VERSION=WEIGHT"))?;
    let w: f64 = w.parse().map_err(|_| format!("weight `{w}` is not a number"))?;
    if !(0.0..=1.0).contains(&w) {
        return Err(format!("weight {w} is outside 0..=1"));
    }
    Ok((v.to_string(), w))
}

/// A new routing configuration for an alias: one weighted version, or none.
#[derive(Clone, Debug)]
pub struct Routing(Option<(String, f64)>);

fn parse_routing(s: &str) -> Result<Routing, String> {
    if s == "none" {
        Ok(Routing(None))
    } else {
        parse_weight(s).map(|w| Routing(Some(w)))
    }
}

fn region(r: &RegionArg) -> anyhow::Result<RegionId> {
    Ok(RegionId::new(&r.region)?)
}

fn open_host(global: &Global) -> anyhow::Result<LambdaHost> {
    Ok(LambdaHost::open(HostConfig::new(&global.data_dir))?)
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
}

/// User-facing failures of the thing asked about exit 1; broken input exits 2.
fn fail(e: LambdaError) -> anyhow::Result<ExitCode> {
    match e.http_status() {
        404 | 409 | 429 => {
            crate::error(&format!("{e} ({})", e.error_type()));
            Ok(ExitCode::from(1))
        }
        _ => Err(anyhow::Error::new(e)),
    }
}

macro_rules! try_lambda {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return fail(e),
        }
    };
}

pub fn serve(args: ServeArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let default_region = RegionId::new(&args.default_region)?;
    let mut cfg = HostConfig::new(&global.data_dir);
    cfg.max_concurrency_per_function = args.max_concurrency;
    cfg.idle_timeout = std::time::Duration::from_secs(args.idle_timeout);
    let host = LambdaHost::open(cfg)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind((args.bind, args.port))
            .await
            .map_err(|e| anyhow::anyhow!("failed to listen on {}:{}: {e}", args.bind, args.port))?;
        let addr = listener.local_addr()?;
        // Functions it starts can call it back (Lambda, S3, CodeDeploy's hook status, ...).
        host.set_service_endpoint(Some(format!("http://{addr}")));
        let _background = host.start_background();
        let endpoint = meridian_local::Endpoint::new(
            host.clone(),
            meridian_local::EndpointConfig {
                default_region: default_region.clone(),
                require_auth: args.require_auth,
            },
        );
        let server = tokio::spawn(endpoint.serve(listener));
        // So that `meridian stack outputs` can print local URLs of HTTP APIs.
        let url_file = global.data_dir.join(meridian_local::apigw::SERVE_URL_FILE);
        let _ = std::fs::write(&url_file, format!("http://{addr}\n"));
        println!("http://{addr}");
        eprintln!(
            "serving the local regions' AWS APIs (S3, CloudFormation, SSM, Secrets Manager, STS, CloudWatch, Lambda) at http://{addr} \
             (unsigned requests go to {default_region}{}); state in {}; `meridian credentials` prints what clients need; Ctrl-C stops",
            if args.require_auth { ", and are refused: --require-auth" } else { "" },
            global.data_dir.display()
        );
        wait_for_shutdown().await;
        server.abort();
        if std::fs::read_to_string(&url_file).is_ok_and(|u| u.trim() == format!("http://{addr}")) {
            let _ = std::fs::remove_file(&url_file);
        }
        host.shutdown()?;
        eprintln!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn version_row(v: &FunctionVersion) -> String {
    format!(
        "{:<32} {:<10} {:<16} {:<24} {:>6} {:>4}s  {}",
        v.function_name,
        v.version,
        v.runtime,
        v.handler,
        v.memory_size,
        v.timeout,
        &v.code_sha256.hex()[..12]
    )
}

const VERSION_HEADER: &str =
    "NAME                             VERSION    RUNTIME          HANDLER                  MEMORY TIME  CODE";

fn print_versions(list: &[FunctionVersion], output: OutputFormat, key: &str) {
    match output {
        OutputFormat::Json => print_json(&json!({ key: list.iter().map(|v| v.to_aws_json()).collect::<Vec<_>>() })),
        OutputFormat::Text => {
            println!("{VERSION_HEADER}");
            for v in list {
                println!("{}", version_row(v));
            }
        }
    }
}

fn print_alias(a: &meridian_local::Alias, output: OutputFormat) {
    match output {
        OutputFormat::Json => print_json(&a.to_aws_json()),
        OutputFormat::Text => println!("{}", alias_row(a)),
    }
}

fn alias_row(a: &meridian_local::Alias) -> String {
    let routing: Vec<String> = a
        .additional_version_weights
        .iter()
        .map(|(v, w)| format!("{v}={w}"))
        .collect();
    format!("{:<24} -> {:<8} {}", a.name, a.function_version, routing.join(","))
}

pub fn lambda(cmd: LambdaCommand, global: &Global) -> anyhow::Result<ExitCode> {
    let out = global.output;
    let host = open_host(global)?;
    match cmd {
        LambdaCommand::List { region: r } => {
            let list = try_lambda!(host.list_functions(&region(&r)?));
            print_versions(&list, out, "Functions");
        }
        LambdaCommand::Get { region: r, function } => {
            let (v, reserved) = try_lambda!(host.get_function(&region(&r)?, &function, None));
            match out {
                OutputFormat::Json => print_json(&v.to_aws_json()),
                OutputFormat::Text => {
                    println!("{}", v.version_arn());
                    println!("  runtime      {}", v.runtime);
                    println!("  handler      {}", v.handler);
                    println!("  memory       {} MB", v.memory_size);
                    println!("  timeout      {} s", v.timeout);
                    println!("  code         {} ({} bytes)", v.code_sha256, v.code_size);
                    if let Some(r) = reserved {
                        println!("  concurrency  {r} reserved");
                    }
                    for (k, val) in &v.environment {
                        println!("  env          {k}={val}");
                    }
                }
            }
        }
        LambdaCommand::Invoke {
            region: r,
            function,
            payload,
            log,
        } => {
            let region = region(&r)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let mut req = InvokeRequest::new(&function, payload.into_bytes());
            req.tail_logs = log;
            let result = rt.block_on(host.invoke(&region, req));
            let resp = try_lambda!(result);
            if let Some(text) = resp.log_text() {
                eprint!("{text}");
            }
            println!("{}", String::from_utf8_lossy(&resp.payload));
            eprintln!("executed version {}", resp.executed_version);
            host.shutdown()?;
            if let Some(fe) = &resp.function_error {
                crate::error(&format!("the function failed ({fe})"));
                return Ok(ExitCode::from(1));
            }
        }
        LambdaCommand::CreateFunction {
            region: r,
            function_name,
            runtime,
            handler,
            code,
            timeout,
            memory_size,
            environment,
            reserved_concurrency,
            description,
        } => {
            let mut spec = FunctionSpec::new(&function_name, &runtime, &handler);
            spec.timeout = timeout;
            spec.memory_size = memory_size;
            spec.environment = environment.into_iter().collect::<BTreeMap<_, _>>();
            spec.reserved_concurrency = reserved_concurrency;
            spec.description = description;
            if let Err(e) = code.check() {
                crate::error(&e);
                return Ok(ExitCode::from(2));
            }
            let v = try_lambda!(host.create_function(&region(&r)?, spec, &code.source()));
            print_one(&v, out);
        }
        LambdaCommand::UpdateFunctionCode {
            region: r,
            function_name,
            code,
        } => {
            if let Err(e) = code.check() {
                crate::error(&e);
                return Ok(ExitCode::from(2));
            }
            let v = try_lambda!(host.update_function_code(&region(&r)?, &function_name, &code.source()));
            print_one(&v, out);
        }
        LambdaCommand::PublishVersion {
            region: r,
            function_name,
            description,
        } => {
            let v = try_lambda!(host.publish_version(&region(&r)?, &function_name, description.as_deref()));
            print_one(&v, out);
        }
        LambdaCommand::ListVersions {
            region: r,
            function_name,
        } => {
            let list = try_lambda!(host.list_versions(&region(&r)?, &function_name));
            print_versions(&list, out, "Versions");
        }
        LambdaCommand::CreateAlias {
            region: r,
            function_name,
            name,
            function_version,
            routing_config,
            description,
        } => {
            let weights: BTreeMap<String, f64> = routing_config.into_iter().collect();
            let a = try_lambda!(host.create_alias(
                &region(&r)?,
                &function_name,
                &name,
                &function_version,
                weights,
                &description
            ));
            print_alias(&a, out);
        }
        LambdaCommand::UpdateAlias {
            region: r,
            function_name,
            name,
            function_version,
            routing_config,
            description,
        } => {
            let weights = routing_config.map(|rc| rc.0.into_iter().collect::<BTreeMap<String, f64>>());
            let a = try_lambda!(host.update_alias(
                &region(&r)?,
                &function_name,
                &name,
                function_version.as_deref(),
                weights,
                description.as_deref()
            ));
            print_alias(&a, out);
        }
        LambdaCommand::ListAliases {
            region: r,
            function_name,
        } => {
            let list = try_lambda!(host.list_aliases(&region(&r)?, &function_name));
            match out {
                OutputFormat::Json => {
                    print_json(&json!({"Aliases": list.iter().map(|a| a.to_aws_json()).collect::<Vec<_>>()}))
                }
                OutputFormat::Text => {
                    for a in &list {
                        println!("{}", alias_row(a));
                    }
                }
            }
        }
        LambdaCommand::DeleteFunction {
            region: r,
            function_name,
        } => {
            try_lambda!(host.delete_function(&region(&r)?, &function_name));
            eprintln!("deleted {function_name}");
        }
        LambdaCommand::Metrics {
            region: r,
            function_name,
            qualifier,
            minutes,
        } => {
            let now: EpochMillis = SystemClock.now_millis();
            let buckets = try_lambda!(host.metrics(
                &region(&r)?,
                &function_name,
                qualifier.as_deref(),
                now - minutes * 60_000,
                now + 60_000
            ));
            match out {
                OutputFormat::Json => print_json(&serde_json::to_value(&buckets)?),
                OutputFormat::Text => {
                    println!("MINUTE (UTC)               INVOCATIONS  ERRORS  THROTTLES  CONCURRENT   P50 ms   P90 ms   P99 ms");
                    let ms = |v: Option<f64>| v.map(|v| format!("{v:8.2}")).unwrap_or_else(|| format!("{:>8}", "-"));
                    for b in &buckets {
                        println!(
                            "{:<26} {:>11} {:>7} {:>10} {:>11} {} {} {}",
                            &meridian_local::model::iso8601(b.minute)[..16],
                            b.invocations,
                            b.errors,
                            b.throttles,
                            b.concurrent_executions,
                            ms(b.duration_p50_ms),
                            ms(b.duration_p90_ms),
                            ms(b.duration_p99_ms)
                        );
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_one(v: &FunctionVersion, out: OutputFormat) {
    match out {
        OutputFormat::Json => print_json(&v.to_aws_json()),
        OutputFormat::Text => println!("{}", v.version_arn()),
    }
}
