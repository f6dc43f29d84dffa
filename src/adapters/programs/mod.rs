//! External AML programs as child processes (exchange-aml-decisions.md §5): argv without a
//! shell, the input on standard input, standard output back, standard error to the log.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::adapters::process;
use crate::domain::kyc::{INTROSPECTION_TIMEOUT, ProgramInput};
use crate::ports::programs::{ProgramRunError, ProgramRunner};

/// The most a program may write to standard output.
pub const OUTPUT_LIMIT: usize = 1024 * 1024;
/// Kept of a program's standard error for the log.
const STDERR_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessProgramRunner;

impl ProgramRunner for ProcessProgramRunner {
    fn run(
        &self,
        argv: &[String],
        stdin: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, ProgramRunError> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| ProgramRunError::Spawn("empty command".to_owned()))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = process::spawn(&mut command)
            .map_err(|e| ProgramRunError::Spawn(format!("{program}: {e}")))?;
        // Written on the side: a program may print before it reads, or never read at all.
        let input = stdin.to_vec();
        let writer = child.stdin.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let _ = pipe.write_all(&input);
            })
        });
        let stdout = child
            .stdout
            .take()
            .map(|pipe| process::read_on_the_side(pipe, OUTPUT_LIMIT));
        let stderr = child
            .stderr
            .take()
            .map(|pipe| process::read_on_the_side(pipe, STDERR_LIMIT));
        let status = process::wait_with_timeout(&mut child, timeout)
            .map_err(|e| ProgramRunError::Failed(format!("waiting for {program}: {e}")))?;
        let grace = Duration::from_millis(200);
        if let Some((text, _)) = stderr.and_then(|reader| process::collect(reader, grace)) {
            let text = String::from_utf8_lossy(&text);
            if !text.trim().is_empty() {
                tracing::warn!(program = %program, stderr = %text.trim(), "AML program wrote to standard error");
            }
        }
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        let status = status.ok_or(ProgramRunError::Timeout(timeout))?;
        let output = stdout.and_then(|reader| process::collect(reader, grace));
        if !status.success() {
            return Err(ProgramRunError::Failed(status.to_string()));
        }
        match output {
            Some((_, true)) => Err(ProgramRunError::OutputTooLarge(OUTPUT_LIMIT)),
            Some((bytes, false)) => Ok(bytes),
            None => Err(ProgramRunError::Failed(
                "standard output stayed open after the exit".to_owned(),
            )),
        }
    }
}

/// What an external program needs, from its `-r`, `-a` and `-i` answers (§5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements {
    pub context: Vec<String>,
    pub attributes: Vec<String>,
    pub inputs: Vec<ProgramInput>,
}

/// Asks `command` what it needs; `config` is passed as `-c`.
pub fn introspect(command: &str, config: Option<&str>) -> Result<Requirements, String> {
    let ask = |flag: &str| -> Result<Vec<String>, String> {
        let mut argv: Vec<String> = command
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect();
        argv.push(flag.to_owned());
        if let Some(config) = config {
            argv.extend(["-c".to_owned(), config.to_owned()]);
        }
        let output = ProcessProgramRunner
            .run(&argv, &[], INTROSPECTION_TIMEOUT)
            .map_err(|e| format!("`{command} {flag}` {e}"))?;
        Ok(String::from_utf8_lossy(&output)
            .split([' ', '\t', '\n', '\r', ';'])
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect())
    };
    let inputs = ask("-i")?
        .iter()
        .map(|token| {
            ProgramInput::parse(token)
                .ok_or_else(|| format!("`{command} -i` names unknown input {token}"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Requirements {
        context: ask("-r")?,
        attributes: ask("-a")?,
        inputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &std::path::Path, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("program.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    fn run(
        program: &str,
        args: &[&str],
        input: &str,
        timeout: Duration,
    ) -> Result<Vec<u8>, ProgramRunError> {
        let mut argv = vec![program.to_owned()];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        ProcessProgramRunner.run(&argv, input.as_bytes(), timeout)
    }

    #[test]
    fn arguments_input_and_output() {
        let dir = tempfile::tempdir().unwrap();
        let echo = script(dir.path(), r#"printf '%s|' "$@"; cat"#);
        let out = run(
            &echo,
            &["-c", "x.conf"],
            "{\"a\":1}",
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "-c|x.conf|{\"a\":1}");
    }

    #[test]
    fn failures_timeouts_and_floods() {
        let dir = tempfile::tempdir().unwrap();
        let failing = script(dir.path(), "echo oops >&2; exit 3");
        assert!(matches!(
            run(&failing, &[], "", Duration::from_secs(5)),
            Err(ProgramRunError::Failed(_))
        ));
        let missing = dir.path().join("missing").display().to_string();
        assert!(matches!(
            run(&missing, &[], "", Duration::from_secs(5)),
            Err(ProgramRunError::Spawn(_))
        ));
        let slow = script(dir.path(), "exec sleep 5");
        let started = std::time::Instant::now();
        assert!(matches!(
            run(&slow, &[], "", Duration::from_millis(200)),
            Err(ProgramRunError::Timeout(_))
        ));
        assert!(started.elapsed() < Duration::from_secs(3));
        let flood = script(dir.path(), "head -c 2000000 /dev/zero");
        assert!(matches!(
            run(&flood, &[], "", Duration::from_secs(5)),
            Err(ProgramRunError::OutputTooLarge(_))
        ));
    }
}
