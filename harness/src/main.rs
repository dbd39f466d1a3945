use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    firedrill::cli::main(firedrill::cli::Cli::parse()).await
}
