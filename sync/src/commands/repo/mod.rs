//! `chantal repo ...`: a file per subcommand.

pub mod client_config;
pub mod export;
mod forget;
mod list;
mod show;
pub mod sync;

pub use forget::forget;
pub use list::list;
pub use show::show;

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
