//! The test's network: a private namespace for the whole test, a named one for the
//! subscriber, the veth pair between them, and the `tc` shaping of its server side.

use super::*;

/// Runs this test again in a private network namespace; says why not where it cannot.
pub(crate) fn rerun_in_private_netns() {
    let exe = std::env::current_exe().unwrap();
    let probe = Command::new("unshare")
        .args(["-n", "ip", "netns", "list"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!(
            "SKIPPED subscriber_adapts_to_a_capped_and_lossy_link: cannot create network \
             namespaces here (needs root, `unshare` and `ip`)"
        );
        return;
    }
    let status = Command::new("unshare")
        .arg("-n")
        .arg(&exe)
        .args([
            "--exact",
            "subscriber_adapts_to_a_capped_and_lossy_link",
            "--nocapture",
        ])
        .env(IN_PRIVATE_NETNS, "1")
        .status()
        .expect("unshare runs");
    assert!(status.success(), "the test in its namespace failed");
}

/// The subscriber's namespace and the veth to it; removed when dropped.
pub(crate) struct Netns {
    pub(crate) name: String,
}

impl Netns {
    pub(crate) fn create() -> Option<Self> {
        let name = format!("chorus-adapt-{}", std::process::id());
        if !ip(&["link", "set", "lo", "up"]) || !ip(&["netns", "add", &name]) {
            eprintln!("SKIPPED: `ip netns add` failed (needs root)");
            return None;
        }
        let netns = Self { name };
        let peer = "adapt1";
        let n = netns.name.as_str();
        let made = ip(&[
            "link", "add", LINK, "type", "veth", "peer", "name", peer, "netns", n,
        ]) && ip(&["addr", "add", &format!("{SERVER_IP}/24"), "dev", LINK])
            && ip(&["link", "set", LINK, "up"])
            && ip(&[
                "-n",
                n,
                "addr",
                "add",
                &format!("{SUBSCRIBER_IP}/24"),
                "dev",
                peer,
            ])
            && ip(&["-n", n, "link", "set", peer, "up"])
            && ip(&["-n", n, "link", "set", "lo", "up"]);
        assert!(made, "the veth pair into {n}");
        Some(netns)
    }

    /// Replaces the root qdisc of the subscriber's downlink.
    pub(crate) fn shape(&self, qdisc: &[&str]) {
        let mut args = vec!["qdisc", "replace", "dev", LINK, "root"];
        args.extend_from_slice(qdisc);
        assert!(tc(&args), "tc {args:?}");
    }

    /// Packets the downlink's qdisc passed and dropped since it was put there.
    pub(crate) fn counted(&self) -> (u64, u64) {
        let out = Command::new("tc")
            .args(["-s", "qdisc", "show", "dev", LINK])
            .output()
            .expect("tc -s");
        let text = String::from_utf8_lossy(&out.stdout);
        if std::env::var_os("CHORUS_ADAPT_DEBUG").is_some() {
            eprintln!("{text}");
            let classes = Command::new("tc")
                .args(["-s", "class", "show", "dev", LINK])
                .output()
                .unwrap();
            eprintln!("{}", String::from_utf8_lossy(&classes.stdout));
        }
        // The root's "Sent B bytes P pkt (dropped D, …)" counts its classes' too.
        let line = text.lines().find(|l| l.trim_start().starts_with("Sent"));
        let words: Vec<&str> = line.unwrap_or("").split_whitespace().collect();
        let number = |after: &str| {
            let at = words.iter().position(|w| *w == after);
            at.and_then(|i| words.get(i.checked_sub(1)?))
                .map_or(0, |w| {
                    w.trim_matches(|c: char| !c.is_ascii_digit())
                        .parse()
                        .unwrap_or(0)
                })
        };
        let dropped = words
            .iter()
            .position(|w| *w == "(dropped")
            .and_then(|i| words.get(i + 1))
            .map_or(0, |w| w.trim_end_matches(',').parse().unwrap_or(0));
        (number("pkt"), dropped)
    }

    pub(crate) fn unshape(&self) {
        assert!(tc(&["qdisc", "del", "dev", LINK, "root"]), "tc qdisc del");
    }

    /// Drops `percent` % of the downlink's packets at random: an HTB root whose
    /// default class passes everything and whose second class drops everything
    /// (`pfifo limit 0`), chosen by a classic-BPF filter when the kernel's random
    /// number (SKF_AD_RANDOM) is at most percent·2³² / 100. (This kernel has no netem,
    /// no prio qdisc and no drop action.)
    pub(crate) fn random_loss(&self, percent: u64) {
        let k = percent * (1u64 << 32) / 100;
        let program = format!("4,32 0 0 4294963256,37 0 1 {k},6 0 0 0,6 0 0 4294967295");
        let steps: [&[&str]; 5] = [
            &[
                "qdisc", "replace", "dev", LINK, "root", "handle", "1:", "htb", "default", "10",
            ],
            &[
                "class", "add", "dev", LINK, "parent", "1:", "classid", "1:10", "htb", "rate",
                "10gbit",
            ],
            &[
                "class", "add", "dev", LINK, "parent", "1:", "classid", "1:20", "htb", "rate",
                "10gbit",
            ],
            &[
                "qdisc", "add", "dev", LINK, "parent", "1:20", "handle", "20:", "pfifo", "limit",
                "0",
            ],
            &[
                "filter", "add", "dev", LINK, "parent", "1:", "protocol", "all", "prio", "1",
                "bpf", "bytecode", &program, "flowid", "1:20",
            ],
        ];
        for args in steps {
            assert!(tc(args), "tc {args:?}");
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        ip(&["netns", "del", &self.name]);
    }
}

pub(crate) fn ip(args: &[&str]) -> bool {
    run("ip", args)
}

pub(crate) fn tc(args: &[&str]) -> bool {
    run("tc", args)
}

pub(crate) fn run(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
