//! `sluice user add|list|delete`: SCRAM credentials (used by SASL PLAIN, SCRAM-SHA-256 and
//! SCRAM-SHA-512 logins). Like the data commands it speaks Kafka to a running broker
//! (`--bootstrap`, a PLAINTEXT listener): Kafka's AlterUserScramCredentials and
//! DescribeUserScramCredentials, with the salt and SaltedPassword computed here so the
//! password never leaves this process. With `--data-dir` it edits a stopped broker's
//! credentials file instead (taking the data directory's lock), which is how the first user
//! of a broker with only SASL listeners is made.

use super::args::{Output, UserCommand, UserTarget};
use super::kafka_client::check;
use super::table::Table;
use anyhow::{bail, Context as _};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest};
use kafka_protocol::protocol::StrBytes;
use sluice_kafka::sasl::credentials::{Credentials, UserList};
use sluice_kafka::sasl::scram::{random_salt, ScramCredential, ScramMechanism, ITERATIONS_DEFAULT};
use std::io::{BufRead, IsTerminal, Write};

/// Environment variable a script can pass the password in.
pub const PASSWORD_ENV: &str = "SLUICE_USER_PASSWORD";
/// Longest password read (a line of a file or the terminal).
const PASSWORD_BYTES_MAX: usize = 1024;

pub fn run(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { name, password_file, mechanism, iterations, target } => {
            let mechanisms = match mechanism {
                Some(name) => vec![ScramMechanism::parse(&name)
                    .with_context(|| format!("unknown mechanism {name:?} (SCRAM-SHA-256 or SCRAM-SHA-512)"))?],
                None => ScramMechanism::ALL.to_vec(),
            };
            let password = read_password(password_file.as_deref())?;
            add(&target, &name, &password, &mechanisms, iterations.unwrap_or(ITERATIONS_DEFAULT))?;
            println!("user {name}: {} set", mechanisms.iter().map(|m| m.name()).collect::<Vec<_>>().join(", "));
            Ok(())
        }
        UserCommand::List { target, out } => list(&target, out),
        UserCommand::Delete { name, target } => {
            delete(&target, &name)?;
            println!("user {name} deleted");
            Ok(())
        }
    }
}

fn add(
    target: &UserTarget,
    name: &str,
    password: &str,
    mechanisms: &[ScramMechanism],
    iterations: u32,
) -> anyhow::Result<()> {
    let credentials: Vec<(ScramMechanism, Vec<u8>, Vec<u8>)> = mechanisms
        .iter()
        .map(|m| {
            let salt = random_salt();
            (*m, m.salted_password(password.as_bytes(), &salt, iterations), salt)
        })
        .collect();
    if let Some(dir) = &target.data_dir {
        let (_lock, store) = offline(dir)?;
        let upserts = credentials
            .into_iter()
            .map(|(m, salted, salt)| {
                (name.to_string(), m, ScramCredential::from_salted_password(m, &salted, &salt, iterations))
            })
            .collect();
        return store.apply(upserts, vec![]).map_err(Into::into);
    }
    let mut request = AlterUserScramCredentialsRequest::default();
    request.upsertions = credentials
        .into_iter()
        .map(|(m, salted, salt)| {
            let mut upsert = ScramCredentialUpsertion::default();
            upsert.name = StrBytes::from_string(name.to_string());
            upsert.mechanism = m.kafka_type();
            upsert.iterations = i32::try_from(iterations).unwrap_or(i32::MAX);
            upsert.salt = salt.into();
            upsert.salted_password = salted.into();
            upsert
        })
        .collect();
    alter(target, request, name)
}

fn delete(target: &UserTarget, name: &str) -> anyhow::Result<()> {
    if let Some(dir) = &target.data_dir {
        let (_lock, store) = offline(dir)?;
        return store.apply(vec![], vec![(name.to_string(), None)]).map_err(Into::into);
    }
    let mechanisms = describe(target)?.into_iter().find(|(user, _)| user == name).map(|(_, m)| m);
    let Some(mechanisms) = mechanisms else { bail!("user {name} has no credentials") };
    let mut request = AlterUserScramCredentialsRequest::default();
    request.deletions = mechanisms
        .iter()
        .map(|(m, _)| {
            let mut deletion = ScramCredentialDeletion::default();
            deletion.name = StrBytes::from_string(name.to_string());
            deletion.mechanism = m.kafka_type();
            deletion
        })
        .collect();
    alter(target, request, name)
}

