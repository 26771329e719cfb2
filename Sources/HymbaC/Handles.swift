import CHymba
import Foundation
import HymbaKit

/// The live handles given out to C: a model or context pointer is an `Unmanaged` reference
/// (retained while the handle lives), registered here so that a NULL, freed or foreign
/// pointer is refused with a status instead of being dereferenced.
enum Handles {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var models = Set<UnsafeMutableRawPointer>()
    nonisolated(unsafe) private static var contexts = Set<UnsafeMutableRawPointer>()

    static func register(_ model: Model) -> OpaquePointer {
        let p = Unmanaged.passRetained(model).toOpaque()
        lock.lock(); models.insert(p); lock.unlock()
        return OpaquePointer(p)
    }

    static func register(_ session: Session) -> OpaquePointer {
        let p = Unmanaged.passRetained(session).toOpaque()
        lock.lock(); contexts.insert(p); lock.unlock()
        return OpaquePointer(p)
    }

    /// The model of a live handle (a strong reference: it stays valid for the whole call even
    /// if another thread frees the handle meanwhile).
    static func model(_ handle: OpaquePointer?) throws -> Model {
        guard let handle else { throw HymbaError(.invalidArgument, "the model is NULL") }
        let p = UnsafeMutableRawPointer(handle)
        lock.lock(); defer { lock.unlock() }
        guard models.contains(p) else {
            throw HymbaError(.invalidArgument, "\(handle) is not a live model (already freed, or not from hymba_model_open)")
        }
        return Unmanaged<Model>.fromOpaque(p).takeUnretainedValue()
    }

    static func context(_ handle: OpaquePointer?) throws -> Session {
        guard let handle else { throw HymbaError(.invalidArgument, "the context is NULL") }
        let p = UnsafeMutableRawPointer(handle)
        lock.lock(); defer { lock.unlock() }
        guard contexts.contains(p) else {
            throw HymbaError(.invalidArgument, "\(handle) is not a live context (already freed, or not from hymba_context_new)")
        }
        return Unmanaged<Session>.fromOpaque(p).takeUnretainedValue()
    }

    /// Unregisters and releases a model handle; false if it was not live.
    static func releaseModel(_ handle: OpaquePointer) -> Bool {
        let p = UnsafeMutableRawPointer(handle)
        lock.lock()
        let live = models.remove(p) != nil
        lock.unlock()
        if live { Unmanaged<Model>.fromOpaque(p).release() }
        return live
    }

    static func releaseContext(_ handle: OpaquePointer) -> Bool {
        let p = UnsafeMutableRawPointer(handle)
        lock.lock()
        let live = contexts.remove(p) != nil
        lock.unlock()
        if live { Unmanaged<Session>.fromOpaque(p).release() }
        return live
    }
}

/// `hymba_last_error`'s per-thread message: a malloc'd C string in a pthread key, freed when
/// replaced or when its thread ends.
enum LastError {
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        let rc = pthread_key_create(&k) { free($0) }
        precondition(rc == 0, "pthread_key_create failed (\(rc)): no thread-local slot for hymba_last_error")
        return k
    }()

    static func set(_ message: String) {
        let old = pthread_getspecific(key)
        pthread_setspecific(key, strdup(message))
        free(old)
    }

    static var current: UnsafePointer<CChar> {
        if let p = pthread_getspecific(key) { return UnsafePointer(p.assumingMemoryBound(to: CChar.self)) }
        return cString("")
    }
}

/// A static string literal as a C string (literals are stored NUL-terminated and live forever).
func cString(_ s: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
}
