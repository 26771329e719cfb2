import CHymba
import Foundation
import HymbaKit

// The C functions of include/hymba.h, exported with @_cdecl over the HymbaKit API. Each one
// checks its pointers and handles, runs the call, and turns a thrown error into a status and
// the thread's last-error message. The Swift names end in `_c` so they never collide with the
// header's declarations, which this module imports for the types.

/// Runs `body`; a thrown error becomes its status and "function: message" in `hymba_last_error`.
private func run(_ function: StaticString, _ body: () throws -> Void) -> hymba_status {
    do {
        try body()
        return HYMBA_OK
    } catch {
        return fail(function, HymbaError(classifying: error))
    }
}

/// A count for C: `body`'s value, or −1 with the error recorded for `hymba_last_error`.
private func count(_ function: StaticString, _ body: () throws -> Int) -> Int32 {
    var n: Int32 = -1
    _ = run(function) { n = Int32(try body()) }
    return n
}

private func fail(_ function: StaticString, _ e: HymbaError) -> hymba_status {
    LastError.set("\(function): \(e.message)")
    return status(of: e.kind)
}

private func status(of kind: HymbaError.Kind) -> hymba_status {
    switch kind {
    case .invalidArgument: return HYMBA_ERR_INVALID_ARGUMENT
    case .io: return HYMBA_ERR_IO
    case .format: return HYMBA_ERR_FORMAT
    case .checksum: return HYMBA_ERR_CHECKSUM
    case .unsupported: return HYMBA_ERR_UNSUPPORTED
    case .memoryBudget: return HYMBA_ERR_MEMORY_BUDGET
    case .contextFull: return HYMBA_ERR_CONTEXT_FULL
    case .cancelled: return HYMBA_ERR_CANCELLED
    case .internal: return HYMBA_ERR_INTERNAL
    }
}

private func invalid(_ message: String) -> HymbaError { HymbaError(.invalidArgument, message) }

private func require<T>(_ pointer: T?, _ name: String) throws -> T {
    guard let pointer else { throw invalid("\(name) is NULL") }
    return pointer
}

// MARK: Version and errors

private let versionString: UnsafePointer<CChar> = {
    let s = "\(HYMBA_VERSION_MAJOR).\(HYMBA_VERSION_MINOR).\(HYMBA_VERSION_PATCH)"
    return UnsafePointer(strdup(s)!)  // once per process, kept for its lifetime
}()

@_cdecl("hymba_version")
public func hymba_version_c() -> UnsafePointer<CChar> { versionString }

private let backendName: UnsafePointer<CChar> = {
    UnsafePointer(strdup(Model.kernelBackend ?? "none")!)  // once per process, kept for its lifetime
}()

@_cdecl("hymba_backend_name")
public func hymba_backend_name_c() -> UnsafePointer<CChar> { backendName }

@_cdecl("hymba_last_error")
public func hymba_last_error_c() -> UnsafePointer<CChar> { LastError.current }

@_cdecl("hymba_status_string")
public func hymba_status_string_c(_ s: hymba_status) -> UnsafePointer<CChar> {
    switch s {
    case HYMBA_OK: return cString("ok")
    case HYMBA_ERR_INVALID_ARGUMENT: return cString("invalid argument")
    case HYMBA_ERR_IO: return cString("I/O error")
    case HYMBA_ERR_FORMAT: return cString("format error")
    case HYMBA_ERR_CHECKSUM: return cString("checksum mismatch")
    case HYMBA_ERR_UNSUPPORTED: return cString("unsupported")
    case HYMBA_ERR_MEMORY_BUDGET: return cString("over the memory budget")
    case HYMBA_ERR_CONTEXT_FULL: return cString("context full")
    case HYMBA_ERR_CANCELLED: return cString("cancelled")
    case HYMBA_ERR_INTERNAL: return cString("internal error")
    default: return cString("unknown status")
    }
}

// MARK: Models

@_cdecl("hymba_model_default_params")
public func hymba_model_default_params_c() -> hymba_model_params {
    let d = ModelOptions()
    return hymba_model_params(memory_budget_bytes: d.memoryBudgetBytes, threads: Int32(d.threads),
                              verify_checksums: d.verifyChecksums ? 1 : 0)
}

@_cdecl("hymba_model_open")
public func hymba_model_open_c(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<hymba_model_params>?,
                               _ out: UnsafeMutablePointer<OpaquePointer?>?) -> hymba_status {
    run("hymba_model_open") {
        let path = try require(path, "path")
        let out = try require(out, "out")
        let p = params?.pointee ?? hymba_model_default_params_c()
        let options = ModelOptions(threads: Int(p.threads), memoryBudgetBytes: p.memory_budget_bytes,
                                   verifyChecksums: p.verify_checksums != 0)
        let model = try Model(path: String(cString: path), options: options)
        out.pointee = Handles.register(model)
    }
}