fn alter(target: &UserTarget, request: AlterUserScramCredentialsRequest, name: &str) -> anyhow::Result<()> {
    let mut client = super::acl::connect_as(&target.bootstrap, target.sasl_user.as_deref())?;
    let response = client.request(0, &request)?;
    for result in response.results {
        let message = result.error_message.as_deref().unwrap_or("").to_string();
        check(result.error_code, || format!("user {name}{}", if message.is_empty() { "" } else { ": " }) + &message)?;
    }
    Ok(())
}

fn list(target: &UserTarget, out: Output) -> anyhow::Result<()> {
    let users = describe(target)?;
    if out.json {
        let json: Vec<serde_json::Value> = users
            .iter()
            .map(|(user, mechanisms)| {
                let mechanisms: Vec<serde_json::Value> = mechanisms
                    .iter()
                    .map(|(m, i)| serde_json::json!({"mechanism": m.name(), "iterations": i}))
                    .collect();
                serde_json::json!({"user": user, "credentials": mechanisms})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    let mut table = Table::new(&["USER", "MECHANISMS"]);
    for (user, mechanisms) in users {
        let names: Vec<String> = mechanisms.iter().map(|(m, i)| format!("{} ({i} iterations)", m.name())).collect();
        table.row(vec![user, names.join(", ")]);
    }
    print!("{}", table.render());
    Ok(())
}

fn describe(target: &UserTarget) -> anyhow::Result<UserList> {
    if let Some(dir) = &target.data_dir {
        let (_lock, store) = offline(dir)?;
        return Ok(store.list());
    }
    let mut client = super::acl::connect_as(&target.bootstrap, target.sasl_user.as_deref())?;
    let mut request = DescribeUserScramCredentialsRequest::default();
    request.users = None::<Vec<UserName>>;
    let response = client.request(0, &request)?;
    check(response.error_code, || "describe users".to_string())?;
    Ok(response
        .results
        .into_iter()
        .map(|r| {
            let mechanisms = r
                .credential_infos
                .iter()
                .filter_map(|c| Some((ScramMechanism::from_kafka_type(c.mechanism)?, c.iterations.max(0) as u32)))
                .collect();
            (r.user.to_string(), mechanisms)
        })
        .collect())
}

/// The credentials file of a stopped broker's data directory, locked against a broker
/// starting meanwhile.
fn offline(dir: &std::path::Path) -> anyhow::Result<(crate::data_lock::DataDirLock, Credentials)> {
    let lock = crate::data_lock::DataDirLock::acquire(dir)?;
    let store = Credentials::open(dir)?;
    Ok((lock, store))
}

/// From `--password-file` (its first line), else `SLUICE_USER_PASSWORD`, else stdin's first
/// line (asked for, without echo, on a terminal).
fn read_password(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    let password = if let Some(path) = file {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        text.lines().next().unwrap_or("").to_string()
    } else if let Ok(password) = std::env::var(PASSWORD_ENV) {
        password
    } else {
        let terminal = std::io::stdin().is_terminal();
        if terminal {
            eprint!("Password: ");
            let _ = std::io::stderr().flush();
            let _ = std::process::Command::new("stty").arg("-echo").status();
        }
        let mut line = String::new();
        let read = std::io::stdin().lock().take_line(&mut line);
        if terminal {
            let _ = std::process::Command::new("stty").arg("echo").status();
            eprintln!();
        }
        read?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.is_empty() || password.len() > PASSWORD_BYTES_MAX {
        bail!("the password must be 1 to {PASSWORD_BYTES_MAX} bytes");
    }
    Ok(password)
}

trait TakeLine {
    fn take_line(&mut self, line: &mut String) -> std::io::Result<usize>;
}

impl<R: BufRead> TakeLine for R {
    /// One line, at most a little over `PASSWORD_BYTES_MAX` bytes read.
    fn take_line(&mut self, line: &mut String) -> std::io::Result<usize> {
        use std::io::Read;
        self.by_ref().take(PASSWORD_BYTES_MAX as u64 + 2).read_line(line)
    }
}
