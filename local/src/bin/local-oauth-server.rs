//! `local-oauth-server`: the local OAuth 2.0 authorization server on a fixed port with one client,
//! for trying the OAuth connect flow by hand (README). Runs until Ctrl-C.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use hub_local::oauth_server::{
    AuthServerOptions, ClientAuthMethod, LocalAuthServer, RegisteredClient,
};

const USAGE: &str = "\
usage: local-oauth-server --client-id ID --client-secret SECRET --redirect-uri URI [options]

  --port PORT                 listen on 127.0.0.1:PORT (default 9100)
  --client-id ID              the client to register (required)
  --client-secret SECRET      its secret (required)
  --redirect-uri URI          an exact redirect URI of the client (required, repeatable)
  --auth basic|post           the client's token endpoint authentication:
                              client_secret_basic or client_secret_post (default post)
  --require-pkce              refuse authorization requests without an S256 code_challenge
  --access-token-ttl SECONDS  lifetime of access tokens (default 3600)
  --scopes \"A B\"              the only scopes accepted (space or comma separated; default any)
  --no-iss                    leave the RFC 9207 iss parameter out of authorization responses
  --no-refresh-rotation       keep refresh tokens valid across refreshes
  --id-token                  add an id_token to code exchange answers
  -h, --help                  this text";

#[derive(Debug, PartialEq, Eq)]
struct Settings {
    port: u16,
    client: RegisteredClient,
    access_token_ttl: Duration,
    scopes: Option<Vec<String>>,
    send_iss: bool,
    rotate_refresh_tokens: bool,
    issue_id_token: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Run(Settings),
    Help,
}

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Run(settings)) => settings,
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("local-oauth-server: {problem}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let options = AuthServerOptions {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, settings.port)),
        send_iss: settings.send_iss,
        access_token_ttl: settings.access_token_ttl,
        rotate_refresh_tokens: settings.rotate_refresh_tokens,
        issue_id_token: settings.issue_id_token,
        scopes_supported: settings.scopes.clone(),
        log_requests: true,
        ..AuthServerOptions::default()
    };
    let server = match LocalAuthServer::start(options).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!(
                "local-oauth-server: cannot listen on 127.0.0.1:{}: {error}",
                settings.port
            );
            return ExitCode::FAILURE;
        }
    };
    let client = settings.client;
    println!("Local OAuth 2.0 authorization server");
    println!("  issuer     {}", server.issuer());
    println!("  authorize  {}", server.authorize_url());
    println!("  token      {}", server.token_url());
    println!("  revoke     {}", server.revoke_url());
    println!("  me         {}", server.me_url());
    println!("  metadata   {}", server.metadata_url());
    println!(
        "  client     {} ({}{})",
        client.client_id,
        client.auth_method.as_str(),
        if client.require_pkce {
            ", PKCE required"
        } else {
            ""
        }
    );
    for uri in &client.redirect_uris {
        println!("  redirect   {uri}");
    }
    println!("Requests are logged to stderr (never a token, secret or code). Ctrl-C stops.");
    server.register_client(client);

    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("local-oauth-server: cannot wait for Ctrl-C: {error}");
    }
    server.stop().await;
    ExitCode::SUCCESS
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut port: u16 = 9100;
    let mut client_id = None;
    let mut client_secret = None;
    let mut redirect_uris = Vec::new();
    let mut auth_method = ClientAuthMethod::Post;
    let mut require_pkce = false;
    let mut access_token_ttl = Duration::from_secs(3600);
    let mut scopes = None;
    let mut send_iss = true;
    let mut rotate_refresh_tokens = true;
    let mut issue_id_token = false;

    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Both `--flag value` and `--flag=value`.
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline_value
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--port" => {
                let text = value("--port")?;
                port = text
                    .parse()
                    .map_err(|_| format!("--port must be a port number, not {text:?}"))?;
            }
            "--client-id" => client_id = Some(value("--client-id")?),
            "--client-secret" => client_secret = Some(value("--client-secret")?),
            "--redirect-uri" => redirect_uris.push(value("--redirect-uri")?),
            "--auth" => {
                auth_method = match value("--auth")?.as_str() {
                    "basic" | "client_secret_basic" => ClientAuthMethod::Basic,
                    "post" | "body" | "client_secret_post" => ClientAuthMethod::Post,
                    other => return Err(format!("--auth must be basic or post, not {other:?}")),
                }
            }
            "--access-token-ttl" => {
                let text = value("--access-token-ttl")?;
                let seconds: u64 = text.parse().map_err(|_| {
                    format!("--access-token-ttl must be a number of seconds, not {text:?}")
                })?;
                access_token_ttl = Duration::from_secs(seconds);
            }
            "--scopes" => {
                let list: Vec<String> = value("--scopes")?
                    .split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                scopes = Some(list);
            }
            "--require-pkce" | "--no-iss" | "--no-refresh-rotation" | "--id-token"
                if inline_value.is_some() =>
            {
                return Err(format!("{flag} takes no value"));
            }
            "--require-pkce" => require_pkce = true,
            "--no-iss" => send_iss = false,
            "--no-refresh-rotation" => rotate_refresh_tokens = false,
            "--id-token" => issue_id_token = true,
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }

    let client_id = client_id.ok_or("--client-id is required")?;
    let client_secret = client_secret.ok_or("--client-secret is required")?;
    if redirect_uris.is_empty() {
        return Err("--redirect-uri is required".to_owned());
    }
    Ok(Parsed::Run(Settings {
        port,
        client: RegisteredClient {
            client_id,
            client_secret,
            redirect_uris,
            auth_method,
            require_pkce,
        },
        access_token_ttl,
        scopes,
        send_iss,
        rotate_refresh_tokens,
        issue_id_token,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const REQUIRED: [&str; 6] = [
        "--client-id",
        "demo-client",
        "--client-secret",
        "demo-secret",
        "--redirect-uri",
        "http://127.0.0.1:3000/api/integrations/callback/acme_crm",
    ];

    #[test]
    fn given_the_readme_command_when_parsed_then_the_client_is_registered_as_written() {
        let mut list = REQUIRED.to_vec();
        list.extend(["--port", "9100", "--auth", "basic", "--access-token-ttl=60"]);

        let Ok(Parsed::Run(settings)) = parse_args(args(&list)) else {
            panic!("the README command parses");
        };

        assert_eq!(settings.port, 9100);
        assert_eq!(settings.client.client_id, "demo-client");
        assert_eq!(settings.client.auth_method, ClientAuthMethod::Basic);
        assert!(!settings.client.require_pkce);
        assert_eq!(settings.access_token_ttl, Duration::from_secs(60));
    }

    #[test]
    fn given_an_unknown_flag_or_a_missing_client_when_parsed_then_it_is_an_error() {
        let mut unknown = REQUIRED.to_vec();
        unknown.push("--verbose");

        assert!(parse_args(args(&unknown)).is_err());
        assert!(parse_args(args(&["--port", "9100"])).is_err());
        assert!(parse_args(args(&["--port", "http"])).is_err());
        assert_eq!(parse_args(args(&["--help"])), Ok(Parsed::Help));
    }
}