@_cdecl("hymba_model_free")
public func hymba_model_free_c(_ model: OpaquePointer?) {
    guard let model else { return }
    if !Handles.releaseModel(model) {
        _ = fail("hymba_model_free", invalid("\(model) is not a live model (freed twice?); ignored"))
    }
}

@_cdecl("hymba_model_vocab_size")
public func hymba_model_vocab_size_c(_ model: OpaquePointer?) -> Int32 {
    count("hymba_model_vocab_size") { try Handles.model(model).vocabularySize }
}

@_cdecl("hymba_model_context_length")
public func hymba_model_context_length_c(_ model: OpaquePointer?) -> Int32 {
    count("hymba_model_context_length") { try Handles.model(model).contextLength }
}

// MARK: Contexts

@_cdecl("hymba_context_default_params")
public func hymba_context_default_params_c() -> hymba_context_params {
    hymba_context_params(n_ctx: 0, kv_type: Int32(HYMBA_KV_AUTO.rawValue))
}

@_cdecl("hymba_context_new")
public func hymba_context_new_c(_ model: OpaquePointer?, _ params: UnsafePointer<hymba_context_params>?,
                                _ out: UnsafeMutablePointer<OpaquePointer?>?) -> hymba_status {
    run("hymba_context_new") {
        let m = try Handles.model(model)
        let out = try require(out, "out")
        let p = params?.pointee ?? hymba_context_default_params_c()
        guard p.n_ctx >= 0 else { throw invalid("n_ctx \(p.n_ctx) must be ≥ 0 (0: the model's context length)") }
        let kv: KVCacheType?
        switch p.kv_type {
        case Int32(HYMBA_KV_AUTO.rawValue): kv = nil
        case Int32(HYMBA_KV_F16.rawValue): kv = .f16
        case Int32(HYMBA_KV_F32.rawValue): kv = .f32
        case Int32(HYMBA_KV_Q8.rawValue): kv = .q8
        default: throw invalid("kv_type \(p.kv_type) is not a hymba_kv_type (HYMBA_KV_AUTO = -1, HYMBA_KV_F16 = 0, HYMBA_KV_F32 = 1, HYMBA_KV_Q8 = 2)")
        }
        let session = try m.makeSession(SessionOptions(contextLength: p.n_ctx == 0 ? nil : Int(p.n_ctx), kvCacheType: kv))
        out.pointee = Handles.register(session)
    }
}

@_cdecl("hymba_context_free")
public func hymba_context_free_c(_ ctx: OpaquePointer?) {
    guard let ctx else { return }
    if !Handles.releaseContext(ctx) {
        _ = fail("hymba_context_free", invalid("\(ctx) is not a live context (freed twice?); ignored"))
    }
}

@_cdecl("hymba_context_reset")
public func hymba_context_reset_c(_ ctx: OpaquePointer?) -> hymba_status {
    run("hymba_context_reset") { try Handles.context(ctx).reset() }
}

@_cdecl("hymba_context_n_tokens")
public func hymba_context_n_tokens_c(_ ctx: OpaquePointer?) -> Int32 {
    count("hymba_context_n_tokens") { try Handles.context(ctx).tokenCount }
}

@_cdecl("hymba_context_size")
public func hymba_context_size_c(_ ctx: OpaquePointer?) -> Int32 {
    count("hymba_context_size") { try Handles.context(ctx).contextLength }
}

// MARK: Tokens

@_cdecl("hymba_tokenize")
public func hymba_tokenize_c(_ model: OpaquePointer?, _ text: UnsafePointer<CChar>?, _ addBOS: Int32,
                             _ ids: UnsafeMutablePointer<Int32>?, _ capacity: Int32,
                             _ nOut: UnsafeMutablePointer<Int32>?) -> hymba_status {
    run("hymba_tokenize") {
        let m = try Handles.model(model)
        let text = try require(text, "text")
        let nOut = try require(nOut, "n_out")
        guard capacity >= 0 else { throw invalid("capacity \(capacity) is negative") }
        if ids == nil && capacity > 0 { throw invalid("ids is NULL but capacity is \(capacity)") }
        let tokens = m.tokenize(String(cString: text), addBOS: addBOS != 0)
        guard tokens.count <= Int32.max else { throw invalid("the text gives \(tokens.count) tokens, more than an int32_t counts") }
        nOut.pointee = Int32(tokens.count)
        guard tokens.count <= Int(capacity) else {
            throw invalid("ids holds \(capacity) tokens, the text needs \(tokens.count) (the count is in *n_out)")
        }
        if let ids { tokens.withUnsafeBufferPointer { ids.update(from: $0.baseAddress!, count: tokens.count) } }
    }
}

