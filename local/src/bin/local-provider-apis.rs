//! `local-provider-apis`: the local servers shaped like the APIs behind the catalog's actions
//! (Twilio, SendGrid, WhatsApp, Slack, Kavenegar, OpenAI, Google Calendar, HubSpot) on a fixed
//! port, for trying actions by hand (README). Each checks what the real API checks and prints the
//! requests it receives. Runs until Ctrl-C.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use hub_local::provider_shapes::{ProviderShapes, BEARER, KAVENEGAR_KEY, TWILIO_SID, TWILIO_TOKEN};

const USAGE: &str = "\
usage: local-provider-apis [--port PORT]

  --port PORT   listen on 127.0.0.1:PORT (default 9200)
  -h, --help    this text";

fn port(args: &[String]) -> Result<Option<u16>, String> {
    match args {
        [] => Ok(Some(9200)),
        [flag] if flag == "-h" || flag == "--help" => Ok(None),
        [flag, value] if flag == "--port" => value
            .parse()
            .map(Some)
            .map_err(|_| format!("--port {value} is not a port")),
        other => Err(format!("unexpected arguments {other:?}")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = match port(&args) {
        Ok(Some(port)) => port,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("local-provider-apis: {problem}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let shapes = match ProviderShapes::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await
    {
        Ok(shapes) => shapes,
        Err(error) => {
            eprintln!("local-provider-apis: cannot listen on 127.0.0.1:{port}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let url = shapes.url().to_string();
    println!("Local provider APIs on {url}");
    println!("  twilio      {url}/2010-04-01   accountSid {TWILIO_SID}, authToken {TWILIO_TOKEN}");
    println!("  sendgrid    {url}/v3           apiKey {BEARER}");
    println!("  whatsapp    {url}/v23.0        accessToken {BEARER}");
    println!("  openai      {url}/v1           apiKey {BEARER}");
    println!("  slack       {url}/api          Bearer {BEARER}");
    println!("  calendar    {url}/calendar/v3  Bearer {BEARER}");
    println!("  hubspot     {url}              Bearer {BEARER}");
    println!("  kavenegar   {url}/v1/{KAVENEGAR_KEY}");
    let mut printed = 0;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                let seen = shapes.seen();
                for request in &seen[printed..] {
                    println!("{} {} {}", request.method, request.target,
                             String::from_utf8_lossy(&request.body));
                }
                printed = seen.len();
            }
        }
    }
}
