@testable import HymbaRuntime
import Testing

/// A pool's workers must not keep it alive: every session owns one, and a program that makes
/// and frees sessions (libhymba's contexts) would otherwise gain threads - 1 spinning or
/// sleeping threads per session, never joined.
@Suite("ThreadPool lifetime")
struct ThreadPoolLifetimeTests {
    @Test("a pool is freed with its last reference, its workers joined")
    func poolIsFreed() {
        weak var released: ThreadPool?
        do {
            let pool = ThreadPool(threads: 3)
            released = pool
            var hits = [Int](repeating: 0, count: 3)
            hits.withUnsafeMutableBufferPointer { h in pool.run { t in h[t] += 1 } }
            #expect(hits == [1, 1, 1])
        }
        #expect(released == nil)
    }
}
