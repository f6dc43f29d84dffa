//! Running external AML programs (exchange-aml-decisions.md §5): a command line, bytes on
//! standard input, standard output back, with a time limit.

use std::time::Duration;

/// Why a program run produced no usable output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramRunError {
    /// Still running at the time limit; it was killed.
    #[error("did not finish within {0:?}")]
    Timeout(Duration),
    /// Exited with a status other than 0, or was killed by a signal.
    #[error("failed: {0}")]
    Failed(String),
    /// Could not be started.
    #[error("could not be started: {0}")]
    Spawn(String),
    /// Wrote more than the output limit.
    #[error("wrote more than {0} bytes")]
    OutputTooLarge(usize),
}

/// Runs `argv` (the first word looked up in `PATH`) with `stdin` as its input.
pub trait ProgramRunner: Send + Sync {
    /// The program's standard output after a successful exit.
    fn run(
        &self,
        argv: &[String],
        stdin: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, ProgramRunError>;
}

/// A runner answering from a function: for unit tests and embedders without processes.
pub struct FnProgramRunner<F>(pub F);

impl<F> ProgramRunner for FnProgramRunner<F>
where
    F: Fn(&[String], &[u8]) -> Result<Vec<u8>, ProgramRunError> + Send + Sync,
{
    fn run(
        &self,
        argv: &[String],
        stdin: &[u8],
        _timeout: Duration,
    ) -> Result<Vec<u8>, ProgramRunError> {
        (self.0)(argv, stdin)
    }
}

/// A runner that starts nothing (for services that never run external programs).
pub struct NoPrograms;

impl ProgramRunner for NoPrograms {
    fn run(&self, argv: &[String], _: &[u8], _: Duration) -> Result<Vec<u8>, ProgramRunError> {
        Err(ProgramRunError::Spawn(format!(
            "{}: external programs are not available here",
            argv.first().map_or("", String::as_str)
        )))
    }
}
