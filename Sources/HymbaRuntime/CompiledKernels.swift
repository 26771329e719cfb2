/// The kernels this build compiled in, as `--version` prints them. One function on purpose:
/// when the kernels choose a backend at run time, this is the one place to say which are
/// compiled in and which one runs.
public enum CompiledKernels {
    /// "avx512-vnni, portable" (the AVX-512 VNNI products, attention scores and scan, the
    /// portable SIMD kernels for the rest) or "portable".
    public static var description: String {
        #if HYMBA_AVX512VNNI && arch(x86_64)
        return "avx512-vnni, portable"
        #else
        return "portable"
        #endif
    }
}
