//! The server side of a comparison: which processes serve a system, and
//! their CPU time, read from `/proc` like the relay's.

use std::collections::BTreeMap;

use crate::relay_process::ProcessSample;

/// How to find a system's server processes.
#[derive(Clone, Debug)]
pub(crate) enum ServerProbe {
    /// One process (the relay this tool started).
    Pid(u32),
    /// Every process whose command name (`/proc/<pid>/comm`) is one of
    /// these, e.g. `postgres` (one process per connection).
    Named(&'static [&'static str]),
    /// One process and its children (a private PostgreSQL cluster: the
    /// postmaster and its backends).
    Tree(u32),
}

impl ServerProbe {
    /// The server's processes together: CPU seconds (user + system) used
    /// so far and resident memory. For [`ServerProbe::Named`], processes
    /// that exited are not counted; the benchmark's connections stay open
    /// while it samples.
    pub(crate) fn sample(&self) -> anyhow::Result<ProcessSample> {
        let samples = self.samples()?;
        Ok(ProcessSample {
            at: std::time::Instant::now(),
            cpu_seconds: samples.values().map(|s| s.cpu_seconds).sum(),
            rss_bytes: samples.values().map(|s| s.rss_bytes).sum(),
            peak_rss_bytes: samples.values().map(|s| s.peak_rss_bytes).sum(),
        })
    }

    /// A sample of each of the server's processes.
    fn samples(&self) -> anyhow::Result<BTreeMap<u32, ProcessSample>> {
        match self {
            Self::Pid(pid) => Ok(BTreeMap::from([(*pid, ProcessSample::of(*pid)?)])),
            Self::Named(names) => {
                let mut samples = BTreeMap::new();
                for pid in pids_named(names)? {
                    // A process may exit between listing and sampling.
                    if let Ok(sample) = ProcessSample::of(pid) {
                        samples.insert(pid, sample);
                    }
                }
                Ok(samples)
            }
            Self::Tree(root) => {
                let mut samples = BTreeMap::from([(*root, ProcessSample::of(*root)?)]);
                for pid in children_of(*root)? {
                    if let Ok(sample) = ProcessSample::of(pid) {
                        samples.insert(pid, sample);
                    }
                }
                Ok(samples)
            }
        }
    }
}

/// Processes whose parent is `parent`.
fn children_of(parent: u32) -> anyhow::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if parent_of(&stat) == Some(parent) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// The parent pid (field 4) of a `/proc/<pid>/stat` line, counted after
/// the command name's last `)`.
fn parent_of(stat: &str) -> Option<u32> {
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// Processes whose command name is one of `names`.
fn pids_named(names: &[&str]) -> anyhow::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
            continue;
        };
        if names.iter().any(|name| comm.trim_end() == *name) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_found_by_pid() {
        let sample = ServerProbe::Pid(std::process::id()).sample().unwrap();
        assert!(sample.cpu_seconds >= 0.0);
        assert!(sample.rss_bytes > 0);
    }

    #[test]
    fn a_tree_counts_the_children() {
        assert_eq!(parent_of("42 (post gres) S 7 42 42 0"), Some(7));
        assert_eq!(parent_of("42 (a) b) R 1 42"), Some(1));
        assert_eq!(parent_of("garbage"), None);
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id();
        assert!(children_of(me).unwrap().contains(&child.id()));
        let sleeper = ProcessSample::of(child.id()).unwrap();
        let tree = ServerProbe::Tree(me).sample().unwrap();
        assert!(tree.rss_bytes > sleeper.rss_bytes, "{tree:?}");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn an_unknown_name_matches_nothing() {
        let probe = ServerProbe::Named(&["no-such-process-name"]);
        assert_eq!(probe.sample().unwrap().rss_bytes, 0);
    }
}
