import HymbaKernels
import HymbaKernelsPortable

/// The AVX2 backend, for x86-64-v3 CPUs (AVX2, FMA, F16C: Intel from Haswell, AMD from Zen 1):
/// this target is compiled for `haswell` (Package.swift), so the portable kernels it inherits
/// run on 256-bit registers with fused multiply-adds. Entries with an AVX2 kernel of their own
/// are implemented here and replace the inherited ones.
public enum AVX2Kernels: PortableKernelBackend {
    public typealias Vectors = PortableVectors
    public static var name: KernelBackendName { .avx2 }
}
