//! The one place that decides between serial and threaded execution.
//!
//! With the `threads` cargo feature, the parts of a split kernel call run on rayon's current
//! pool (the global pool natively; in a threaded wasm build, the Web Worker pool that
//! wasm-bindgen-rayon starts). Without it, which is the single-threaded wasm build, rayon is
//! not even compiled and the parts run one after another on the calling thread: the same
//! partitioning, so serial runs exercise it too.

/// Whether this build can run parts on other threads.
pub const THREADS_COMPILED: bool = cfg!(feature = "threads");

/// Runs `f` on a thread of rayon's current pool when `par` allows more than one part, so the
/// kernel calls inside it split their work from a pool thread: each split goes onto that
/// thread's own queue and starts there at once, while an idle thread wakes up to steal from
/// it. A split started from outside the pool (the thread that called into the library: `main`
/// natively, the page's Worker in the browser) is instead sent to the pool and waited for.
/// Either way a split kernel call costs about 30-45 us more than its work in Chromium on a
/// 2-core machine (a small GEMM at 1 and 2 threads), and whole passes measured the same both
/// ways there; this keeps the caller's thread out of the pass.
/// Serial, or without the `threads` feature, `f` runs on the calling thread.
pub fn on_pool<R, F>(par: crate::kernels::Parallelism, f: F) -> R
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    #[cfg(feature = "threads")]
    if par.max_parts() > 1 {
        // `scope` runs its closure on a pool thread (inline when already on one) and returns
        // once it and everything spawned from it have finished.
        return rayon::scope(|_| f());
    }
    let _ = par;
    f()
}

/// Runs `f(part)` for every `part in 0..parts` and returns when all have finished.
pub(crate) fn for_each_part<F>(parts: usize, f: F)
where
    F: Fn(usize) + Sync + Send,
{
    #[cfg(feature = "threads")]
    if parts > 1 {
        use rayon::prelude::*;
        (0..parts).into_par_iter().for_each(f);
        return;
    }
    (0..parts).for_each(f);
}

/// Runs `f(index, chunk)` for every `chunk_len`-long chunk of `data` (the last may be
/// shorter), in parallel like [`for_each_part`]; the number of chunks is the number of parts.
pub(crate) fn for_each_chunk_mut<F>(data: &mut [f32], chunk_len: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync + Send,
{
    let chunk_len = chunk_len.max(1);
    #[cfg(feature = "threads")]
    if data.len() > chunk_len {
        use rayon::prelude::*;
        data.par_chunks_mut(chunk_len)
            .enumerate()
            .for_each(|(i, chunk)| f(i, chunk));
        return;
    }
    for (i, chunk) in data.chunks_mut(chunk_len).enumerate() {
        f(i, chunk);
    }
}
