//! The one place that decides between serial and threaded execution.
//!
//! With the `threads` cargo feature, the parts of a split kernel call run on rayon's current
//! pool (the global pool natively; in a threaded wasm build, the Web Worker pool that
//! wasm-bindgen-rayon starts). Without it, which is the single-threaded wasm build, rayon is
//! not even compiled and the parts run one after another on the calling thread: the same
//! partitioning, so serial runs exercise it too.

/// Whether this build can run parts on other threads.
pub const THREADS_COMPILED: bool = cfg!(feature = "threads");

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
