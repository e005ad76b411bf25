//! Password hashing with argon2id. Hashing is deliberately slow, so it runs on
//! the blocking pool rather than stalling the async workers.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

pub async fn hash(password: String) -> anyhow::Result<String> {
    on_blocking_pool(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hash password: {e}"))
    })
    .await?
}

/// Whether `password` matches `stored`. With no stored hash (unknown user) a
/// dummy hash is checked anyway, so the answer takes as long either way and
/// does not reveal which emails exist.
pub async fn verify(password: String, stored: Option<String>) -> anyhow::Result<bool> {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2E1P1Ptc6Y+iyQ6c1Vb6NpxYsXKXc6hqaxjjb9bj/N0";
    let known = stored.is_some();
    let stored = stored.unwrap_or_else(|| DUMMY.to_owned());
    let matches = on_blocking_pool(move || {
        let parsed = PasswordHash::new(&stored).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
        Ok::<_, anyhow::Error>(
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
        )
    })
    .await??;
    Ok(known && matches)
}

/// Runs `work` (one argon2 computation) on the blocking pool, then hands the
/// memory it freed back to the system.
///
/// argon2id takes 19 MiB per computation. mimalloc, the binary's allocator,
/// keeps what a thread frees for that thread to reuse and returns it to the
/// system only when the thread allocates again, which an idle blocking thread
/// never does: 32 sign-ups left ingress-api at 565 MB resident, and a load
/// run's logins at about 1 GB for as long as it lasted. Collecting the
/// thread's heap after each computation keeps it near 40 MB.
async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    tokio::task::spawn_blocking(move || {
        let result = work();
        // SAFETY: mi_collect only frees pages of this thread's mimalloc heap
        // that hold no live allocation; it touches no memory of ours. Where
        // mimalloc is not the global allocator (the tests), the heap is empty.
        unsafe { libmimalloc_sys::mi_collect(true) };
        result
    })
    .await
}