@_cdecl("hymba_detokenize")
public func hymba_detokenize_c(_ model: OpaquePointer?, _ ids: UnsafePointer<Int32>?, _ n: Int32,
                               _ buf: UnsafeMutablePointer<CChar>?, _ capacity: Int,
                               _ lenOut: UnsafeMutablePointer<Int>?) -> hymba_status {
    run("hymba_detokenize") {
        let m = try Handles.model(model)
        let lenOut = try require(lenOut, "len_out")
        guard n >= 0 else { throw invalid("n \(n) is negative") }
        if ids == nil && n > 0 { throw invalid("ids is NULL but n is \(n)") }
        if buf == nil && capacity > 0 { throw invalid("buf is NULL but capacity is \(capacity)") }
        let list = ids.map { Array(UnsafeBufferPointer(start: $0, count: Int(n))) } ?? []
        let text = try m.detokenize(list)
        let bytes = text.utf8.count
        lenOut.pointee = bytes
        guard bytes < capacity else {
            throw invalid("buf holds \(capacity) bytes, the text needs \(bytes + 1) with its NUL (the length is in *len_out)")
        }
        var copy = text
        copy.withUTF8 { u in
            UnsafeMutableRawPointer(buf!).copyMemory(from: u.baseAddress!, byteCount: bytes)
        }
        buf![bytes] = 0
    }
}

// MARK: Evaluation and generation

@_cdecl("hymba_eval")
public func hymba_eval_c(_ ctx: OpaquePointer?, _ ids: UnsafePointer<Int32>?, _ n: Int32,
                         _ logits: UnsafeMutablePointer<Float>?) -> hymba_status {
    run("hymba_eval") {
        let session = try Handles.context(ctx)
        guard n >= 0 else { throw invalid("n \(n) is negative") }
        if ids == nil && n > 0 { throw invalid("ids is NULL but n is \(n)") }
        let out = logits.map { UnsafeMutableBufferPointer(start: $0, count: session.model.vocabularySize) }
        try session.eval(UnsafeBufferPointer(start: ids, count: Int(n)), logits: out)
    }
}

@_cdecl("hymba_sampling_default_params")
public func hymba_sampling_default_params_c() -> hymba_sampling_params {
    let d = Sampling()
    return hymba_sampling_params(temperature: d.temperature, top_k: Int32(d.topK), top_p: d.topP, min_p: d.minP,
                                 repeat_penalty: d.repeatPenalty, repeat_last_n: Int32(d.repeatLastN),
                                 seed: d.seed, max_tokens: Int32(d.maxTokens))
}

@_cdecl("hymba_generate")
public func hymba_generate_c(_ ctx: OpaquePointer?, _ prompt: UnsafePointer<CChar>?,
                             _ params: UnsafePointer<hymba_sampling_params>?,
                             _ callback: hymba_token_callback?, _ userData: UnsafeMutableRawPointer?) -> hymba_status {
    var stopReason: StopReason?
    let status = run("hymba_generate") {
        let session = try Handles.context(ctx)
        let prompt = try require(prompt, "prompt")
        let p = params?.pointee ?? hymba_sampling_default_params_c()
        let sampling = Sampling(temperature: p.temperature, topK: Int(p.top_k), topP: p.top_p, minP: p.min_p,
                                repeatPenalty: p.repeat_penalty, repeatLastN: Int(p.repeat_last_n),
                                seed: p.seed, maxTokens: Int(p.max_tokens))
        let done = try session.generate(String(cString: prompt), sampling: sampling) { piece in
            guard let callback else { return .continue }
            let stop = piece.text.withCString { callback($0, piece.token ?? -1, userData) }
            return stop != 0 ? .stop : .continue
        }
        stopReason = done.stopReason
    }
    guard status == HYMBA_OK, let reason = stopReason else { return status }
    switch reason {
    case .endOfSequence, .maxTokens:
        return HYMBA_OK
    case .cancelled:
        return fail("hymba_generate", HymbaError(.cancelled, "stopped by the callback"))
    case .contextFull:
        let n = (try? Handles.context(ctx).contextLength) ?? 0
        return fail("hymba_generate", HymbaError(.contextFull, "context full: generation filled all \(n) tokens"))
    }
}
