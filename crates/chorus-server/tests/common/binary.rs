//! The `chorus` binary as a child process, for what only the binary does (signals, log
//! output): started on ephemeral loopback ports with the given environment.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chorus_client::{Client, ClientConfig};
use chorus_server::config::{DEV_API_KEY, DEV_API_SECRET};

pub struct Binary {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its stderr (the logs), line by line, when asked for.
    pub logs: Option<std::sync::mpsc::Receiver<String>>,
}

impl Binary {
    /// Starts it with `env` on top of ephemeral ports and one media thread; `logs`
    /// keeps its stderr for the test.
    pub async fn start(env: &[(&str, &str)], logs: bool) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chorus"))
            .env_clear()
            .env("CHORUS_HTTP_BIND", "127.0.0.1:0")
            .env("CHORUS_MEDIA_BIND", "127.0.0.1:0")
            .env("CHORUS_MEDIA_WORKERS", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(if logs { Stdio::piped() } else { Stdio::null() })
            .spawn()
            .expect("the chorus binary starts");
        // "Chorus is listening on http://127.0.0.1:PORT"; the rest is read too, so that
        // the server's later lines do not meet a closed pipe.
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(url) = line.strip_prefix("Chorus is listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let logs = child.stderr.take().map(|stderr| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    let _ = tx.send(line);
                }
            });
            rx
        });
        let url = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(20)))
            .await
            .unwrap()
            .expect("the server says where it listens");
        Self { child, url, logs }
    }

    /// `identity` joins `room` through the control API's token and the signaling socket.
    pub async fn join(&self, room: &str, identity: &str) -> Client {
        let token: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/v1/tokens", self.url))
            .basic_auth(DEV_API_KEY, Some(DEV_API_SECRET))
            .json(&serde_json::json!({"room": room, "identity": identity}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ws = self.url.replacen("http", "ws", 1);
        let config = ClientConfig::new(ws, token["token"].as_str().unwrap());
        chorus_client::connect(config).await.unwrap()
    }

    /// Sends it `signal` (`TERM`, `INT`).
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits up to `limit` for it to exit; kills it if it has not.
    pub async fn exited(mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + limit;
            while std::time::Instant::now() < deadline {
                if let Some(status) = self.child.try_wait().unwrap() {
                    return Some(status);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            None
        })
        .await
        .unwrap()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
