import Foundation
import HymbaRuntime

/// Runs the server's requests on its slots, on one thread of its own (the sessions are not
/// thread-safe; the HTTP handlers only submit tickets and read their events).
///
/// Each turn of the loop:
/// 1. waiting requests take the free slots (first come, first served), cancelled ones are dropped;
/// 2. one prompt chunk is fed for one prefilling slot (the one that has waited longest), so a
///    new request delays the others' next token by at most one chunk;
/// 3. every decoding slot feeds its token in one batched step (`HymbaSession.decodeBatch`: the
///    weights read once for all of them, each slot's logits exactly those of its own decode),
///    and samples its next token.
/// Requests beyond the slots wait in a queue of `queueLimit`; past it, `submit` refuses.
/// A cancelled ticket (client gone) is dropped before its slot's next step.
final class SlotScheduler: @unchecked Sendable {
    let model: TextModel
    let slots: [Slot]
    let queueLimit: Int
    let metrics: ServerMetrics

    private let condition = NSCondition()
    // Guarded by `condition`:
    private var waiting: [GenerationTicket] = []
    private var busySlots = 0
    private var stopping = false
    private var thread: Thread?
    private let stopped = DispatchSemaphore(value: 0)

    init(model: TextModel, slots count: Int, options: HymbaOptions, queueLimit: Int, metrics: ServerMetrics) throws {
        self.model = model
        var slots: [Slot] = []
        for index in 0..<count { slots.append(try Slot(index: index, model: model, options: options, sharingThreadsWith: slots.first)) }
        self.slots = slots
        self.queueLimit = queueLimit
        self.metrics = metrics
        metrics.setSlots(total: count)
    }

    func start() {
        let t = Thread { [self] in loop() }
        t.name = "hymba-scheduler"
        t.stackSize = 8 << 20
        thread = t
        t.start()
    }

    /// Stops the loop after its current step; requests still running or queued end as cancelled.
    func stop() {
        condition.lock()
        let running = thread != nil && !stopping
        stopping = true
        condition.signal()
        condition.unlock()
        if running { stopped.wait() }
    }

    /// Queues a request; throws a 503 `APIError` with Retry-After when every slot is busy and
    /// the queue holds `queueLimit` requests already.
    func submit(_ job: GenerationJob) throws -> GenerationTicket {
        let ticket = GenerationTicket(job: job)
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else {
            throw APIError(status: .serviceUnavailable, message: "the server is shutting down", type: "unavailable_error", code: "shutting_down")
        }
        let queued = max(0, waiting.count + busySlots - slots.count)
        let freeSlots = max(0, slots.count - busySlots - waiting.count)
        guard freeSlots > 0 || queued < queueLimit else {
            metrics.rejected()
            throw APIError(status: .serviceUnavailable,
                           message: "all \(slots.count) slots are busy and the queue is full (\(queueLimit) waiting, --queue); retry later",
                           type: "unavailable_error", code: "queue_full", retryAfter: 1)
        }
        waiting.append(ticket)
        metrics.setQueue(waiting.count)
        condition.signal()
        return ticket
    }

    private func loop() {
        while true {
            // 1. Admit waiting requests to free slots.
            condition.lock()
            while !stopping && waiting.isEmpty && busySlots == 0 { condition.wait() }
            if stopping {
                for t in waiting { t.continuation.finish() }
                waiting.removeAll()
                condition.unlock()
                for s in slots where !s.isIdle { s.abandon(error: nil) }
                stopped.signal()
                return
            }
            var admitted: [(Slot, GenerationTicket)] = []
            waiting.removeAll { ticket in
                guard ticket.isCancelled else { return false }
                ticket.continuation.finish()
                metrics.cancelled()
                return true
            }
            for slot in slots where slot.isIdle {
                guard !waiting.isEmpty else { break }
                admitted.append((slot, waiting.removeFirst()))
            }
            busySlots += admitted.count
            metrics.setQueue(waiting.count)
            condition.unlock()

            var freed = 0
            for (slot, ticket) in admitted {
                do { try slot.start(ticket) } catch {
                    ticket.continuation.yield(.failed("\(error)"))
                    ticket.continuation.finish()
                    freed += 1
                }
            }
            // Clients that went away free their slots before the next token.
            for slot in slots where !slot.isIdle && slot.ticket?.isCancelled == true {
                slot.abandon(error: nil)
                metrics.cancelled()
                freed += 1
            }

            // 2. One prompt chunk, for the prefilling slot that started first.
            if let slot = slots.filter(\.isPrefilling).min(by: { $0.ticket!.arrival < $1.ticket!.arrival }) {
                do {
                    if let done = try slot.prefillStep() { metrics.finished(done); freed += 1 }
                } catch {
                    slot.abandon(error: "\(error)")
                    freed += 1
                }
            }

            // 3. One decoding step for every slot holding a token.
            let decoding = slots.filter { $0.pendingToken != nil }
            if !decoding.isEmpty {
                do {
                    try HymbaSession.decodeBatch(decoding.map(\.session), tokens: decoding.map { Int($0.pendingToken!) })
                    metrics.decodeStep(batch: decoding.count)
                    for slot in decoding {
                        if let done = try slot.decodeStepDone() { metrics.finished(done); freed += 1 }
                    }
                } catch {
                    for slot in decoding where !slot.isIdle { slot.abandon(error: "\(error)"); freed += 1 }
                }
            }

            if freed > 0 {
                condition.lock()
                busySlots -= freed
                condition.unlock()
            }
            metrics.setBusy(slots.count - slots.filter(\.isIdle).count)
        }
    }
}
