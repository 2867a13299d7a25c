//! Logs to stderr through `tracing`: human-readable by default, or one JSON object per line.

use crate::settings::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

pub fn init(format: LogFormat, level: &str) {
    // openraft logs every vote and election at info; its warnings are what an operator needs.
    // A later directive for the same target wins, so `--log-level openraft=info` still works.
    let directives = format!("openraft=warn,{level}");
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
