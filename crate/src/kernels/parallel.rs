//! The one place that decides between serial and threaded execution.
//!
//! With the `threads` cargo feature, the parts of a split kernel call run on rayon's current
//! pool (the global pool natively; in a threaded wasm build, the Web Worker pool that
//! wasm-bindgen-rayon starts). Without it, which is the single-threaded wasm build, rayon is
//! not even compiled and the parts run one after another on the calling thread: the same
//! partitioning, so serial runs exercise it too.
//!
//! A whole pass (a model's forward, a benchmark case) runs through [`on_pool`], which gathers
//! a team for it: the pass runs on the calling thread (the leader) while pool threads wait
//! for parts by spinning on one atomic word, so a split kernel call inside the pass hands its
//! parts out without waking a sleeping thread. Rayon's own hand-off costs about 30-45 us per
//! call in Chromium (a worker that found no work sleeps in `Atomics.wait` and needs a
//! notification to run again), and a pass makes about 70 split calls.

/// Whether this build can run parts on other threads.
pub const THREADS_COMPILED: bool = cfg!(feature = "threads");

/// Runs `f` as one pass on the calling thread. When `par` allows more than one part and the
/// build has threads, that thread leads a team with up to `par.max_parts() - 1` threads of
/// rayon's current pool, and the split kernel calls made by `f` share their parts out among
/// the team (see the module notes). The caller blocks until the helpers are back, so in a
/// browser it must be a Worker, as for any rayon call.
pub fn on_pool<R, F>(par: crate::kernels::Parallelism, f: F) -> R
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    #[cfg(feature = "threads")]
    if par.max_parts() > 1 {
        return team::run(par.max_parts(), f);
    }
    let _ = par;
    f()
}

/// Runs `f(part)` for every `part in 0..parts` and returns when all have finished: on the
/// pass's team when called by its leader, on rayon's pool otherwise (one after another without
/// the `threads` feature). A part that splits again runs its own parts itself.
pub(crate) fn for_each_part<F>(parts: usize, f: F)
where
    F: Fn(usize) + Sync + Send,
{
    #[cfg(feature = "threads")]
    if parts > 1 {
        if team::try_run_parts(parts, &f) {
            return;
        }
        if !team::in_part() {
            use rayon::prelude::*;
            (0..parts).into_par_iter().for_each(f);
            return;
        }
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
    let len = data.len();
    let base = SharedPtr(data.as_mut_ptr());
    for_each_part(len.div_ceil(chunk_len), |i| {
        let start = i * chunk_len;
        let end = (start + chunk_len).min(len);
        // Safety: chunk `i` is `data[start..end]`, inside `data`, and no two parts share an
        // index, so the chunks handed out are disjoint; `data` is borrowed mutably for the
        // whole call, which returns only after every part has finished.
        let chunk = unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) };
        f(i, chunk);
    });
}

/// A pointer into a buffer that the parts of one split call share, each writing only its own
/// elements; the call does not return before every part has finished, so the pointer never
/// outlives the exclusive borrow it came from. Whoever makes one vouches for that.
#[derive(Clone, Copy)]
pub(crate) struct SharedPtr(pub(crate) *mut f32);

// Safety: see the type's contract: parts never touch the same element, and the pointer is
// only used while its buffer is exclusively borrowed by the split call.
unsafe impl Send for SharedPtr {}
// Safety: as above.
unsafe impl Sync for SharedPtr {}

impl SharedPtr {
    /// Through a method, so closures capture the whole (Sync) wrapper, not its field.
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

#[cfg(feature = "threads")]
mod team {
    //! The team of one pass: a leader thread that runs the pass and helpers that spin on
    //! [`Team::state`] for parts.
    //!
    //! `state` packs the job's generation (32 bits), the next unclaimed part (16) and the
    //! number of parts (16). A member claims a part with one compare-and-swap of the whole
    //! word, so a claim can only succeed on the job that is current: a helper that lags
    //! behind fails its swap instead of taking a part of the next job. Once a part is claimed,
    //! its job cannot finish before that part does, so the job pointer read after a claim is
    //! still the leader's.

    use std::any::Any;
    use std::cell::{Cell, UnsafeCell};
    use std::panic::{self, AssertUnwindSafe};
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// Parts per job that fit the packed state word.
    const MAX_PARTS: usize = u16::MAX as usize;

    type Job = dyn Fn(usize) + Sync;

    struct Team {
        state: AtomicU64,
        /// The current job, written by the leader before it publishes a new `state`.
        job: UnsafeCell<*const Job>,
        /// Parts of the current job claimed but not finished, or not yet claimed.
        remaining: AtomicUsize,
        /// Set when the pass is over: helpers return to the pool.
        done: AtomicBool,
        /// The first panic raised by a part of the current job, re-raised by the leader.
        panic: Mutex<Option<Box<dyn Any + Send>>>,
        /// Whether `panic` holds one (read by the leader after `remaining` reached 0).
        panicked: AtomicBool,
    }

