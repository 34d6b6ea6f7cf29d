//! The `cstowatch` command line.

fn main() {
    println!("cstowatch");
}
