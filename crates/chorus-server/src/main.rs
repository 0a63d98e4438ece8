//! `chorus`: the Chorus SFU server. See `chorus --help`.

fn main() -> std::process::ExitCode {
    chorus_server::cli::main()
}
