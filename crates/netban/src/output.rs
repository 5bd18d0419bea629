//! Printing to stdout: a reader that went away (`netban list | head`) ends the command
//! quietly with exit 0, instead of a panic (issue 7).

use std::io::Write;

/// Writes one line to stdout.
pub fn say(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if let Err(e) = written
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// `println!` that ends quietly on a closed pipe.
macro_rules! say {
    ($($t:tt)*) => { $crate::output::say(format_args!($($t)*)) };
}