    // Safety: `job` is written only by the leader while no part of any job is claimed, and
    // read by members only after they claimed a part of the job it holds (module notes).
    unsafe impl Sync for Team {}

    fn unpack(state: u64) -> (usize, usize) {
        (((state >> 16) & 0xffff) as usize, (state & 0xffff) as usize)
    }

    thread_local! {
        /// The team this thread leads, during its pass.
        static LEADING: Cell<*const Team> = const { Cell::new(std::ptr::null()) };
        /// Whether this thread is running a part of a team's job.
        static IN_PART: Cell<bool> = const { Cell::new(false) };
    }

    pub(super) fn in_part() -> bool {
        IN_PART.with(Cell::get)
    }

    impl Team {
        /// Claims and runs parts of the current job until none is left unclaimed. Returns
        /// whether a part was run.
        fn work(&self) -> bool {
            let mut worked = false;
            loop {
                let state = self.state.load(Ordering::Acquire);
                let (next, parts) = unpack(state);
                if next >= parts {
                    return worked;
                }
                if self
                    .state
                    .compare_exchange_weak(
                        state,
                        state + (1 << 16),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_err()
                {
                    continue;
                }
                worked = true;
                // Safety: a part of this job is claimed and unfinished, so the leader is
                // still inside the call that owns the job (module notes).
                let job = unsafe { &**self.job.get() };
                IN_PART.with(|p| p.set(true));
                let result = panic::catch_unwind(AssertUnwindSafe(|| job(next)));
                IN_PART.with(|p| p.set(false));
                if let Err(payload) = result {
                    let mut slot = self.panic.lock().unwrap_or_else(|e| e.into_inner());
                    slot.get_or_insert(payload);
                    self.panicked.store(true, Ordering::Relaxed);
                }
                self.remaining.fetch_sub(1, Ordering::Release);
            }
        }

        /// Publishes a job of `parts` (at most [`MAX_PARTS`]) parts, works on it with the
        /// members and returns when all its parts have finished; re-raises a part's panic.
        fn run_job(&self, parts: usize, job: &(dyn Fn(usize) + Sync)) {
            // Safety: no part is claimed (the previous job finished before its call returned),
            // so no member reads `job` now. The lifetime is erased: members use the pointer
            // only while a part of this job is unfinished, that is, before this call returns.
            unsafe {
                *self.job.get() =
                    std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const Job>(job);
            }
            self.remaining.store(parts, Ordering::Relaxed);
            let generation =
                (self.state.load(Ordering::Relaxed) >> 32).wrapping_add(1) & 0xffff_ffff;
            self.state
                .store((generation << 32) | parts as u64, Ordering::Release);
            self.work();
            while self.remaining.load(Ordering::Acquire) != 0 {
                std::hint::spin_loop();
            }
            if self.panicked.load(Ordering::Relaxed) {
                let payload = self.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
                self.panicked.store(false, Ordering::Relaxed);
                if let Some(payload) = payload {
                    panic::resume_unwind(payload);
                }
            }
        }

        /// A helper's loop: run parts as they are published until the pass is over. The
        /// leader itself returns at once (rayon may hand it a helper job it spawned).
        fn help(&self) {
            if std::ptr::eq(LEADING.with(Cell::get), self) {
                return;
            }
            while !self.done.load(Ordering::Acquire) {
                if !self.work() {
                    std::hint::spin_loop();
                }
            }
        }
    }

    /// Sets `done` when the pass ends, normally or by a panic, so helpers never outlive it.
    struct EndOfPass<'a>(&'a Team);

    impl Drop for EndOfPass<'_> {
        fn drop(&mut self) {
            self.0.done.store(true, Ordering::Release);
        }
    }

    /// Clears the leader's team pointer when the pass ends.
    struct Leading;

    impl Drop for Leading {
        fn drop(&mut self) {
            LEADING.with(|t| t.set(std::ptr::null()));
        }
    }

