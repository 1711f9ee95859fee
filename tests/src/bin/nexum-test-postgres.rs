//! Starts the PostgreSQL server a test run shares (`scripts/test.sh`): writes its address
//! to the file given as the only argument, then keeps it running until killed.

fn main() {
    let Some(url_file) = std::env::args().nth(1) else {
        eprintln!("usage: nexum-test-postgres URL_FILE");
        std::process::exit(2);
    };
    // Dies with the script that started it, however that ends.
    #[allow(unsafe_code)]
    // SAFETY: prctl with these arguments only sets this process's parent-death signal.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    let server = nexum_tests::postgres::PostgresServer::start();
    std::fs::write(&url_file, &server.url).expect("writing the server's address");
    loop {
        std::thread::park();
    }
}
