#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A fixed set of worker threads for splitting one kernel call (a matrix product, the scan's
/// channels, the attention heads) across cores: fork-join, the calling thread taking part.
///
/// Decoding calls the pool a few hundred times per token, so a call must cost microseconds:
/// workers spin briefly on an atomic generation counter before sleeping on a condition
/// variable, the job is passed without allocation (a non-escaping closure lent for the call's
/// duration), and the caller waits for the others by spinning on an atomic counter. No locks
/// are taken inside the work itself.
///
/// One pool serves one session at a time: `run` must not be called concurrently or re-entered.
package final class ThreadPool: @unchecked Sendable {
    /// Threads taking part in a call, the caller included (≥ 1): as asked, or fewer when the
    /// system would not start more threads.
    package private(set) var threadCount: Int

    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private var mutex = pthread_mutex_t()
    private var wake = pthread_cond_t()
    private var workers: [pthread_t] = []
    /// The job of the call in progress; set before `generation` is bumped, read by workers after.
    private var job: ((Int) -> Void)?

    /// How long a waiting thread spins before it sleeps: iterations of an atomic load, about
    /// 100 µs here (0.5 ns each). Long enough to cover the serial gaps of a token and the step
    /// from one token to the next: with 20 000 (17 µs) the workers fell asleep inside tokens and
    /// every wake-up cost a futex call; 125m q4 decoding on 2 threads went from 91 to 103 tok/s
    /// (median of 4 alternating runs) with this value.
    private static let spinIterations = 200_000

    /// The number of cores online.
    package static var availableCores: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// A pool of `threads` threads in all (`threads − 1` workers are started). When the system
    /// refuses a thread (EAGAIN: a process or system limit), the pool runs with the workers
    /// started so far instead of stopping the process: results do not depend on the count.
    package init(threads: Int) {
        precondition(threads >= 1, "a thread pool needs at least one thread")
        threadCount = 1
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&wake, nil)
        for index in 1..<threads {
            let box = Unmanaged.passRetained(WorkerStart(pool: .passUnretained(self), index: index))
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let start = Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue()
                start.pool._withUnsafeGuaranteedRef { $0.workerLoop(index: start.index) }
                return nil
            }, box.toOpaque())
            guard rc == 0 else {
                box.release()
                break
            }
            workers.append(thread)
        }
        threadCount = workers.count + 1
    }

    deinit {
        stopping.store(true, ordering: .sequentiallyConsistent)
        generation.add(1, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(&mutex)
        pthread_cond_broadcast(&wake)
        pthread_mutex_unlock(&mutex)
        for t in workers { pthread_join(t, nil) }
        pthread_cond_destroy(&wake)
        pthread_mutex_destroy(&mutex)
    }

    /// A worker's pool is unretained: a strong reference would keep the pool alive forever
    /// (its deinit, which stops and joins the workers, would never run). Safe because deinit
    /// joins every worker before the pool's memory goes.
    private final class WorkerStart {
        let pool: Unmanaged<ThreadPool>
        let index: Int
        init(pool: Unmanaged<ThreadPool>, index: Int) { self.pool = pool; self.index = index }
    }

    /// Calls `body(t)` once for every t in 0..<threadCount, t = 0 on the calling thread, and
    /// returns when all have finished.
    package func run(_ body: (Int) -> Void) {
        if threadCount == 1 { body(0); return }
        withoutActuallyEscaping(body) { lent in
            job = lent
            pending.store(threadCount - 1, ordering: .sequentiallyConsistent)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(&mutex)
                pthread_cond_broadcast(&wake)
                pthread_mutex_unlock(&mutex)
            }
            lent(0)
            var spins = 0
            while pending.load(ordering: .acquiring) > 0 {
                spins += 1
                if spins > Self.spinIterations { sched_yield() }
            }
            job = nil
        }
    }

    /// Splits `count` items into one contiguous range per thread, each a multiple of
    /// `granularity` items (except the last), and calls `body(thread, range)` with each
    /// non-empty range (`thread` indexes per-thread scratch). Runs on the calling thread alone
    /// when `work` (an estimate of multiply-adds) is too small to pay for waking the others.
    package func parallelFor(count: Int, granularity: Int = 1, work: Int = .max, _ body: (Int, Range<Int>) -> Void) {
        let units = (count + granularity - 1) / granularity
        let parts = min(threadCount, units)
        if parts <= 1 || work < Self.minimumParallelWork {
            if count > 0 { body(0, 0..<count) }
            return
        }
        run { t in
            guard t < parts else { return }
            let lo = units * t / parts * granularity
            let hi = min(count, units * (t + 1) / parts * granularity)
            if lo < hi { body(t, lo..<hi) }
        }
    }

    /// Below this many multiply-adds a call stays on one thread (a fork-join costs a few µs).
    package static let minimumParallelWork = 32_768

    private func workerLoop(index: Int) {
        // The generation the pool was created with: a call may already have started before
        // this thread got here, and it must still be seen as new.
        var seen = 0
        while true {
            var spins = 0
            var current = generation.load(ordering: .acquiring)
            while current == seen {
                spins += 1
                if spins > Self.spinIterations {
                    // Sleep until the next call; `sleepers` tells `run` to signal.
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_lock(&mutex)
                    while generation.load(ordering: .sequentiallyConsistent) == seen {
                        pthread_cond_wait(&wake, &mutex)
                    }
                    pthread_mutex_unlock(&mutex)
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    spins = 0
                }
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if stopping.load(ordering: .sequentiallyConsistent) { return }
            job!(index)
            pending.subtract(1, ordering: .releasing)
        }
    }
}