    pub(super) fn run<R, F>(max_parts: usize, f: F) -> R
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        if in_part() || !LEADING.with(Cell::get).is_null() {
            // A pass inside a pass: the outer team is busy with this thread's part.
            return f();
        }
        let team = Team {
            state: AtomicU64::new(0),
            job: UnsafeCell::new(std::ptr::null::<fn(usize)>() as *const Job),
            remaining: AtomicUsize::new(0),
            done: AtomicBool::new(false),
            panic: Mutex::new(None),
            panicked: AtomicBool::new(false),
        };
        let team = &team;
        // The calling thread leads: it starts the pass at once while the helpers, sent to the
        // pool, join as they wake (one wake-up per pass). `in_place_scope` returns once every
        // helper spawned from it has returned.
        rayon::in_place_scope(|s| {
            let _end = EndOfPass(team);
            LEADING.with(|t| t.set(team as *const Team));
            let _leading = Leading;
            // Pool threads other than this one (when the caller is itself a pool thread).
            let others =
                rayon::current_num_threads() - usize::from(rayon::current_thread_index().is_some());
            let helpers = (max_parts - 1).min(others);
            for _ in 0..helpers {
                s.spawn(move |_| team.help());
            }
            f()
        })
    }

    /// Runs the parts of `f` on the team this thread leads, if it leads one and is not inside
    /// a part; returns false (and runs nothing) otherwise.
    pub(super) fn try_run_parts<F>(parts: usize, f: &F) -> bool
    where
        F: Fn(usize) + Sync,
    {
        let team = LEADING.with(Cell::get);
        if team.is_null() || in_part() {
            return false;
        }
        // Safety: `LEADING` points at the team of the pass this thread is running, which
        // outlives the pass (it is cleared before the team is dropped).
        let team = unsafe { &*team };
        // The packed state counts at most MAX_PARTS parts: more go in batches.
        for first in (0..parts).step_by(MAX_PARTS) {
            let count = (parts - first).min(MAX_PARTS);
            team.run_job(count, &|part| f(first + part));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{for_each_chunk_mut, for_each_part, on_pool};
    use crate::kernels::Parallelism;

    /// Runs `parts` parts and returns how often each index ran.
    fn counts(parts: usize) -> Vec<usize> {
        let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
        for_each_part(parts, |i| {
            hits[i].fetch_add(1, Ordering::Relaxed);
        });
        hits.into_iter().map(AtomicUsize::into_inner).collect()
    }

    #[test]
    fn every_part_runs_once_in_and_out_of_a_pass() {
        for parts in [0, 1, 2, 3, 17, 1000] {
            assert_eq!(
                counts(parts),
                vec![1; parts],
                "outside a pass, {parts} parts"
            );
        }
        on_pool(Parallelism::Threads(4), || {
            // Many short jobs in a row: a member that lags behind one job must not take a part
            // of the next.
            for round in 0..20_000 {
                let parts = 2 + round % 5;
                assert_eq!(counts(parts), vec![1; parts], "round {round}");
            }
            // More parts than one job holds go in batches.
            assert_eq!(counts(70_000), vec![1; 70_000]);
        });
    }

    #[test]
    fn a_part_that_splits_again_runs_its_own_parts() {
        let hits: Vec<AtomicUsize> = (0..12).map(|_| AtomicUsize::new(0)).collect();
        on_pool(Parallelism::Threads(2), || {
            for_each_part(3, |outer| {
                for_each_part(4, |inner| {
                    hits[outer * 4 + inner].fetch_add(1, Ordering::Relaxed);
                });
                // A pass inside a part runs inline.
                on_pool(Parallelism::Threads(2), || {
                    assert_eq!(counts(5), vec![1; 5])
                });
            });
        });
        let hits: Vec<usize> = hits.into_iter().map(AtomicUsize::into_inner).collect();
        assert_eq!(hits, vec![1; 12]);
    }

    #[test]
    fn chunks_cover_the_slice_once() {
        for (len, chunk) in [(0, 4), (3, 4), (4, 4), (10, 4), (1000, 7)] {
            let mut data = vec![0.0f32; len];
            on_pool(Parallelism::Threads(2), || {
                for_each_chunk_mut(&mut data, chunk, |i, part| {
                    assert!(part.len() == chunk || (i + 1) * chunk >= len);
                    for (j, v) in part.iter_mut().enumerate() {
                        *v += (i * chunk + j) as f32 + 1.0;
                    }
                });
            });
            let expected: Vec<f32> = (0..len).map(|i| i as f32 + 1.0).collect();
            assert_eq!(data, expected, "len {len}, chunk {chunk}");
        }
    }

    #[test]
    #[cfg(panic = "unwind")] // wasm32-wasip1 aborts on panic
    fn a_panicking_part_reaches_the_caller_and_the_pool_still_works() {
        let result = std::panic::catch_unwind(|| {
            on_pool(Parallelism::Threads(2), || {
                for_each_part(8, |i| {
                    if i == 5 {
                        panic!("part {i} failed");
                    }
                });
            })
        });
        let message = *result
            .expect_err("the panic must reach the caller")
            .downcast::<String>()
            .unwrap();
        assert_eq!(message, "part 5 failed");
        on_pool(Parallelism::Threads(2), || {
            assert_eq!(counts(9), vec![1; 9])
        });
    }
}
