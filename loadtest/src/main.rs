//! `chorus-loadtest`: see the library for what it measures.

use anyhow::Result;
use clap::Parser;

#[tokio::main]
async fn main() -> Result<()> {
    let args = chorus_loadtest::Args::parse();
    let report = chorus_loadtest::run(&args).await?;
    println!("{report}");
    Ok(())
}
