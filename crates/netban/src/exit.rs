//! Errors the binary reports, and the exit code of each kind (DESIGN.md's contract).

use std::fmt;

/// 0 done or durably accepted; 1 runtime failure; 2 bad usage or input; 3 bad configuration.
#[derive(Debug)]
pub enum CliError {
    Runtime(String),
    Usage(String),
    Config(String),
}

impl CliError {
    pub fn code(&self) -> i32 {
        match self {
            CliError::Runtime(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Config(_) => 3,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Runtime(m) | CliError::Usage(m) | CliError::Config(m) => f.write_str(m),
        }
    }
}

impl From<netban_core::store::StoreError> for CliError {
    fn from(e: netban_core::store::StoreError) -> Self {
        CliError::Runtime(e.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Runtime(e.to_string())
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;
